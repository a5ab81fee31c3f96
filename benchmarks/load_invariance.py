"""Same config, same score, whatever the load: the README's main command on an idle machine and
with a CPU burner on every core must give identical verdicts, solutions, scores and lineage.

The main command is ``rsi-bench run --limit 10 --generations 3`` with the default model
(``local/qwen2.5-coder-0.5b``). Its sampling is seeded by the host (every generation and sample
its own seed, ``rsi_bench.broker.sampling``) and the local server decodes one request at a time,
so its answers are a function of the request alone, however slowly they come. What load can
change is only *time*: the run must not let time become a verdict (a solve scored ``timeout``
because the model was slow, an improve recorded invalid because the model took 600 s).

1. Run the command into ``WORK/idle`` (nothing else started by this script), timed.
2. Start one busy-loop process per usable CPU (``--burners``), run the same command into
   ``WORK/loaded``, timed; stop the burners.
3. Compare the two stores: per generation its status, parent and invalid reason; per result its
   split, verdict, the solve's status and the solution's text; the per-generation scores.
   Timing columns are never compared. Prints both tables, both wall times, every difference,
   and exits 1 when there is one.

    python benchmarks/load_invariance.py [--work DIR] [--burners N] [--order idle,loaded]
        [--idle-from RUN_DIR] [-- extra rsi-bench run options, e.g. --model simulated]

``--idle-from`` takes a finished run of the same command made on an idle machine (the one
``./quickstart.sh`` ends with: ``runs/demo``) as the idle side, and runs only the loaded one.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAIN = ["--limit", "10", "--generations", "3"]


def _burn() -> None:
    os.nice(0)  # same priority as the run: the point is contention, not starvation by policy
    while True:
        pass


@contextlib.contextmanager
def burners(n: int) -> Iterator[None]:
    procs = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()


def run(run_dir: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "rsi_bench.cli", "run", *MAIN, "--run-dir", str(run_dir),
           "--no-report", *extra]
    print("$", " ".join(cmd[2:]), flush=True)
    start = time.monotonic()
    done = subprocess.run(cmd, check=False)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"the run into {run_dir} failed (exit {done.returncode})")
    return took


def snapshot(run_dir: Path) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True)
    gens = {g: (status, parent, reason) for g, status, parent, reason in db.execute(
        "SELECT generation, status, parent, reason FROM generations ORDER BY generation")}
    results = {(g, task, sample): (split, status, solve_status, solution)
               for g, task, sample, split, status, solve_status, solution in db.execute(
                   "SELECT generation, task_id, sample, split, status, solve_status, solution"
                   " FROM results")}
    scores: dict[int, dict[str, float]] = {}
    for g, split, score in db.execute(
            "SELECT generation, split, AVG(status = 'pass') FROM results"
            " GROUP BY generation, split ORDER BY generation, split"):
        scores.setdefault(g, {})[split] = score
    db.close()
    return {"generations": gens, "results": results, "scores": scores}


def table(name: str, snap: dict[str, Any], took: float | None) -> str:
    splits = sorted({s for row in snap["scores"].values() for s in row})
    lines = [f"{name}: " + ("a run made earlier" if took is None else f"{took:.0f} s wall"),
             "  gen  status     parent  " + "  ".join(f"{s:>7}" for s in splits) + "  reason"]
    for g, (status, parent, reason) in sorted(snap["generations"].items()):
        row = snap["scores"].get(g, {})
        cells = "  ".join(f"{row[s]:7.2f}" if s in row else f"{'-':>7}" for s in splits)
        lines.append(f"  {g:>3}  {status:<9}  {'-' if parent is None else parent:>6}  {cells}"
                     f"  {reason or ''}")
    return "\n".join(lines)


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for part in ("generations", "results"):
        for key in sorted(set(a[part]) | set(b[part]), key=str):
            left, right = a[part].get(key), b[part].get(key)
            if left != right:
                out.append(f"{part} {key}: idle {_short(left)} / loaded {_short(right)}")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="where the two runs go (default: a temp dir)")
    ap.add_argument("--burners", type=int, default=len(os.sched_getaffinity(0)),
                    help="busy-loop processes during the loaded run (default: usable CPUs)")
    ap.add_argument("--order", default="idle,loaded", choices=["idle,loaded", "loaded,idle"])
    ap.add_argument("--idle-from", type=Path, metavar="RUN_DIR",
                    help="a finished idle run of the same command: run only the loaded one")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="rsi-load-"))
    work.mkdir(parents=True, exist_ok=True)
    if any((work / name).exists() for name in ("idle", "loaded")):
        raise SystemExit(f"{work} already holds runs; give an empty --work")
    idle_dir = work / "idle"
    if args.idle_from is not None:
        if not (args.idle_from / "run.sqlite").is_file():
            raise SystemExit(f"{args.idle_from}: no run.sqlite (give a finished run directory)")
        idle_dir = args.idle_from

    times: dict[str, float | None] = {"idle": None}
    for name in args.order.split(","):
        if name == "idle":
            if args.idle_from is not None:
                continue
            times[name] = run(work / name, extra)
        else:
            with burners(args.burners):
                times[name] = run(work / name, extra)
    idle, loaded = snapshot(idle_dir), snapshot(work / "loaded")
    print()
    print(table("idle", idle, times["idle"]))
    print(table(f"loaded ({args.burners} burners)", loaded, times["loaded"]))
    if times["idle"] is not None and times["loaded"] is not None:
        print(f"load factor (loaded / idle wall time): {times['loaded'] / times['idle']:.2f}")
    diff = differences(idle, loaded)
    print(f"results compared: {len(idle['results'])} idle, {len(loaded['results'])} loaded;"
          f" differences: {len(diff)}")
    for line in diff:
        print("  " + line)
    print("SAME" if not diff else "DIFFERENT")
    return 0 if not diff else 1


if __name__ == "__main__":
    raise SystemExit(main())
