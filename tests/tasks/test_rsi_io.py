"""The rsi-io suite loads as io tasks, and nothing hidden reaches the agent's view of one."""

from __future__ import annotations

import json

from rsi_bench.agents.container import _task_json
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.io_tasks import cross_check_task, spec

IO = load_suite("rsi-io")


def test_rsi_io_is_graded_io_tasks_with_brute_forces() -> None:
    assert len(IO) >= 32
    assert {t.kind for t in IO} == {"io"}
    grades = [t.difficulty for t in IO]
    assert set(grades) == {1, 2, 3}
    assert grades.count(3) >= 6 and grades.count(2) >= 15 and grades.count(1) >= 11
    assert all(t.brute_force.strip() and t.reference.strip() for t in IO)
    assert sum(bool(spec(t)["generated"]) for t in IO) >= 32  # large generated tests
    assert {spec(t)["checker"] for t in IO} == {"exact", "tokens", "float", "program"}


def test_the_agent_view_holds_no_hidden_part() -> None:
    for task in IO:
        sent = json.dumps(_task_json(task.view()))
        assert json.loads(sent)["kind"] == "io"
        for case in spec(task)["cases"][len(task.examples):]:
            if len(case["input"]) > 12 and case["input"] not in task.prompt:
                assert case["input"] not in sent
        assert task.reference not in sent and task.brute_force not in sent
        assert spec(task)["generator"] not in sent


def test_cross_check_adds_small_generated_inputs() -> None:
    task = IO.get("rsi-io/count_inversions")
    checked = spec(cross_check_task(task))
    assert len(checked["generated"]) == 30
    assert {g["size"] for g in checked["generated"]} == {spec(task)["small_size"]}


