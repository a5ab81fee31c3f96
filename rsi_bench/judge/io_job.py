"""Judging a stdin/stdout program (task kind ``io``): the runner's side. Stdlib only; deployed
beside runner.py in the judge image.

For each test, in order, until the first that does not pass:

1. the test's input and expected output are known to the runner only: given in the job frame,
   or (a generated test) made here by the task's seeded generator, the expected output being the
   task reference's, run in this process on that input (cached per runner);
2. the zygote (which never held a test) forks the program's process: stdin is a memfd holding
   only this test's input, stdout and stderr are pipes to the runner; it becomes the job uid,
   takes the rlimits (CPU seconds = the time limit, address space = the memory limit) and execs
   ``python3 -I solution.py`` in a new, empty work directory;
3. the runner reads stdout up to a cap and compares it with the checker (``exact``, ``tokens``,
   ``float`` or the task's checker program) here, never in the program's process;
4. every process of the uid is killed and every writable root wiped and checked (fresh.py), so
   the next test starts from the same state as the first; what cannot be wiped ends the job.

A verdict names the index of the test that decided it, never the test's content.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import resource
import select
import signal
import sys
import time
from collections import OrderedDict
from typing import Any

TAIL = 4096
OUTPUT_CAP = 16 << 20  # bytes of stdout read per test; more is an error
WALL_FACTOR, WALL_SLACK = 4.0, 10.0  # the wall clock only stops programs that do not compute
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
_CACHE: OrderedDict[str, tuple[str, str]] = OrderedDict()  # generated tests, per runner
_CACHE_BYTES = 256 << 20


def wall_limit(time_limit: float) -> float:
    """The wall clock of one test: a program that sleeps or waits ends here."""
    return time_limit * WALL_FACTOR + WALL_SLACK


# ---------------------------------------------------------------- the program's process


def child_main(job: dict, fds: list[int]) -> None:
    """Runs in the process the zygote forked: set up, then exec the program. Never returns."""
    try:
        stdin_fd, out_w, err_w = fds
        os.dup2(stdin_fd, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, 1 << 16)
        os.setsid()
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        if os.getuid() == 0:
            os.setgroups([])
            os.setgid(job["uid"])
            os.setuid(job["uid"])
        os.chdir(job["workdir"])
        cpu = max(1, math.ceil(job["time_limit_s"]))
        for which, value in (
            (resource.RLIMIT_AS, job["memory_mb"] << 20),
            (resource.RLIMIT_NPROC, job["nproc"]),
            (resource.RLIMIT_FSIZE, job["fsize_mb"] << 20),
            (resource.RLIMIT_NOFILE, 256),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        env = {"HOME": job["workdir"], "TMPDIR": job["workdir"], "PATH": "/usr/bin:/bin",
               "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        os.execve(PYTHON, ["python3", "-I", "solution.py"], env)
    finally:
        os._exit(70)


# ---------------------------------------------------------------- tests and checkers


def _run_in_process(program: str, stdin: str) -> str:
    """The reference's output on ``stdin``: trusted task code, run here with its own streams."""
    saved = sys.stdin, sys.stdout, sys.getrecursionlimit()
    out = io.BytesIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    sys.stdout = writer = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    try:
        exec(compile(program, "reference.py", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise RuntimeError(f"the reference exited with {exc.code!r}") from None
    finally:
        writer.flush()
        writer.detach()  # else collecting the wrapper would close the buffer read below
        sys.stdin, sys.stdout = saved[0], saved[1]
        sys.setrecursionlimit(saved[2])
    return out.getvalue().decode("utf-8")


def generated_case(spec: dict, reference: str, seed: int, size: int) -> tuple[str, str]:
    """(input, expected output) of one generated test; the same for the same task and seed."""
    key = hashlib.sha256("\0".join(
        [spec["generator"], reference, str(seed), str(size)]).encode()).hexdigest()
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    namespace: dict = {"__name__": "__generator__"}
    exec(compile(spec["generator"], "generator.py", "exec"), namespace)
    import random  # here, not at import: the zygote imports this file (see zygote.py)

    text = namespace["generate"](random.Random(seed), size)
    case = (text, _run_in_process(reference, text))
    _CACHE[key] = case
    while sum(len(a) + len(b) for a, b in _CACHE.values()) > _CACHE_BYTES and len(_CACHE) > 1:
        _CACHE.popitem(last=False)
    return case


def cases(job: dict) -> list[tuple[str, str]]:
    spec = job["spec"]
    found = [(c["input"], c["output"]) for c in spec.get("cases", [])]
    for gen in spec.get("generated", []):
        found.append(generated_case(spec, job["reference"], gen["seed"], gen["size"]))
    return found


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _float_equal(got: str, want: str, tol: float) -> bool:
    if got == want:
        return True
    try:
        a, b = float(got), float(want)
    except ValueError:
        return False
    return math.isfinite(a) and abs(a - b) <= tol * max(1.0, abs(b))


def check(spec: dict, stdin: str, output: str, expected: str) -> bool:
    """Does ``output`` answer this test? Runs in the runner, on data only."""
    kind = spec.get("checker", "tokens")
    if kind == "exact":  # line by line, trailing spaces and trailing blank lines aside
        return _lines(output) == _lines(expected)
    if kind == "tokens":
        return output.split() == expected.split()
    if kind == "float":
        got, want = output.split(), expected.split()
        tol = float(spec.get("tolerance", 1e-6))
        return len(got) == len(want) and all(_float_equal(a, b, tol)
                                         for a, b in zip(got, want, strict=True))
    if kind == "program":
        namespace: dict = {"__name__": "__checker__"}
        exec(compile(spec["checker_program"], "checker.py", "exec"), namespace)
        try:
            return namespace["check"](stdin, output, expected) is True
        except Exception:  # noqa: BLE001 - output the checker cannot parse is a wrong answer
            return False
    raise ValueError(f"unknown checker {kind!r}")


# ---------------------------------------------------------------- one job


def run(runner: Any, job: dict) -> dict:
    """Judge one io job on ``runner`` (runner.Runner); the result frame's fields."""
    start = time.monotonic()
    status, detail, tail, dirty, passed = "pass", "", b"", "", 0
    spec = job["spec"]
    tests = cases(job)
    for index, (stdin, expected) in enumerate(tests, 1):
        status, detail, out, tail, dirty = _one_test(runner, job, stdin)
        if status == "pass" and not check(spec, stdin, out.decode("utf-8", "replace"), expected):
            status, detail = "fail", "wrong answer"
        if dirty:
            status, detail = "error", "left state behind that could not be wiped"
        if status != "pass":
            detail = f"test {index} of {len(tests)}: {detail}"
            break
        passed += 1
    if status == "pass":
        detail = f"{passed} tests"
    return {"id": job["id"], "status": status, "detail": detail[:500], "calls": passed,
            "duration_s": round(time.monotonic() - start, 6),
            "output_tail": tail.decode("utf-8", "replace")[-TAIL:], "output_bytes": len(tail),
            "dirty": dirty}


def _one_test(runner: Any, job: dict, stdin: str) -> tuple[str, str, bytes, bytes, str]:
    """Run the program once: (status, detail, stdout, stderr tail, dirty)."""
    workdir = os.path.join(runner.work_root, f"job-{os.urandom(8).hex()}")
    os.makedirs(workdir, mode=0o700)
    with open(os.path.join(workdir, "solution.py"), "w", encoding="utf-8") as f:
        f.write(job["solution"])
    if os.getuid() == 0:
        os.chown(workdir, runner.uid, runner.uid)
        os.chown(os.path.join(workdir, "solution.py"), runner.uid, runner.uid)
    if runner.fresh is not None:
        runner.fresh.restore(runner.work_root)
    stdin_fd = os.memfd_create("stdin", 0)
    os.write(stdin_fd, stdin.encode())
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    spec = {"kind": "io", "uid": runner.uid, "workdir": workdir,
            "time_limit_s": job["spec"]["time_limit_s"], "memory_mb": job["spec"]["memory_mb"],
            "nproc": job.get("nproc", 32), "fsize_mb": job.get("fsize_mb", 16)}
    oom_before = _oom_kills()
    pid = runner._zygote_call({"op": "spawn", "job": spec}, [stdin_fd, out_w, err_w])["pid"]
    for fd in (stdin_fd, out_w, err_w):
        os.close(fd)
    try:
        status, detail, out, err = _collect(out_r, err_r, job["spec"]["time_limit_s"])
        if status == "pass" and _cpu_seconds(pid) > job["spec"]["time_limit_s"]:
            status, detail = "timeout", "exceeded the time limit (CPU)"
    finally:
        os.close(out_r)
        os.close(err_r)
        # the zygote kills the program's processes, then wipes and checks the sandbox
        finished = runner._zygote_call({"op": "finish", "pid": pid, "workdir": workdir})
        dirty = finished["dirty"]
    if status == "pass":
        status, detail = _exit_verdict(finished["status"], err, _oom_kills() > oom_before)
    return status, detail, out, err, dirty


def _collect(out_r: int, err_r: int, time_limit: float) -> tuple[str, str, bytes, bytes]:
    """Read stdout (capped) and stderr (its tail) until both close or the wall clock ends."""
    deadline = time.monotonic() + wall_limit(time_limit)
    out, err, open_fds = bytearray(), b"", {out_r, err_r}
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", f"exceeded the wall clock of {wall_limit(time_limit):.0f} s", \
                bytes(out), err
        ready = select.select(list(open_fds), [], [], left)[0]
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.discard(fd)
            elif fd == out_r:
                out += chunk
                if len(out) > OUTPUT_CAP:
                    return "error", f"output exceeds {OUTPUT_CAP >> 20} MiB", b"", err
            else:
                err = (err + chunk)[-TAIL:]
    return "pass", "", bytes(out), err


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of the program's process (a zombie keeps its counts), 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _exit_verdict(status: int, err: bytes, oom: bool) -> tuple[str, str]:
    """The verdict of a program that closed its output, from how its process ended."""
    if status == 0:
        return "pass", ""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "timeout", "exceeded the time limit (CPU)"
        if sig == signal.SIGKILL and oom:
            return "oom", "killed by the sandbox memory limit"
        if sig == signal.SIGKILL:
            return "pass", ""  # ended by us after it closed its output (a lingering child)
        return "error", f"killed by signal {sig}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    if b"MemoryError" in err:
        return "oom", "MemoryError"
    return "error", f"runtime error (exit status {code})"


def _oom_kills() -> int:
    """The sandbox cgroup's OOM-kill counter (cgroup v2 or v1), or 0 where unreadable."""
    for path, key in (("/sys/fs/cgroup/memory.events", "oom_kill"),
                      ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill")):
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except OSError:
            continue
    return 0
