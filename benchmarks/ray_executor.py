"""Wall time of one experiment (3 conditions x 2 seeds, rsi-core limit 4, one generation, the
simulated model, Docker) on the local executor and on a two-node Ray cluster on the same cores,
and the ratio ray / local (target: at most 1.2).

The cluster is a head and one more node, each ``--num-cpus=1`` and started as its own processes
on loopback (tests/ray_cluster.py, as the tests start it), so Ray runs two runs at a time, as the
local executor does with ``parallel_runs = 2``. Cluster start-up is not timed (it is printed);
the experiment command is, from start to report, both ways, and the cluster is up (idle) during
the local rounds too. Rounds alternate (local, ray; local, ray; ...) so a drift in machine load
hits both alike: each round's ratio is printed with the load average around it, then the
median of the ratios.

    python benchmarks/ray_executor.py [--rounds N] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ray_cluster import LOOPBACK, Cluster  # noqa: E402

SPEC = """
[experiment]
name = "ray3x2"
suite = "rsi-core"
limit = 4
model = "simulated"
generations = 1
conditions = ["self", "noop", "fixed"]
seeds = [0, 1]
concurrency = 2
solve_timeout = 15
improve_timeout = 60
[plan]
parallel_runs = 2
"""
TARGET = 1.2


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ray-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "ray3x2.toml"
    spec.write_text(SPEC)
    env = {**os.environ, **LOOPBACK}
    cluster = Cluster(nodes=2)
    ratios = []
    try:
        started = time.monotonic()
        cluster.start()
        print(f"cluster start (not timed below): {time.monotonic() - started:.1f} s", flush=True)
        base = [sys.executable, "-m", "rsi_bench.cli", "experiment", str(spec),
                "--replications", "200"]
        for i in range(args.rounds):
            seconds, loads = {}, []
            for name, extra in (("local", []), ("ray", ["--executor", "ray",
                                                        "--address", cluster.address])):
                out = work / f"{name}-{i}"
                shutil.rmtree(out, ignore_errors=True)
                loads.append(os.getloadavg()[0])
                seconds[name] = timed([*base, "--dir", str(out), *extra], env)
            loads.append(os.getloadavg()[0])
            ratio = seconds["ray"] / seconds["local"]
            ratios.append(ratio)
            print(f"round {i + 1}: local {seconds['local']:.1f} s, ray {seconds['ray']:.1f} s, "
                  f"ratio {ratio:.2f} (1-min load {min(loads):.1f} to {max(loads):.1f})",
                  flush=True)
    finally:
        left = cluster.stop()
        if left:
            print(f"Ray processes left: {left}", file=sys.stderr)
    median = statistics.median(ratios)
    print(f"ratio ray / local: median {median:.2f} over {len(ratios)} rounds "
          f"(per round: {', '.join(f'{r:.2f}' for r in ratios)}; target <= {TARGET}): "
          f"{'PASS' if median <= TARGET else 'MISS'}; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
