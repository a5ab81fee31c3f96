"""Replay: a recorded run's calls come back byte for byte; anything else is a clear miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from provider_fakes import FakeProvider, Reply, anthropic_message

from rsi_bench.broker import Broker
from rsi_bench.models import get_model
from rsi_bench.models.anthropic import AnthropicModel
from rsi_bench.models.base import ModelError, ReplayMiss, request_hash
from rsi_bench.store import Store
from rsi_bench.store.model_calls import export_jsonl

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
REQUESTS = [([{"role": "user", "content": f"task {i}: write f"}], {"max_tokens": 100 + i})
            for i in range(5)]


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, list[str]]:
    """A run store holding five answered calls to a (loopback) anthropic model."""
    replies = [Reply(body=anthropic_message(f"answer {i} ✓", input_tokens=10 + i,
                                            output_tokens=5, cache_read=i))
               for i in range(len(REQUESTS))]
    originals = []
    with FakeProvider(Reply(500), replies) as fake, Store(tmp_path / "run.sqlite") as store:
        model = AnthropicModel("claude-sonnet-4-5", api_key="sk-test-0123456789abcdefgh",
                               base_url=fake.url)
        broker = Broker(model, store)
        for messages, params in REQUESTS:
            answer = broker.complete("solve", messages, params, task_id="t", generation=0)
            originals.append(json.dumps(answer.completion.to_dict(), sort_keys=True))
    return tmp_path, originals


def test_replay_from_the_store_is_byte_identical(recorded: tuple[Path, list[str]]) -> None:
    run_dir, originals = recorded
    replay = get_model(f"replay/{run_dir}")  # a run directory: its run.sqlite
    assert replay.name == "anthropic/claude-sonnet-4-5"
    again = [json.dumps(replay.complete(m, **p).to_dict(), sort_keys=True)
             for m, p in REQUESTS]
    assert again == originals


def test_replay_from_a_jsonl_export_through_a_broker(recorded: tuple[Path, list[str]],
                                                     tmp_path: Path) -> None:
    run_dir, originals = recorded
    with Store(run_dir / "run.sqlite") as store:
        export = tmp_path / "calls.jsonl"
        export.write_text("\n".join(export_jsonl(store)) + "\n", encoding="utf-8")
    replay = get_model("replay", path=export)
    with Store(tmp_path / "second.sqlite") as store2:
        broker = Broker(replay, store2)
        again = [json.dumps(broker.complete("solve", m, p).completion.to_dict(), sort_keys=True)
                 for m, p in REQUESTS]
    assert again == originals


def test_a_changed_request_is_a_clear_miss(recorded: tuple[Path, list[str]]) -> None:
    run_dir, _ = recorded
    replay = get_model("replay", path=run_dir / "run.sqlite")
    messages, params = REQUESTS[0]
    changed = [{"role": "user", "content": messages[0]["content"] + " "}]
    with pytest.raises(ReplayMiss) as info:
        replay.complete(changed, **params)
    digest = request_hash("anthropic/claude-sonnet-4-5", changed, params)
    message = str(info.value)
    assert digest[:16] in message and "task 0: write f" in message
    assert "never makes a live call" in message and "\n" not in message
    with pytest.raises(ReplayMiss):
        replay.complete(messages, **{**params, "max_tokens": 999})


def test_missing_or_malformed_recordings(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        get_model("replay", path=tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "a call"}\n')
    with pytest.raises(ModelError, match="line 1 is not a recorded call"):
        get_model("replay", path=bad)
    with pytest.raises(ModelError, match="say which recording"):
        get_model("replay")
