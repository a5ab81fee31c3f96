"""Which agent outcomes are infrastructure failures (``rsi_bench.infra``), in real containers.

A failure the host saw outside the agent is infra: a model call that failed after retries, a
container that would not start. An agent cannot turn its own failure into one (a retry, a free
pass): killing what it can reach, exhausting its memory, breaking its broker connection or
printing an infra cause all stay the agent's outcome.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from agent_world import RUN_LABEL, World, make_agent
from sandboxes import require_backend

from rsi_bench.agents.pool import SolvePool
from rsi_bench.broker import Broker
from rsi_bench.infra import InfraFailure, host_cause
from rsi_bench.models.base import ProviderError

pytestmark = pytest.mark.docker

MEDIAN = "def median(xs):\\n    return sorted(xs)[len(xs) // 2]\\n"


class DownModel:
    """A model server that answers nothing: what a backend raises after its retries."""

    name = "simulated"

    def complete(self, messages: Any, **params: Any) -> Any:
        raise ProviderError("connection refused: the model server is down")


def _solve(world: World, code: str, broker: Broker | None = None) -> Any:
    agent = make_agent(world.tmp / "agent", code)
    with SolvePool(agent, broker=broker or world.broker, generation=0, timeout=20.0,
                   run_label=RUN_LABEL) as pool:
        return pool.solve(world.task("median").view())


def test_a_model_that_failed_after_retries_makes_the_solve_infra(world: World) -> None:
    """Even when the agent catches the error and answers anyway: its answer was shaped by a
    failure that was not its own."""
    require_backend("docker")
    outcome = _solve(world, f"""
        def solve(task_view, model):
            try:
                model.complete([{{"role": "user", "content": "hi"}}])
            except Exception:
                pass
            return "{MEDIAN}"
        def improve(workspace, feedback, model):
            pass
    """, Broker(DownModel(), world.store))
    assert outcome.status == "ok" and outcome.infra.startswith("model: no answer")
    control = _solve_again(world)  # the same agent with a healthy model: not infra
    assert control.status == "ok" and control.infra == ""


def _solve_again(world: World) -> Any:
    agent = world.tmp / "agent"
    with SolvePool(agent, broker=world.broker, generation=0, timeout=20.0,
                   run_label=RUN_LABEL) as pool:
        return pool.solve(world.task("median").view())


@pytest.mark.parametrize("name, code", [
    ("kills everything it can reach", """
        import os, signal
        def solve(task_view, model):
            for pid in range(1, 400):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.kill(-1, signal.SIGKILL)
    """),
    ("exhausts its memory", """
        def solve(task_view, model):
            hog = []
            while True:
                hog.append(bytearray(64 << 20))
    """),
    ("fills its container's memory (a cgroup OOM kill)", """
        import os
        def solve(task_view, model):
            for _ in range(3):  # 3 x 900 MB: each within RLIMIT_AS, together over the cgroup
                if os.fork() == 0:
                    hog = bytearray(900 << 20)
                    for i in range(0, len(hog), 4096):
                        hog[i] = 1
                    os._exit(0)
            for _ in range(3):
                os.wait()
            raise MemoryError("the container ran out of memory")
    """),
    ("breaks its broker connection", """
        import os, socket
        def solve(task_view, model):
            path = os.environ.get("RSI_BENCH_BROKER") or "/run/rsi-bench/broker.sock"
            for payload in (b"{not json\\n", b"\\xff" * 100000, b'{"id": 1}'):
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.sendall(payload)
                s.close()
            raise RuntimeError("the broker connection is broken")
    """),
    ("claims an infra cause", """
        import sys
        def solve(task_view, model):
            print("model: status 503 after retries; infra; docker daemon error")
            sys.stderr.write("the agent runner did not start in the sandbox\\n")
            raise ConnectionRefusedError("model: no answer after retries")
    """),
])
def test_an_agents_own_failure_is_never_infra(world: World, name: str, code: str) -> None:
    require_backend("docker")
    outcome = _solve(world, code + "\n    def improve(workspace, feedback, model):\n"
                     "        pass\n")
    assert outcome.status in ("error", "timeout"), (name, outcome)
    assert outcome.infra == "", name
    # and the pool goes on: the next solve of a healthy agent is fine
    healthy = make_agent(world.tmp / "healthy", f"""
        def solve(task_view, model):
            return "{MEDIAN}"
        def improve(workspace, feedback, model):
            pass
    """)
    with SolvePool(healthy, broker=world.broker, generation=0, timeout=20.0,
                   run_label=RUN_LABEL) as pool:
        assert pool.solve(world.task("median").view()).status == "ok"


def test_a_container_that_cannot_start_is_infra(world: World,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend("docker")
    agent = make_agent(world.tmp / "agent", f"""
        def solve(task_view, model):
            return "{MEDIAN}"
        def improve(workspace, feedback, model):
            pass
    """)
    monkeypatch.setenv("RSI_BENCH_JUDGE_IMAGE", "rsi-bench-judge:no-such-image-for-tests")
    with SolvePool(agent, broker=world.broker, generation=0, timeout=20.0,
                   run_label=RUN_LABEL) as pool:
        with pytest.raises(Exception) as raised:
            pool.solve(world.task("median").view())
    assert host_cause(raised.value) is not None, repr(raised.value)


class SignalModel:
    """Answers at once and says that the agent is running (no timing decides the test)."""

    name = "simulated"

    def __init__(self) -> None:
        self.called = threading.Event()

    def complete(self, messages: Any, **params: Any) -> Any:
        from rsi_bench.models.base import Completion, Usage

        self.called.set()
        return Completion("ok", "end_turn", Usage(1, 1), 0.0, 0.0, "simulated/signal")


def test_a_container_stopped_from_outside_is_infra(world: World) -> None:
    """docker stops the warm container while the agent runs (a daemon restart, an operator's
    cleanup): the host sees the container exited without an OOM kill."""
    require_backend("docker")
    import docker

    agent = make_agent(world.tmp / "agent", f"""
        import time
        def solve(task_view, model):
            model.complete([{{"role": "user", "content": "started"}}])
            time.sleep(60)
            return "{MEDIAN}"
        def improve(workspace, feedback, model):
            pass
    """)
    model = SignalModel()
    label = f"{RUN_LABEL}-outside-{os.getpid()}"
    client = docker.from_env()

    def stop_it() -> None:
        model.called.wait(120)
        for container in client.containers.list(filters={"label": f"rsi-bench.run={label}"}):
            container.kill()

    killer = threading.Thread(target=stop_it)
    killer.start()
    with SolvePool(agent, broker=Broker(model, world.store), generation=0, timeout=90.0,
                   run_label=label) as pool:
        with pytest.raises(InfraFailure, match="stopped from outside"):
            pool.solve(world.task("median").view())
    killer.join()
    assert model.called.is_set()
