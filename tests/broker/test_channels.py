"""The broker tells an agent nothing about other calls: its cache is keyed by who asks, its
replies carry no cache flag and no usage but the caller's own, and the loop's seed is the
loop's. Each test reproduces a channel measured on the broker as it was."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rsi_bench.broker import Broker, BrokerServer, Budget
from rsi_bench.loop.runner import LoopBroker, sampling_seed
from rsi_bench.models import get_model
from rsi_bench.models.base import CallContext, Completion, Message, Usage
from rsi_bench.models.simulated import SimTask, SimulatedModel
from rsi_bench.store import Store
from rsi_bench.store.model_calls import export_jsonl

HELD_OUT = SimTask.from_reference("def inc(x):\n    return x + 1\n", "inc", difficulty=1)
DEV = SimTask.from_reference("def dec(x):\n    return x - 1\n", "dec", difficulty=1)
SOLVE_REQUEST = [{"role": "user", "content": "Write inc(x).\nExamples:\ninc(1) == 2"}]


def ask(server: BrokerServer, messages: Sequence[Message], params: dict[str, Any] | None = None,
        ) -> tuple[bytes, dict[str, Any]]:
    """One request on a raw connection: the reply's exact bytes and its JSON."""
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(30)
        raw.connect(str(server.path))
        raw.sendall(json.dumps({"id": 1, "messages": messages, "params": params or {}})
                    .encode() + b"\n")
        line = raw.makefile("rb").readline()
    return line, json.loads(line)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "run.sqlite") as s:
        yield s


def served(broker: Broker, path: Path, context: CallContext) -> BrokerServer:
    return BrokerServer(broker, path, identity=context).start()


def calls(store: Store) -> list[dict[str, Any]]:
    rows = store.read().execute("SELECT role, task_id, generation, cache_hit, request_json, "
                                "completion_json FROM model_calls ORDER BY id").fetchall()
    return [dict(r) for r in rows]


def test_an_improve_rebuilding_a_held_out_solve_request_gets_a_fresh_call(
        store: Store, tmp_path: Path) -> None:
    """Measured: an improve re-sent generation 0's held-out solve request, with that
    generation's seed, and got the solve's answer from the cache (cache_hit=1)."""
    broker = LoopBroker(SimulatedModel({"inc": HELD_OUT, "dec": DEV}), store, loop_seed=0,
                        seeded=True)
    solve = served(broker, tmp_path / "solve.sock", CallContext("solve", "inc", 0))
    _, solved = ask(solve, SOLVE_REQUEST)
    solve.close()
    improve = served(broker, tmp_path / "improve.sock", CallContext("improve", None, 1))
    _, rebuilt = ask(improve, SOLVE_REQUEST, {"seed": sampling_seed(0, 0)})
    improve.close()
    assert solved["ok"] and rebuilt["ok"]
    assert "cache_hit" not in rebuilt
    assert rebuilt["completion"]["text"] != solved["completion"]["text"]
    assert "def inc" not in rebuilt["completion"]["text"]
    recorded = calls(store)
    assert [(c["role"], c["cache_hit"]) for c in recorded] == [("solve", 0), ("improve", 0)]
    assert json.loads(recorded[1]["completion_json"])["text"] == rebuilt["completion"]["text"]


def test_no_request_can_probe_another_binding_and_a_repeat_is_indistinguishable(
        store: Store, tmp_path: Path) -> None:
    """Measured: a near miss was a one-bit "was this asked before" oracle. A request another
    task asked is now a fresh call; the caller's own repeat (a resumed solve) is a free hit
    whose reply is byte for byte the first one."""
    broker = LoopBroker(SimulatedModel({"inc": HELD_OUT, "dec": DEV}), store, loop_seed=0,
                        seeded=True)
    first = served(broker, tmp_path / "a.sock", CallContext("solve", "inc", 0))
    raw_first, _ = ask(first, SOLVE_REQUEST)
    raw_again, _ = ask(first, SOLVE_REQUEST)
    first.close()
    other = served(broker, tmp_path / "b.sock", CallContext("solve", "dec", 0))
    raw_other, probe = ask(other, SOLVE_REQUEST)
    other.close()
    assert raw_again == raw_first  # nothing in the reply says it came from the cache
    assert b"cache_hit" not in raw_first + raw_again + raw_other
    assert [c["cache_hit"] for c in calls(store)] == [0, 1, 0]  # the host knows
    assert probe["ok"] and [c["task_id"] for c in calls(store)] == ["inc", "inc", "dec"]


class UnseededModel:
    """Like Anthropic's API: takes no seed, and answers every call anew."""

    name = "anthropic/claude-test"
    free = True

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def complete(self, messages: list[Message], **params: Any) -> Completion:
        self.sent.append(dict(params))
        return Completion(f"draw {len(self.sent)}", "end_turn", Usage(1, 1), 0.0, 0.0, self.name)


def test_the_key_separates_role_task_split_generation_and_sample(store: Store) -> None:
    model = UnseededModel()
    broker = Broker(model, store, splits={"t": "heldout"})
    m = [{"role": "user", "content": "same"}]
    keys = [dict(role="solve", task_id="t", generation=0),
            dict(role="improve", task_id="t", generation=0),
            dict(role="solve", task_id="u", generation=0),
            dict(role="solve", task_id="t", generation=0, split="dev"),
            dict(role="solve", task_id="t", generation=1),
            dict(role="solve", task_id="t", generation=0, sample=1)]
    texts = [broker.complete(k.pop("role"), m, {}, **k).completion.text for k in keys]
    assert texts == [f"draw {i}" for i in range(1, 7)]  # six bindings: six calls
    again = broker.complete("solve", m, {}, task_id="t", generation=0)
    assert again.cache_hit and again.completion.text == "draw 1"
    split = store.read().execute("SELECT split FROM model_calls ORDER BY id").fetchall()
    assert [s[0] for s in split][:4] == ["heldout", "heldout", None, "dev"]


class SeededModel(UnseededModel):
    name = "openai/seeded-test"


def test_a_seed_the_agent_passes_does_not_override_the_loop_seed(store: Store) -> None:
    """Measured: a ``seed`` in the agent's params replaced the loop's."""
    model = SeededModel()
    broker = LoopBroker(model, store, loop_seed=5, seeded=True)
    m = [{"role": "user", "content": "x"}]
    target = sampling_seed(5, 0)  # generation 0's seed, which the agent can compute
    for g in (1, 2):
        broker.complete("solve", m, {"seed": target, "temperature": 1.0}, task_id="t",
                        generation=g)
    broker.complete("solve", m, {"temperature": 1.0}, task_id="t", generation=1)
    sent = [p["seed"] for p in model.sent]
    assert target not in sent
    assert sent[0] == sampling_seed(5, 1, 0, target) != sent[1] == sampling_seed(5, 2, 0, target)
    assert sent[2] == sampling_seed(5, 1)  # no agent seed: the loop's, as it always was
    assert all(p["temperature"] == 1.0 for p in model.sent)  # other params are the agent's
    recorded = [json.loads(c["request_json"]) for c in calls(store)]
    assert [r.get("agent_seed") for r in recorded] == [target, target, None]


def test_a_budget_refusal_says_only_that_the_budget_is_exhausted(
        store: Store, tmp_path: Path) -> None:
    """Measured: the refusal named the budget and the role's usage (everyone's spending)."""
    broker = Broker(SimulatedModel({"inc": HELD_OUT}), store,
                    {"solve": Budget(tokens=5000), "improve": Budget(calls=1)})
    server = served(broker, tmp_path / "s.sock", CallContext("solve", "inc", 0))
    assert ask(server, SOLVE_REQUEST, {"max_tokens": 100})[1]["ok"]
    raw, refused = ask(server, SOLVE_REQUEST, {"max_tokens": 4990})
    server.close()
    assert refused["error"] == {"type": "BudgetExceeded",
                                "message": "budget exhausted: the call was refused"}
    assert not any(ch.isdigit() for ch in refused["error"]["message"])  # no limit or usage
    assert b"5000" not in raw and b"4990" not in raw
    host = store.read().execute("SELECT error_message FROM model_calls "
                                "WHERE status = 'refused'").fetchone()[0]
    assert "token budget 5000" in host and "used or reserved" in host


def test_an_improve_replays_its_own_answer_never_the_solves(store: Store, tmp_path: Path
                                                             ) -> None:
    """Replay looks calls up as the broker keyed them; a request only another binding made
    is a miss that names no host path."""
    model = UnseededModel()
    broker = LoopBroker(model, store, loop_seed=1, seeded=False)
    m = [{"role": "user", "content": "held-out prompt"}]
    solved = broker.complete("solve", m, {}, task_id="t", generation=1).completion.text
    improved = broker.complete("improve", m, {}, generation=1).completion.text
    assert solved != improved
    export = tmp_path / "calls.jsonl"
    export.write_text("\n".join(export_jsonl(store)) + "\n", encoding="utf-8")
    with Store(tmp_path / "replay.sqlite") as again:
        replayed = LoopBroker(get_model("replay", path=export), again, loop_seed=1,
                              seeded=False)
        assert replayed.complete("improve", m, {}, generation=1).completion.text == improved
        assert replayed.complete("solve", m, {}, task_id="t", generation=1
                                 ).completion.text == solved
        server = served(replayed, tmp_path / "r.sock", CallContext("solve", "u", 1))
        _, miss = ask(server, m)  # asked before, but by task t: not this caller's
        server.close()
    assert miss["error"]["type"] == "ReplayMiss"
    assert str(tmp_path) not in miss["error"]["message"]


def test_an_agent_is_never_told_how_long_its_call_queued() -> None:
    """Queue time measures other callers' calls: the host records it, the agent's reply lacks
    it (the control: the completion the host holds does carry it)."""
    from rsi_bench.broker.replies import ok
    from rsi_bench.models.base import Completion, Usage

    held = Completion(text="x", stop_reason="stop", usage=Usage(), cost_usd=0.0, latency_s=1.0,
                      model_id="m", queue_s=12.5, tokens_per_s=3.0)
    assert held.to_dict()["queue_s"] == 12.5
    told = ok(1, held)["completion"]
    assert "queue_s" not in told and told["text"] == "x" and told["tokens_per_s"] == 3.0
