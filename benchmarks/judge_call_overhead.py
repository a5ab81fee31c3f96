"""Per-call cost of the judge boundary: a round trip for small values, and large arguments.

Run: python benchmarks/judge_call_overhead.py [--sandbox docker] [--calls 20000] [--repeat 3]
See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

TARGET_US = 100.0


def _task(name: str, body: str):
    from rsi_bench.tasks.model import Task

    return Task(id=f"bench/{name}", entry_point="f", prompt="def f(*a): ...\n", reference="",
                tests="def check(candidate):\n" + "".join(f"    {line}\n" for line in body))


SMALL = "def f(a, b):\n    return a + b\n"
BIG = "def f(xs):\n    return len(xs)\n"
BIG_OUT = "def f(n):\n    return list(range(n))\n"


def loop_task(calls: int):
    return _task(f"loop-{calls}", [f"for i in range({calls}):",
                                   "    assert candidate(i, 1) == i + 1"])


def pipe_floor_us(calls: int) -> float:
    """The machine's floor for any process boundary, in the same run: one byte each way between
    two Python processes over pipes (the two context switches a judge call cannot avoid)."""
    from_parent, to_child = os.pipe()  # (read end, write end)
    from_child, to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:  # the echo: as bare as a peer can be
        os.close(to_child)
        os.close(from_child)
        while os.read(from_parent, 1):
            os.write(to_parent, b"x")
        os._exit(0)
    os.close(from_parent)
    os.close(to_parent)
    start = time.perf_counter()
    for _ in range(calls):
        os.write(to_child, b"x")
        os.read(from_child, 1)
    elapsed = time.perf_counter() - start
    os.close(to_child)
    os.waitpid(pid, 0)
    os.close(from_child)
    return elapsed / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sandbox", default="docker", choices=["docker", "bubblewrap", "local"])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--elements", type=int, default=8_000_000)
    args = ap.parse_args(argv)

    from rsi_bench.judge import Job, Judge

    n = args.calls
    jobs = [Job(loop_task(0), SMALL), Job(loop_task(n), SMALL)]
    big_in = Job(_task("big-in", [f"xs = list(range({args.elements}))",
                                  f"assert candidate(xs) == {args.elements}"]), BIG)
    big_out = Job(_task("big-out", [f"assert len(candidate({args.elements})) == "
                                    f"{args.elements}"]), BIG_OUT)
    per_call, floor, big_in_s, big_out_s = [], [], [], []
    with Judge(args.sandbox, workers=1, timeout=120.0) as judge:
        for rep in range(args.repeat):
            empty, full = judge.judge_many(jobs)
            assert (empty.status, full.status) == ("pass", "pass"), (empty, full)
            per_call.append((full.duration_s - empty.duration_s) / n * 1e6)
            floor.append(pipe_floor_us(n))
            # the big-list jobs: their duration minus that of building the list in the tests
            start = time.perf_counter()
            verdict = judge.judge_many([big_in])[0]
            assert verdict.status == "pass", verdict
            big_in_s.append(verdict.duration_s)
            verdict = judge.judge_many([big_out])[0]
            assert verdict.status == "pass", verdict
            big_out_s.append(verdict.duration_s)
            print(f"repeat {rep + 1}: {per_call[-1]:.1f} us/call (pipe floor {floor[-1]:.1f} us), "
                  f"{args.elements:,}-element "
                  f"argument job {big_in_s[-1]:.2f} s, result job {big_out_s[-1]:.2f} s "
                  f"({time.perf_counter() - start:.1f} s wall)", flush=True)
    us = statistics.median(per_call)
    print(f"\n{args.sandbox}: median of {args.repeat}, {n} calls of candidate(i, 1)")
    floor_us = statistics.median(floor)
    print(f"per-call round trip (small values): {us:.1f} us (min {min(per_call):.1f})")
    print(f"this machine's floor, a bare one-byte pipe round trip between two Python processes: "
          f"{floor_us:.1f} us; the boundary's own cost above it: {us - floor_us:.1f} us "
          f"({us / floor_us:.2f} x the floor)")
    print(f"job with a {args.elements:,}-element list argument: "
          f"{statistics.median(big_in_s):.2f} s; returning one: "
          f"{statistics.median(big_out_s):.2f} s (each includes building the list)")
    print(f"{'PASS' if us < TARGET_US else 'MISS'}  per-call overhead < {TARGET_US:.0f} us")
    print(f"{'PASS' if us - floor_us < TARGET_US else 'MISS'}  the boundary's own cost (above "
          f"the floor) < {TARGET_US:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
