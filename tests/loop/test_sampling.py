"""Each generation and each sample of a task gets its own sampling seed; a resume gets the same."""

from __future__ import annotations

import json
from pathlib import Path

from rsi_bench.loop.runner import LoopBroker, sampling_seed
from rsi_bench.models import get_model
from rsi_bench.models.base import Completion, Message, Usage
from rsi_bench.models.simulated import sim_tasks
from rsi_bench.store import Store
from rsi_bench.tasks import load_suite


def test_seed_differs_by_generation_and_sample_and_is_stable() -> None:
    seeds = {sampling_seed(3, g, s) for g in range(4) for s in range(3)}
    assert len(seeds) == 12
    assert sampling_seed(3, 1, 0) == sampling_seed(3, 1)  # sample 0 keeps the generation seed
    assert sampling_seed(3, 1, 2) == sampling_seed(3, 1, 2)
    assert sampling_seed(3, 1) != sampling_seed(4, 1)


def test_samples_of_one_task_are_drawn_independently(tmp_path: Path) -> None:
    tasks = list(load_suite("rsi-core"))[:2]
    store = Store(tmp_path / "run.sqlite")
    broker = LoopBroker(get_model("simulated", tasks=sim_tasks(tasks)), store, {},
                        loop_seed=1, seeded=True)
    messages = [{"role": "user", "content": tasks[0].prompt}]
    answers = [broker.complete("solve", messages, {}, task_id=tasks[0].id, generation=2,
                               sample=k) for k in range(3)]
    again = broker.complete("solve", messages, {}, task_id=tasks[0].id, generation=2, sample=1)
    assert not any(a.cache_hit for a in answers)
    assert again.cache_hit  # a resumed sample 1 is not paid for twice
    rows = store.read().execute("SELECT request_json FROM model_calls ORDER BY id").fetchall()
    seeds = [json.loads(r[0])["params"]["seed"] for r in rows]
    assert seeds[:3] == [sampling_seed(1, 2, k) for k in range(3)]
    assert seeds[3] == seeds[1]
    store.close()


class PricedModel:
    """Answers anything at $0.25 a call (the simulated model is free)."""

    name = "priced/test"

    def complete(self, messages: list[Message], **params: object) -> Completion:
        return Completion("x = 1", "end_turn", Usage(10, 5), 0.25, 0.0, "priced/test")


def test_paid_counts_each_paid_call_once_and_matches_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "run.sqlite")
    broker = LoopBroker(PricedModel(), store, {}, loop_seed=1, seeded=False)
    for task, generation in (("a", 0), ("b", 0), ("a", 0), ("a", 1)):
        broker.complete("solve", [{"role": "user", "content": task}], {}, task_id=task,
                        generation=generation)
    recorded = store.read().execute(
        "SELECT SUM(cost_usd) FROM model_calls WHERE cache_hit = 0").fetchone()[0]
    # the third request is the first again (same generation and sample): a free cache hit;
    # the fourth is a new draw (another generation) and is paid
    assert broker.paid == recorded == 0.75
    store.close()


class UnseededModel:
    """Like Anthropic's API: takes no seed, and answers each call anew."""

    name = "anthropic/claude-test"
    free = True

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def complete(self, messages: list[Message], **params: object) -> Completion:
        self.sent.append(dict(params))
        return Completion(f"draw {len(self.sent)}", "end_turn", Usage(1, 1), 0.0, 0.0, self.name)


def test_a_model_without_seed_gets_independent_draws_that_replay(tmp_path: Path) -> None:
    model, store = UnseededModel(), Store(tmp_path / "run.sqlite")
    broker = LoopBroker(model, store, {}, loop_seed=4, seeded=False)
    messages = [{"role": "user", "content": "same request"}]
    keys = [(0, 0), (1, 0), (1, 1), (1, 1), (0, 0)]
    texts = [broker.complete("solve", messages, {"max_tokens": 50}, task_id="t", generation=g,
                             sample=s).completion.text for g, s in keys]
    # three draws; the repeated (generation, sample) pairs are a resume: cache hits
    assert texts == ["draw 1", "draw 2", "draw 3", "draw 3", "draw 1"]
    assert model.sent == [{"max_tokens": 50}] * 3  # the draw is never sent to the model
    recorded = [json.loads(r[0]) for r in store.read().execute(
        "SELECT request_json FROM model_calls ORDER BY id")]
    assert recorded[1]["draw"] == "loop seed 4, generation 1, sample 0"
    store.close()

    replay_store = Store(tmp_path / "replay.sqlite")
    replayed = LoopBroker(get_model(f"replay/{tmp_path / 'run.sqlite'}"), replay_store, {},
                          loop_seed=4, seeded=False)
    again = [replayed.complete("solve", messages, {"max_tokens": 50}, task_id="t",
                               generation=g, sample=s).completion.text for g, s in keys]
    assert again == texts
    replay_store.close()
