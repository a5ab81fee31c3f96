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
     child's validation), i.e. the agent's own code, each call in a new interpreter;
   - **agent sandbox**: the containers agent calls run in: a warm one per concurrent solve of a
     generation (emptied between solves), a fresh one per improve and per validation; staging
     the agent's files, serving each call's broker socket, fetching an improve's workspace;
   - **run setup/close**: once per run, not per generation: loading the suite and the recording,
     opening the store, the lineage repository, removing a killed attempt's containers, copying
     the seed agent in as generation 0; at the end, closing the store (its last checkpoint);
   - **harness**: everything else: parent selection, feedback, the audit, the lineage commit,
     the store's committed writes, scheduling and progress.

Target: harness overhead per generation under 10% of judge time. The agent sandbox's share is
printed beside it: it is the price of running agent code in containers at all.

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

from rsi_bench.agents import container, pool
from rsi_bench.judge import Judge
from rsi_bench.loop import runner
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.runner import Loop

TARGET = 0.10


class Clock:
    """Sums wall time per part. A part timed inside another (a broker socket inside an agent
    call, say) counts only for itself: each second is counted once, for the innermost part."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stack = threading.local()

    def add(self, part: str, seconds: float) -> None:
        with self._lock:
            self.parts[part] = self.parts.get(part, 0.0) + seconds

    @contextlib.contextmanager
    def timing(self, part: str) -> Iterator[None]:
        stack = self._stack.__dict__.setdefault("frames", [])
        frame = [time.perf_counter(), 0.0]  # start, time of inner parts
        stack.append(frame)
        try:
            yield
        finally:
            stack.pop()
            spent = time.perf_counter() - frame[0]
            self.add(part, spent - frame[1])
            if stack:
                stack[-1][1] += spent

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.timing(part):
                return fn(*args, **kwargs)
        return timed

    def wrap_cm(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Time entering and leaving a context manager, not its body."""
        @contextlib.contextmanager
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with self.timing(part):
                cm = fn(*args, **kwargs)
                value = cm.__enter__()
            try:
                yield value
            finally:
                with self.timing(part):
                    cm.__exit__(None, None, None)
        return timed


# (owner, attribute, part, how): what is timed, and as which part
TIMED: list[tuple[Any, str, str, str]] = [
    (Judge, "judge_many", "judge", "call"),
    (Judge, "__enter__", "judge start/stop", "call"),
    (Judge, "__exit__", "judge start/stop", "call"),
    (Loop, "__init__", "run setup/close", "call"),
    (runner, "cleanup", "run setup/close", "call"),
    (Loop, "close", "run setup/close", "call"),
    (Loop, "_seed_generation", "run setup/close", "call"),
    # the agent's own code, in its container: a one-off call, or a job of a warm container
    (container, "_run_runner", "agent", "call"),
    (pool._Worker, "run", "agent", "call"),
    # containers for agent calls: creating, staging, serving the broker socket, fetching files
    (container, "_agent_box", "agent sandbox", "cm"),
    (container, "_fetch_workspace", "agent sandbox", "call"),
    (pool._Worker, "start", "agent sandbox", "call"),
    (pool._Worker, "stop", "agent sandbox", "call"),
    (pool.SolvePool, "__init__", "agent sandbox", "call"),
    (pool.SolvePool, "close", "agent sandbox", "call"),
    (pool, "BrokerServer", "agent sandbox", "cm"),
]


@contextlib.contextmanager
def instrumented(clock: Clock) -> Iterator[None]:
    """Time the judge, the agent and its sandbox without changing what they do."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _, _ in TIMED]
    for owner, name, part, how in TIMED:
        inner = getattr(owner, name)
        setattr(owner, name, clock.wrap(part, inner) if how == "call"
                else clock.wrap_cm(part, inner))
    try:
        yield
    finally:
        for owner, name, inner in saved:
            setattr(owner, name, inner)


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
    print(f"{'part':<16} {'s total':>8} {'s / generation':>15}")
    for part in ("run setup/close", "judge start/stop", "judge", "agent", "agent sandbox",
                 "harness"):
        value = parts.get(part, 0.0)
        print(f"{part:<16} {value:>8.2f} {value / generations:>15.3f}")
    judge = parts.get("judge", 0.0)
    ratio = parts["harness"] / judge
    print(f"\nharness overhead / judge time = {ratio:.3f}  "
          f"(target < {TARGET:.2f}: {'PASS' if ratio < TARGET else 'MISS'})")
    print(f"agent sandbox / judge time   = {parts.get('agent sandbox', 0.0) / judge:.2f}  "
          "(containers for agent calls)")
    if args.keep is None:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
