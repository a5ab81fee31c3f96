"""Fresh state between judge jobs, channel by channel, on every isolating backend.

In one worker: a job reads a channel, the next plants a mark in it, the one after reads it
again; the two reads must agree. The control plants and reads in a single job and must see the
change, so a read that could never see a mark fails the test.
"""

from __future__ import annotations

import pytest
from fresh_probe import CHANNELS, closed, judge_solution

from rsi_bench.judge import Judge
from rsi_bench.sandbox import Limits
from rsi_bench.tasks.model import Task

# The solution raises its answer, uncaught by the tests: a candidate's exception is the one text
# a verdict's detail carries (a failed assert's message never is).
REPORT = Task(id="fresh/report", entry_point="probe", reference="def probe():\n    return ''\n",
              prompt='def probe() -> str:\n    """Report."""\n',
              tests="def check(candidate):\n    candidate()\n")


def ask(judge: Judge, action: str, channel: str) -> str:
    verdict = judge.judge(REPORT, judge_solution(action, channel, raised=True))
    assert verdict.status == "error", verdict  # "error" carries the answer; anything else broke
    assert verdict.detail.startswith("RuntimeError: "), verdict
    return verdict.detail.removeprefix("RuntimeError: ")


@pytest.mark.parametrize("channel", CHANNELS)
def test_nothing_a_judge_job_plants_reaches_the_next(isolating_backend: str,
                                                     channel: str) -> None:
    with Judge(isolating_backend, workers=1, timeout=20.0,
               limits=Limits(memory_mb=1024, job_memory_mb=256, pids=128)) as judge:
        before = ask(judge, "state", channel)
        planted = ask(judge, "plant", channel)
        after = ask(judge, "state", channel)
        control = ask(judge, "control", channel)
    assert after == before, f"{channel} carried {planted} to the next job"
    if closed(control):  # nothing to plant anywhere: the channel is closed for every job
        assert closed(planted), planted
    else:
        assert control.startswith("control differs"), control
