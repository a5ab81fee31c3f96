"""The broker in-process: budgets before calls, recording, cache, concurrency, redaction."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from provider_fakes import FakeProvider, Reply, openai_chat, openai_error

from rsi_bench.broker import Broker, Budget
from rsi_bench.models.base import (
    BadRequest,
    BudgetExceeded,
    Completion,
    Message,
    ModelError,
    ProviderError,
    Usage,
)
from rsi_bench.models.openai import OpenAIModel
from rsi_bench.models.retry import RetryPolicy
from rsi_bench.store import Store

KEY = "sk-secret-0123456789abcdefghijk"


def ask(n: int) -> list[Message]:
    return [{"role": "user", "content": f"request {n}"}]


def rows(store: Store) -> list[sqlite3.Row]:
    return store.read().execute("SELECT * FROM model_calls ORDER BY id").fetchall()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "run.sqlite") as s:
        yield s  # type: ignore[misc]


def test_a_call_over_the_call_budget_is_refused_before_it_is_sent(store: Store) -> None:
    with FakeProvider(Reply(body=openai_chat())) as fake:
        model = OpenAIModel("gpt-4o", base_url=fake.url + "/v1")
        broker = Broker(model, store, {"solve": Budget(calls=2)})
        broker.complete("solve", ask(1), {"max_tokens": 10})
        broker.complete("solve", ask(2), {"max_tokens": 10})
        with pytest.raises(BudgetExceeded, match="role 'solve': call budget 2 is used up"):
            broker.complete("solve", ask(3), {"max_tokens": 10})
        broker.complete("improve", ask(3), {"max_tokens": 10})  # another role's budget
    assert len(fake.seen) == 3
    refused = [r for r in rows(store) if r["status"] == "refused"]
    assert len(refused) == 1 and refused[0]["error_type"] == "BudgetExceeded"
    assert "request 3" in refused[0]["request_json"] and refused[0]["completion_json"] is None


def test_token_and_usd_budgets_refuse_the_worst_case(store: Store) -> None:
    with FakeProvider(Reply(body=openai_chat(prompt_tokens=10, completion_tokens=10))) as fake:
        model = OpenAIModel("gpt-4o", base_url=fake.url + "/v1")
        broker = Broker(model, store, {"solve": Budget(tokens=1000),
                                       "improve": Budget(usd=0.01)})
        with pytest.raises(BudgetExceeded, match="token budget 1000 would be exceeded"):
            broker.complete("solve", ask(1), {"max_tokens": 2000})
        broker.complete("solve", ask(1), {"max_tokens": 500})  # fits: settled at 20 tokens
        assert broker.ledger.spent["solve"].tokens == 20
        # gpt-4o: 2000 output tokens may cost $0.02 > $0.01
        with pytest.raises(BudgetExceeded, match=r"USD budget \$0.0100"):
            broker.complete("improve", ask(2), {"max_tokens": 2000})
    assert len(fake.seen) == 1
    assert [r["status"] for r in rows(store)] == ["refused", "ok", "refused"]


def test_a_usd_budget_needs_a_price(store: Store) -> None:
    model = OpenAIModel("some-new-model", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ModelError, match="no price is known for openai/some-new-model"):
        Broker(model, store, {"solve": Budget(usd=1.0)})
    Broker(model, store, {"solve": Budget(usd=1.0)},
           prices={"openai/some-new-model": {"input": 1, "output": 1}})


def test_a_resumed_run_keeps_what_it_spent(store: Store) -> None:
    with FakeProvider(Reply(body=openai_chat())) as fake:
        model = OpenAIModel("gpt-4o", base_url=fake.url + "/v1")
        Broker(model, store, {"solve": Budget(calls=1)}).complete("solve", ask(1), {})
        again = Broker(model, store, {"solve": Budget(calls=1)})
        with pytest.raises(BudgetExceeded):
            again.complete("solve", ask(2), {})
    assert len(fake.seen) == 1


def test_the_cache_answers_repeats_without_calling_or_spending(store: Store) -> None:
    with FakeProvider(Reply(body=openai_chat("same"))) as fake:
        broker = Broker(OpenAIModel("gpt-4o", base_url=fake.url + "/v1"), store,
                        {"solve": Budget(calls=1)})
        first = broker.complete("solve", ask(1), {"temperature": 0})
        second = broker.complete("solve", ask(1), {"temperature": 0})
    assert len(fake.seen) == 1 and not first.cache_hit and second.cache_hit
    assert second.completion == first.completion
    recorded = rows(store)
    assert [r["cache_hit"] for r in recorded] == [0, 1]
    # the answer is recorded as the agent saw it; the spend columns say a hit cost nothing
    assert recorded[1]["completion_json"] == recorded[0]["completion_json"]
    assert recorded[0]["cost_usd"] > 0 and recorded[1]["cost_usd"] == 0.0
    assert recorded[1]["output_tokens"] == 0


def test_every_call_is_committed_before_it_returns(store: Store) -> None:
    seen_at_return: list[int] = []

    class Recording(Broker):
        def _record(self, *args: Any, **kw: Any) -> int:
            call_id = super()._record(*args, **kw)
            # a separate connection sees the row: it is committed, not just written
            with sqlite3.connect(store.path) as other:
                seen_at_return.append(other.execute(
                    "SELECT COUNT(*) FROM model_calls WHERE id = ?", (call_id,)).fetchone()[0])
            return call_id

    with FakeProvider(Reply(body=openai_chat())) as fake:
        broker = Recording(OpenAIModel("gpt-4o", base_url=fake.url + "/v1"), store)
        answer = broker.complete("solve", ask(1), {})
    assert seen_at_return == [1] and answer.call_id == rows(store)[0]["id"]


class SlowModel:
    """Counts how many calls are inside ``complete`` at once."""

    name = "openai/gpt-4o"

    def __init__(self) -> None:
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.1)
        with self._lock:
            self.active -= 1
        return Completion("ok", "stop", Usage(1, 1), 0.0, 0.1, self.name)


def test_the_concurrency_limit_holds(store: Store) -> None:
    model = SlowModel()
    broker = Broker(model, store, concurrency=3)
    threads = [threading.Thread(target=broker.complete, args=("solve", ask(i), {}))
               for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert model.peak == 3 and len(rows(store)) == 12


def test_keys_are_redacted_from_records_and_errors(store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    leaky = Reply(400, openai_error(f"key {KEY} is not allowed here"))
    with FakeProvider(Reply(body=openai_chat(f"your key is {KEY}")), [leaky]) as fake:
        model = OpenAIModel("gpt-4o", base_url=fake.url + "/v1", api_key_env="OPENAI_API_KEY",
                            retry=RetryPolicy(sleep=lambda s: None))
        broker = Broker(model, store)
        with pytest.raises(ProviderError) as info:
            broker.complete("solve", ask(1), {})
        answer = broker.complete("solve", [{"role": "user", "content": f"echo {KEY}"}], {})
    assert KEY not in str(info.value) and "[REDACTED]" in str(info.value)
    assert KEY not in answer.completion.text
    store.close()
    data = b"".join(p.read_bytes() for p in store.path.parent.glob("run.sqlite*"))
    assert KEY.encode() not in data and b"[REDACTED]" in data


def test_bad_requests_are_refused(store: Store) -> None:
    broker = Broker(SlowModel(), store)
    with pytest.raises(BadRequest, match="role must be one of solve, improve"):
        broker.complete("admin", ask(1), {})
    with pytest.raises(BadRequest, match=r"messages\[0\].role"):
        broker.complete("solve", [{"role": "tool", "content": "x"}], {})  # type: ignore[list-item]
    with pytest.raises(BadRequest, match="max_tokens must be a positive integer"):
        broker.complete("solve", ask(1), {"max_tokens": "lots"})
    with pytest.raises(ModelError, match="unknown role"):
        Broker(SlowModel(), store, {"judge": Budget(calls=1)})
