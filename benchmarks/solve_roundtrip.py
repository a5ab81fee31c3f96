"""A solve's round trip in a warm agent container, on runc and on gVisor's runsc, in one run.

The seed agent solves rsi-core tasks through ``SolvePool`` (the path the loop uses) with the
simulated model (labelled as such; it answers at once, so the time is the sandbox's and the
agent's own). Per runtime: the first solve (container start included), then the median and total
of the warm solves that follow, each a fresh interpreter in the same emptied container, its
model call through the broker socket. Runtimes alternate per repeat so that load hits both alike.

    python benchmarks/solve_roundtrip.py [--solves 20] [--repeat 3] [--runtime runsc]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def measure(backend: str, solves: int, tmp: Path) -> tuple[float, list[float]]:
    from rsi_bench.agents.pool import SolvePool
    from rsi_bench.broker import Broker
    from rsi_bench.models.simulated import SimulatedConfig, SimulatedModel, sim_tasks
    from rsi_bench.paths import harness_dir
    from rsi_bench.store import Store
    from rsi_bench.tasks import load_suite

    tasks = list(load_suite("rsi-core"))
    store = Store(tmp / f"{backend.replace(':', '-')}-{time.monotonic_ns()}.sqlite")
    model = SimulatedModel(sim_tasks(tasks), SimulatedConfig(p_min=1.0, p_max=1.0))
    broker = Broker(model, store)
    try:
        with SolvePool(harness_dir() / "seed_agent", broker=broker, generation=0,
                       backend=backend, run_label="bench-solve") as pool:
            start = time.perf_counter()
            first = pool.solve(tasks[0].view())
            cold = time.perf_counter() - start
            assert first.status == "ok", first.detail
            warm = []
            for i in range(solves):
                start = time.perf_counter()
                outcome = pool.solve(tasks[(i + 1) % len(tasks)].view())
                warm.append(time.perf_counter() - start)
                assert outcome.status == "ok", outcome.detail
    finally:
        store.close()
    return cold, warm


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solves", type=int, default=20, help="warm solves per measurement")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--runtime", default="runsc", help="compared with runc (dockerd's default)")
    args = ap.parse_args(argv)

    from rsi_bench.sandbox import get_backend

    backends = ["docker", f"docker:{args.runtime}"]
    for backend in backends:
        get_backend(backend).check()  # fail fast, before any timing
    load_start = os.getloadavg()
    colds: dict[str, list[float]] = {b: [] for b in backends}
    warms: dict[str, list[float]] = {b: [] for b in backends}
    with tempfile.TemporaryDirectory(prefix="rsi-solve-bench-") as tmp:
        for rep in range(args.repeat):
            for backend in backends if rep % 2 == 0 else reversed(backends):
                cold, warm = measure(backend, args.solves, Path(tmp))
                colds[backend].append(cold)
                warms[backend].extend(warm)
                print(f"  repeat {rep + 1} {backend:<14} first {cold:6.2f} s, warm median "
                      f"{statistics.median(warm) * 1000:6.0f} ms", flush=True)
    load_end = os.getloadavg()
    base_cold = statistics.median(colds["docker"])
    base_warm = statistics.median(warms["docker"])
    print(f"\nseed agent, simulated model, {args.solves} warm solves x {args.repeat}; "
          f"{os.cpu_count()} CPUs; load avg {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print(f"{'runtime':<8} {'first solve s':>14} {'warm median ms':>15} {'warm total s':>13}")
    for backend in backends:
        cold, warm = statistics.median(colds[backend]), statistics.median(warms[backend])
        total = sum(warms[backend]) / args.repeat
        print(f"{backend.partition(':')[2] or 'runc':<8} {cold:8.2f} ({cold / base_cold:4.2f}x)"
              f" {warm * 1000:8.0f} ({warm / base_warm:4.2f}x) {total:12.2f}")
    if max(load_start[0], load_end[0]) > (os.cpu_count() or 1):
        print("note: load average above the CPU count; other work skews these numbers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
