"""The anthropic and openai backends, through the real SDKs, against loopback servers that speak
the providers' APIs."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from provider_fakes import (
    FakeProvider,
    Reply,
    anthropic_error,
    anthropic_message,
    openai_chat,
    openai_error,
)

from rsi_bench.models.anthropic import AnthropicModel
from rsi_bench.models.base import (
    AuthenticationFailed,
    BadRequest,
    MissingApiKey,
    ModelTimeout,
    ProviderError,
)
from rsi_bench.models.openai import OpenAIModel
from rsi_bench.models.retry import RetryPolicy

# the SDK warns that claude-sonnet-4-5 is deprecated; irrelevant to these tests
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
KEY = "sk-test-0123456789abcdefghij"
HI = [{"role": "user", "content": "hi"}]


class Sleeps:
    """An injectable sleep that records the delays asked for and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def anthropic(fake: FakeProvider, **kw: Any) -> AnthropicModel:
    kw.setdefault("api_key", KEY)
    return AnthropicModel("claude-sonnet-4-5", base_url=fake.url, **kw)


def openai(fake: FakeProvider, **kw: Any) -> OpenAIModel:
    kw.setdefault("api_key", KEY)
    return OpenAIModel("gpt-4o", base_url=fake.url + "/v1", **kw)


def test_anthropic_normal_reply() -> None:
    with FakeProvider(Reply(body=anthropic_message("pong", input_tokens=12,
                                                   output_tokens=3))) as fake:
        c = anthropic(fake).complete([{"role": "system", "content": "be brief"}, *HI],
                                     max_tokens=50, stop=["\n\n"])
    assert (c.text, c.stop_reason) == ("pong", "end_turn")
    assert c.model_id == "anthropic/claude-sonnet-4-5"
    assert (c.usage.input_tokens, c.usage.output_tokens) == (12, 3)
    assert c.cost_usd == pytest.approx((12 * 3.0 + 3 * 15.0) / 1e6)
    assert c.latency_s > 0
    seen = fake.seen[0]
    assert seen.path == "/v1/messages"
    assert seen.body == {"model": "claude-sonnet-4-5", "max_tokens": 50, "system": "be brief",
                         "messages": HI, "stop_sequences": ["\n\n"]}
    assert KEY in str(seen.headers)  # the key is sent to the provider, and only there


def test_openai_normal_reply() -> None:
    with FakeProvider(Reply(body=openai_chat("pong", prompt_tokens=20, completion_tokens=2,
                                             cached=0))) as fake:
        c = openai(fake).complete([{"role": "system", "content": "be brief"}, *HI],
                                  max_tokens=50, temperature=0, seed=7)
    assert (c.text, c.stop_reason, c.model_id) == ("pong", "stop", "openai/gpt-4o")
    assert c.cost_usd == pytest.approx((20 * 2.5 + 2 * 10.0) / 1e6)
    seen = fake.seen[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.body["max_tokens"] == 50 and seen.body["seed"] == 7
    assert seen.body["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_429_then_200_is_retried_after_retry_after(kind: str) -> None:
    wait = 0.6
    if kind == "anthropic":
        ok, err = anthropic_message("late"), anthropic_error("rate_limit_error", "slow down")
    else:
        ok, err = openai_chat("late"), openai_error("slow down", "rate_limit_error")
    script = [Reply(429, err, {"retry-after": str(wait)})]
    asked: list[float] = []

    def sleep(seconds: float) -> None:  # really waits, and records what the policy asked for
        asked.append(seconds)
        time.sleep(seconds)

    with FakeProvider(Reply(body=ok), script) as fake:
        model = (anthropic if kind == "anthropic" else openai)(fake, retry=RetryPolicy(
            sleep=sleep))
        started = time.monotonic()
        c = model.complete(HI)
        elapsed = time.monotonic() - started
    assert c.text == "late" and model.attempts == 2 and len(fake.seen) == 2
    gap = fake.seen[1].at - fake.seen[0].at
    print(f"{kind}: retry-after {wait}s, measured gap {gap:.3f}s, call {elapsed:.3f}s")
    # the server's Retry-After, not the policy's own backoff (1 s less jitter: 0.5-1 s), is what
    # the policy waited; how much longer the loaded machine took is not the client's doing
    assert asked == [wait]
    assert gap >= wait
    assert c.latency_s >= wait  # latency is what the caller waited, retries included


def test_anthropic_529_overloaded_is_retried_with_backoff() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, jitter=0.5, rng=random.Random(7),
                         sleep=sleeps)
    overloaded = Reply(529, anthropic_error("overloaded_error", "Overloaded"))
    with FakeProvider(Reply(body=anthropic_message("finally")),
                      [overloaded, overloaded]) as fake:
        c = anthropic(fake, retry=policy).complete(HI)
    assert c.text == "finally" and len(fake.seen) == 3
    expected = RetryPolicy(base_delay=1.0, jitter=0.5, rng=random.Random(7))
    assert sleeps.delays == [expected.delay(1, None), expected.delay(2, None)]
    assert 0.5 <= sleeps.delays[0] <= 1.0 and 1.0 <= sleeps.delays[1] <= 2.0


def test_529_forever_gives_up_with_a_clear_error() -> None:
    sleeps = Sleeps()
    with FakeProvider(Reply(529, anthropic_error("overloaded_error", "Overloaded"))) as fake:
        model = anthropic(fake, retry=RetryPolicy(max_attempts=3, sleep=sleeps))
        with pytest.raises(ProviderError, match=r"HTTP 529 .* after 3 attempt\(s\): Overloaded"):
            model.complete(HI)
    assert len(fake.seen) == 3 and len(sleeps.delays) == 2


def test_openai_5xx_is_retried() -> None:
    sleeps = Sleeps()
    with FakeProvider(Reply(body=openai_chat("ok")),
                      [Reply(503, openai_error("busy")), Reply(500, openai_error("oops"))]) as f:
        c = openai(f, retry=RetryPolicy(sleep=sleeps)).complete(HI)
    assert c.text == "ok" and len(f.seen) == 3 and len(sleeps.delays) == 2


@pytest.mark.parametrize("kind,env_var", [("anthropic", "ANTHROPIC_API_KEY"),
                                          ("openai", "OPENAI_API_KEY")])
def test_401_is_not_retried_and_names_the_key_variable(
        kind: str, env_var: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env_var, KEY)
    sleeps = Sleeps()
    if kind == "anthropic":
        reply = Reply(401, anthropic_error("authentication_error", f"invalid x-api-key {KEY}"))
    else:
        reply = Reply(401, openai_error(f"Incorrect API key provided: {KEY}"))
    with FakeProvider(reply) as fake:
        if kind == "anthropic":
            model: Any = AnthropicModel("claude-sonnet-4-5", base_url=fake.url,
                                        retry=RetryPolicy(sleep=sleeps))
        else:
            model = OpenAIModel("gpt-4o", base_url=fake.url + "/v1", api_key_env=env_var,
                                retry=RetryPolicy(sleep=sleeps))
        with pytest.raises(AuthenticationFailed) as info:
            model.complete(HI)
    message = str(info.value)
    assert len(fake.seen) == 1 and sleeps.delays == []
    assert env_var in message and KEY not in message and "\n" not in message


def test_400_is_not_retried() -> None:
    with FakeProvider(Reply(400, anthropic_error("invalid_request_error", "bad field"))) as f:
        with pytest.raises(ProviderError, match="HTTP 400 .*bad field"):
            anthropic(f).complete(HI)
    assert len(f.seen) == 1


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_slow_server_times_out(kind: str) -> None:
    ok = anthropic_message() if kind == "anthropic" else openai_chat()
    policy = RetryPolicy(max_attempts=2, sleep=Sleeps())
    with FakeProvider(Reply(body=ok, delay=3.0)) as fake:
        model = (anthropic if kind == "anthropic" else openai)(fake, timeout=0.4, retry=policy)
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"within 0.4s, after 2 attempt\(s\)"):
            model.complete(HI)
        elapsed = time.monotonic() - started
    assert len(fake.seen) == 2 and 0.8 <= elapsed < 2.5


def test_connection_refused_is_retried_then_reported() -> None:
    with FakeProvider(Reply()) as fake:
        url = fake.url
    sleeps = Sleeps()
    model = AnthropicModel("claude-sonnet-4-5", api_key=KEY, base_url=url,
                           retry=RetryPolicy(max_attempts=3, sleep=sleeps))
    with pytest.raises(ProviderError, match="cannot connect to http://127.0.0.1"):
        model.complete(HI)
    assert model.attempts == 3 and len(sleeps.delays) == 2


def test_anthropic_prompt_caching_marks_long_prefixes_and_prices_cache_tokens() -> None:
    system, source = "S" * 5000, "def agent(): ...\n" * 400
    body = anthropic_message(input_tokens=50, output_tokens=100, cache_read=3000,
                             cache_write=1200)
    with FakeProvider(Reply(body=body)) as fake:
        c = anthropic(fake).complete([{"role": "system", "content": system},
                                      {"role": "user", "content": source},
                                      {"role": "assistant", "content": "ok"},
                                      {"role": "user", "content": "now improve it"}])
    sent = fake.seen[0].body
    ephemeral = {"type": "ephemeral"}
    assert sent["system"] == [{"type": "text", "text": system, "cache_control": ephemeral}]
    assert sent["messages"][0]["content"] == [{"type": "text", "text": source,
                                               "cache_control": ephemeral}]
    assert sent["messages"][2]["content"] == "now improve it"  # only the stable prefix
    assert (c.usage.cache_read_tokens, c.usage.cache_write_tokens) == (3000, 1200)
    # claude-sonnet-4-5: $3 input, $15 output, $0.30 cache read, $3.75 cache write per million
    assert c.cost_usd == pytest.approx((50 * 3 + 100 * 15 + 3000 * 0.30 + 1200 * 3.75) / 1e6)


def test_short_prompts_are_not_marked_for_caching() -> None:
    with FakeProvider(Reply(body=anthropic_message())) as fake:
        anthropic(fake).complete([{"role": "system", "content": "short"}, *HI])
    assert fake.seen[0].body["system"] == "short"
    assert fake.seen[0].body["messages"][0]["content"] == "hi"


def test_openai_cached_tokens_are_split_and_priced() -> None:
    with FakeProvider(Reply(body=openai_chat(prompt_tokens=1000, completion_tokens=10,
                                             cached=800))) as fake:
        c = openai(fake).complete(HI)
    assert (c.usage.input_tokens, c.usage.cache_read_tokens) == (200, 800)
    assert c.cost_usd == pytest.approx((200 * 2.5 + 800 * 1.25 + 10 * 10.0) / 1e6)


def test_user_price_override_and_unknown_model() -> None:
    body = anthropic_message(model="claude-future-9", input_tokens=1_000_000, output_tokens=0)
    with FakeProvider(Reply(body=body)) as fake:
        unpriced = AnthropicModel("claude-future-9", api_key=KEY, base_url=fake.url)
        priced = AnthropicModel("claude-future-9", api_key=KEY, base_url=fake.url, prices={
            "anthropic/claude-future-9": {"input": 2.0, "output": 8.0}})
        assert unpriced.complete(HI).cost_usd is None
        assert priced.complete(HI).cost_usd == pytest.approx(2.0)


def test_missing_keys_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(MissingApiKey, match="ANTHROPIC_API_KEY"):
        AnthropicModel("claude-sonnet-4-5")
    with pytest.raises(MissingApiKey, match="OPENAI_API_KEY"):
        OpenAIModel("gpt-4o")


def test_openai_key_is_not_sent_to_other_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeProvider(Reply(body=openai_chat())) as fake:
        OpenAIModel("qwen", base_url=fake.url + "/v1").complete(HI)
    assert KEY not in str(fake.seen[0].headers)


def test_unsupported_parameter_is_refused_before_sending() -> None:
    with FakeProvider(Reply(body=openai_chat())) as fake:
        with pytest.raises(BadRequest, match="unsupported parameter"):
            openai(fake).complete(HI, logit_bias={})
    assert fake.seen == []
