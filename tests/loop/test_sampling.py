"""Each generation and each sample of a task gets its own sampling seed; a resume gets the same."""

from __future__ import annotations

import json
from pathlib import Path

from rsi_bench.loop.runner import LoopBroker, sampling_seed
from rsi_bench.models import get_model
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
