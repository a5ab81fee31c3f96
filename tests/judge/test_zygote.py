"""The zygote is an interpreter of its own: a solution process is forked from it, never from the
runner, and carries neither the runner's modules nor the at-fork handlers of ``threading`` and
``random`` (which made every fork about twice as slow)."""

from __future__ import annotations

import json

from rsi_bench.judge import Judge
from rsi_bench.tasks.model import Task

WATCHED = ["threading", "random", "queue", "statistics", "runner", "subprocess"]
# The solution raises what its own process holds: a candidate's exception is the one text a
# verdict's detail carries.
REPORT = Task(id="zygote/modules", entry_point="probe", reference="def probe():\n    return 0\n",
              prompt='def probe() -> int:\n    """Report."""\n',
              tests="def check(candidate):\n    candidate()\n")


def solution(imports: str = "") -> str:
    return (f"import sys, json\n{imports}\n"
            "def probe():\n"
            f"    raise RuntimeError(json.dumps(sorted(set(sys.modules) & set({WATCHED!r}))))\n")


def modules_seen(judge: Judge, imports: str = "") -> list[str]:
    verdict = judge.judge(REPORT, solution(imports))
    assert verdict.status == "error" and verdict.detail.startswith("RuntimeError: "), verdict
    return json.loads(verdict.detail.removeprefix("RuntimeError: "))


def test_a_solution_process_holds_none_of_the_runners_modules(isolating_backend: str) -> None:
    with Judge(isolating_backend, workers=1, timeout=20.0) as judge:
        quiet = modules_seen(judge)
        # the control: the same probe sees a module the solution imports itself
        control = modules_seen(judge, "import threading, random")
        after = modules_seen(judge)
    assert quiet == [] and after == [], (quiet, after)
    assert control == ["random", "threading"], control
