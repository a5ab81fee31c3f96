"""Limits that measure the agent: model waits are excluded from a solve's or improve's time
limit, up to a cap, while the agent's own time and CPU stay bounded.

The clock tests use an injected clock. The docker tests make a single model call last longer
than the whole time limit, so only the exclusion can let such a solve finish; each has a
control where the same time is the agent's own and must time out.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from agent_world import RUN_LABEL, World, make_agent
from sandboxes import require_backend

from rsi_bench.agents.clock import AgentDeadline, ModelClock, default_cap
from rsi_bench.agents.container import run_improve
from rsi_bench.agents.pool import SolvePool
from rsi_bench.broker import Broker

MEDIAN = "def median(xs):\\n    return sorted(xs)[len(xs) // 2]\\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_overlapping_calls_count_once_and_the_deadline_moves_by_them() -> None:
    now = FakeClock()
    clock = ModelClock(now)
    deadline = AgentDeadline(10.0, 50.0, clock, now)
    deadline.start()
    assert deadline.deadline() == 110.0
    first, second = clock.call(), clock.call()
    first.__enter__()
    now.now += 2
    second.__enter__()  # in flight together with the first
    now.now += 3
    first.__exit__(None, None, None)
    now.now += 1
    assert clock.seconds() == 6.0  # a call still in flight counts
    second.__exit__(None, None, None)
    now.now += 4  # agent time
    assert clock.seconds() == 6.0 and deadline.deadline() == 116.0
    assert deadline.elapsed() == 10.0 and deadline.agent_s() == 4.0


def test_model_time_beyond_the_cap_is_agent_time() -> None:
    now = FakeClock()
    clock = ModelClock(now)
    deadline = AgentDeadline(10.0, 5.0, clock, now)
    deadline.start()
    with clock.call():
        now.now += 30
    assert deadline.excluded() == 5.0 and deadline.deadline() == 115.0
    assert deadline.hard_wall == 15.0  # a job never lasts longer, whatever its model time
    assert AgentDeadline(10.0, None, clock, now).cap == default_cap(10.0) == 100.0


class SlowModel:
    """The simulated model, each call ``seconds`` slow (really: this is what the limits see)."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner, self.name, self.seconds = inner, inner.name, seconds

    def complete(self, messages: Any, **params: Any) -> Any:
        time.sleep(self.seconds)
        return self.inner.complete(messages, **params)

    def complete_in_context(self, messages: Any, context: Any, **params: Any) -> Any:
        time.sleep(self.seconds)
        return self.inner.complete_in_context(messages, context, **params)


def _slow_broker(world: World, seconds: float) -> Broker:
    return Broker(SlowModel(world.broker.model, seconds), world.store)


ASKS_ONCE = f"""
    def solve(task_view, model):
        model.complete([{{"role": "user", "content": task_view.prompt}}])
        return "{MEDIAN}"
    def improve(workspace, feedback, model):
        model.complete([{{"role": "user", "content": "improve yourself"}}])
"""
SLEEPS = f"""
    import time
    def solve(task_view, model):
        time.sleep(8)
        return "{MEDIAN}"
    def improve(workspace, feedback, model):
        time.sleep(8)
"""


@pytest.mark.docker
def test_a_model_call_longer_than_the_limit_does_not_time_the_solve_out(world: World) -> None:
    require_backend("docker")
    asks = make_agent(world.tmp / "asks", ASKS_ONCE)
    sleeps = make_agent(world.tmp / "sleeps", SLEEPS)
    broker = _slow_broker(world, 8.0)
    view = world.task("median").view()
    with SolvePool(asks, broker=broker, generation=0, timeout=4.0, run_label=RUN_LABEL) as pool:
        slow = pool.solve(view)
    assert slow.status == "ok", slow.detail
    assert slow.model_s >= 8.0 and slow.agent_s < 4.0 and slow.duration_s >= 8.0
    with SolvePool(asks, broker=broker, generation=1, timeout=4.0, run_label=RUN_LABEL,
                   model_cap=1.0) as pool:
        capped = pool.solve(view)  # only 1 s of the 8 s call is excluded: 5 s < 8 s
    assert capped.status == "timeout" and "4 s of the agent's own time" in capped.detail
    with SolvePool(sleeps, broker=broker, generation=0, timeout=4.0,
                   run_label=RUN_LABEL) as pool:
        own = pool.solve(view)  # the same 8 s, spent by the agent itself
    assert own.status == "timeout" and own.model_s == 0.0


@pytest.mark.docker
def test_a_model_call_longer_than_the_limit_does_not_time_the_improve_out(
        world: World) -> None:
    require_backend("docker")
    asks = make_agent(world.tmp / "asks", ASKS_ONCE)
    sleeps = make_agent(world.tmp / "sleeps", SLEEPS)
    broker = _slow_broker(world, 8.0)
    slow = run_improve(asks, world.tmp / "child", [], broker=broker, generation=1,
                       timeout=4.0, run_label=RUN_LABEL)
    assert slow.status == "ok", slow.detail
    assert slow.model_s >= 8.0 and slow.agent_s < 4.0
    own = run_improve(sleeps, world.tmp / "child2", [], broker=broker, generation=1,
                      timeout=4.0, run_label=RUN_LABEL)
    assert own.status == "timeout" and "4 s of the agent's own time" in own.detail


class HeldModel:
    """The simulated model, each call held until ``release`` is set (at most 600 s)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name = inner, inner.name
        self.release = threading.Event()

    def complete_in_context(self, messages: Any, context: Any, **params: Any) -> Any:
        self.release.wait(600)
        return self.inner.complete_in_context(messages, context, **params)

    def complete(self, messages: Any, **params: Any) -> Any:
        self.release.wait(600)
        return self.inner.complete(messages, **params)


@pytest.mark.docker
@pytest.mark.slow
def test_cpu_burnt_while_the_model_is_busy_is_still_bounded(world: World) -> None:
    """The exclusion is of wall time only: an agent that computes while its call is in
    flight is stopped by its CPU limit (its own timeout plus 5 CPU seconds). The call is held
    until the test ends and the cap is large, so only the CPU limit can end this solve,
    however slowly the machine gives the burner its CPU."""
    require_backend("docker")
    burner = make_agent(world.tmp / "burner", f"""
        import threading
        def _burn():
            while True:
                pass
        def solve(task_view, model):
            threading.Thread(target=_burn, daemon=True).start()
            model.complete([{{"role": "user", "content": task_view.prompt}}])
            return "{MEDIAN}"
        def improve(workspace, feedback, model):
            pass
    """)
    model = HeldModel(world.broker.model)
    try:
        with SolvePool(burner, broker=Broker(model, world.store), generation=0, timeout=3.0,
                       run_label=RUN_LABEL, model_cap=500.0) as pool:
            burnt = pool.solve(world.task("median").view())
    finally:
        model.release.set()
    assert burnt.status == "error" and "CPU time" in burnt.detail, burnt.detail
    assert burnt.agent_s < 3.0 <= 8.0 <= burnt.duration_s
