"""Wall time of one experiment (3 conditions x 2 seeds, rsi-core limit 4, one generation, the
simulated model, Docker) on the local executor and on a two-node Ray cluster on the same cores,
and the ratio ray / local (target: at most 1.2).

The cluster is a head and one more node, each ``--num-cpus=1`` and started as its own processes
on loopback (as tests/experiment/test_ray.py starts it), so Ray runs two runs at a time, as the
local executor does with ``parallel_runs = 2``. Cluster start-up is not timed; the experiment
command is, from start to report, both ways. Runs alternate (local, ray, local, ...) so a drift
in machine load hits both alike; the median of each is reported, with the load average.

    python benchmarks/ray_executor.py [--repeat N] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
# loopback only: see tests/experiment/test_ray.py
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
RAY_START = ("import sys; from ray._private import ray_constants, services; "
             "services.resolve_ip_for_localhost = lambda host: host; "
             "ray_constants.ENABLE_RAY_CLUSTER = True; "
             "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()")
TARGET = 1.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pids_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ray-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "ray3x2.toml"
    spec.write_text(SPEC)
    env = {**os.environ, **LOOPBACK}
    temp = tempfile.mkdtemp(prefix="rsray", dir="/tmp")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    start = [sys.executable, "-c", RAY_START, "start"]
    times: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        subprocess.run([*start, "--head", f"--port={port}", f"--temp-dir={temp}",
                        "--include-dashboard=false", *common], env=env, check=True,
                       capture_output=True)
        subprocess.run([*start, f"--address={address}", *common], env=env, check=True,
                       capture_output=True)
        base = [sys.executable, "-m", "rsi_bench.cli", "experiment", str(spec),
                "--replications", "200"]
        for i in range(args.repeat):
            for name, extra in (("local", []), ("ray", ["--executor", "ray",
                                                        "--address", address])):
                out = work / f"{name}-{i}"
                shutil.rmtree(out, ignore_errors=True)
                seconds = timed([*base, "--dir", str(out), *extra], env)
                times[name].append(seconds)
                print(f"{name} #{i + 1}: {seconds:.1f} s (load {os.getloadavg()[0]:.2f})",
                      flush=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids_with(temp):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 20
            while pids_with(temp) and time.monotonic() < deadline:
                time.sleep(0.5)
        shutil.rmtree(temp, ignore_errors=True)
    local, ray = statistics.median(times["local"]), statistics.median(times["ray"])
    ratio = ray / local
    print(f"local executor: median {local:.1f} s over {args.repeat}")
    print(f"ray executor (2 nodes x 1 CPU): median {ray:.1f} s over {args.repeat}")
    print(f"ratio ray / local: {ratio:.2f} (target <= {TARGET}): "
          f"{'PASS' if ratio <= TARGET else 'MISS'}; load average now "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
