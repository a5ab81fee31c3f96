"""Fresh state between warm-pool solves, channel by channel, on every isolating backend.

One warm container: a solve reads a channel, the next plants a mark in it, the one after reads
it again; the reads must agree. A last solve plants and reads in one go and must see the change
(the control that the read can fire).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from agent_world import RUN_LABEL, World, make_agent
from fresh_probe import AGENT, CHANNELS, closed

from rsi_bench.agents.pool import SolvePool
from rsi_bench.sandbox.uids import UID_RANGES

PLAN = ("state", "plant", "state", "control")


@pytest.mark.parametrize("channel", CHANNELS)
def test_nothing_a_solve_plants_reaches_the_next(world: World, isolating_backend: str,
                                                 channel: str) -> None:
    agent = make_agent(world.tmp / f"fresh-{channel}", AGENT)
    views = [replace(world.task("chunk").view(), entry_point=f"step{i}") for i in range(4)]
    (agent / "plan.json").write_text(json.dumps(
        {v.entry_point: [action, channel] for v, action in zip(views, PLAN, strict=True)}))
    with SolvePool(agent, broker=world.broker, generation=0, backend=isolating_backend,
                   run_label=RUN_LABEL) as pool:
        outcomes = [pool.solve(v) for v in views]
    assert all(o.status == "ok" for o in outcomes), [o.detail for o in outcomes]
    before, planted, after, control = (o.solution or "" for o in outcomes)
    assert after == before, f"{channel} carried {planted} to the next solve"
    if closed(control):  # nothing to plant anywhere: the channel is closed for every solve
        assert closed(planted), planted
    else:
        assert control.startswith("control differs"), control


def test_warm_containers_run_as_distinct_agent_uids(world: World, isolating_backend: str) -> None:
    agent = make_agent(world.tmp / "whoami", """
        import os, time
        def solve(task_view, model):
            time.sleep(1)  # keeps both workers busy at once, so both start
            return str(os.getuid())
        def improve(workspace, feedback, model):
            pass
    """)
    from concurrent.futures import ThreadPoolExecutor

    with SolvePool(agent, broker=world.broker, generation=0, backend=isolating_backend,
                   run_label=RUN_LABEL, workers=2) as pool:
        views = [world.task(t).view() for t in ("chunk", "median", "count_vowels", "chunk")]
        with ThreadPoolExecutor(2) as threads:
            outcomes = list(threads.map(pool.solve, views))
        started = [w.uid for w in pool._workers if w.lease is not None]
    configured = set(started)
    assert len(configured) == len(started) and configured <= set(UID_RANGES["agent"])
    assert {int(o.solution or "0") for o in outcomes} <= configured
