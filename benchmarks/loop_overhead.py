"""The loop's own overhead per generation, with the replay model (no model latency at all).

1. Record: run the loop on ``rsi-core`` with the simulated model (``--generations`` G, ``self``
   improver) into a scratch directory.
2. Replay: run the same loop again with ``--model replay/<recording>``: every model call is
   answered from the recording, so the agents do exactly what they did, with zero model time.
   (A miss would raise; the script checks that every verdict equals the recorded one.)
3. The replay run is timed, concurrency 1 so that the parts add up to the wall time:

   - **judge**: wall time inside ``Judge.judge_many`` (host side, IPC included), plus the judge's
     start and stop (its warm workers' containers, once per run) shown separately;
   - **agent**: wall time of the agent runner inside its container (``solve``, ``improve`` and the
     child's validation), i.e. the agent's own code;
   - **agent sandbox**: creating and removing the fresh container each agent call gets (one per
     solve: tasks never share a container), staging its files and serving its broker socket;
   - **run setup**: once per run, not per generation: loading the suite and the recording,
     opening the store, the lineage repository, removing a killed attempt's containers;
   - **harness**: everything else: parent selection, feedback, the audit, the lineage commit,
     the store's committed writes, scheduling and progress.

Target: harness overhead per generation under 10% of judge time. The agent sandbox's share is
printed beside it: it is the price of one fresh container per agent call.

    python benchmarks/loop_overhead.py [--generations 2] [--limit N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rsi_bench.agents import container
from rsi_bench.judge import Judge
from rsi_bench.loop import runner
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.runner import Loop

TARGET = 0.10


class Clock:
    """Sums wall time per part; the replay runs at concurrency 1, so parts never overlap."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, part: str, seconds: float) -> None:
        with self._lock:
            self.parts[part] = self.parts.get(part, 0.0) + seconds

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(part, time.perf_counter() - start)
        return timed


@contextlib.contextmanager
def instrumented(clock: Clock) -> Iterator[None]:
    """Time the judge, the agent runner and the agent sandbox without changing what they do."""
    saved = (Judge.judge_many, Judge.__enter__, Judge.__exit__, container._agent_box,
             container._run_runner, Loop.__init__, runner.cleanup)
    inner_box = container._agent_box

    @contextlib.contextmanager
    def box(*args: Any, **kwargs: Any) -> Iterator[Any]:
        start = time.perf_counter()
        cm = inner_box(*args, **kwargs)
        sandbox = cm.__enter__()
        clock.add("agent sandbox", time.perf_counter() - start)
        try:
            yield sandbox
        finally:
            start = time.perf_counter()
            cm.__exit__(None, None, None)
            clock.add("agent sandbox", time.perf_counter() - start)

    Judge.judge_many = clock.wrap("judge", Judge.judge_many)  # type: ignore[method-assign]
    Judge.__enter__ = clock.wrap("judge start/stop", Judge.__enter__)  # type: ignore[method-assign]
    Judge.__exit__ = clock.wrap("judge start/stop", Judge.__exit__)  # type: ignore[method-assign]
    container._agent_box = box  # type: ignore[assignment]
    container._run_runner = clock.wrap("agent", container._run_runner)
    Loop.__init__ = clock.wrap("run setup", Loop.__init__)  # type: ignore[method-assign]
    runner.cleanup = clock.wrap("run setup", runner.cleanup)
    try:
        yield
    finally:
        (Judge.judge_many, Judge.__enter__, Judge.__exit__,  # type: ignore[method-assign]
         container._agent_box, container._run_runner, Loop.__init__, runner.cleanup) = saved


def run_loop(config: RunConfig, run_dir: Path) -> tuple[float, int]:
    """Run a loop to the end; return its wall time and its number of generations."""
    start = time.perf_counter()
    loop = Loop(config, run_dir)
    try:
        rows = loop.run()
    finally:
        loop.close()
    return time.perf_counter() - start, len(rows)


def verdicts(run_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        return db.execute("SELECT generation, task_id, sample, status, solution FROM results "
                          "ORDER BY generation, task_id, sample").fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="first N tasks of rsi-core")
    parser.add_argument("--keep", type=Path, help="keep the two run dirs here")
    args = parser.parse_args()

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="rsi-bench-overhead-"))
    common = {"generations": args.generations, "limit": args.limit, "improver": "self",
              "concurrency": 1, "seed": 7}
    recording, replay = scratch / "recorded", scratch / "replayed"
    shutil.rmtree(replay, ignore_errors=True)
    seconds, _ = run_loop(RunConfig(model="simulated", **common), recording)
    print(f"recorded: simulated model, {args.generations} generations, {seconds:.1f} s")

    clock = Clock()
    with instrumented(clock):
        wall, generations = run_loop(RunConfig(model=f"replay/{recording}", **common), replay)
    if verdicts(replay) != verdicts(recording):
        raise SystemExit("replay differs from the recording: the measurement is void")
    parts = dict(clock.parts)
    parts["harness"] = wall - sum(parts.values())
    print(f"replayed: {generations} generations, {len(verdicts(replay))} results, identical "
          f"verdicts and solutions; wall {wall:.2f} s\n")
    print(f"{'part':<15} {'s total':>8} {'s / generation':>15}")
    for part in ("run setup", "judge start/stop", "judge", "agent", "agent sandbox", "harness"):
        value = parts.get(part, 0.0)
        print(f"{part:<15} {value:>8.2f} {value / generations:>15.3f}")
    judge = parts.get("judge", 0.0)
    ratio = parts["harness"] / judge
    print(f"\nharness overhead / judge time = {ratio:.3f}  "
          f"(target < {TARGET:.2f}: {'PASS' if ratio < TARGET else 'MISS'})")
    print(f"agent sandbox / judge time   = {parts.get('agent sandbox', 0.0) / judge:.2f}  "
          "(one fresh container per agent call)")
    if args.keep is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
