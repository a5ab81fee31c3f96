"""Judging a unified diff against a repository (task kind ``repo``): the runner's side. Stdlib
only; deployed beside runner.py in the judge image.

SWE-bench's semantics, with the steps split between who may do what:

1. the runner (root inside the sandbox, holding the hidden tests) writes a fresh copy of the
   repository into a new work directory, applies the agent's diff, then the hidden test_patch,
   all root-owned and read-only to the job's uid. A diff that does not parse or apply, leaves
   the repository, or touches a test file, a file of the test_patch, or anything that changes
   how pytest or Python starts is ``invalid`` and nothing runs;
2. it adds a sentinel test of its own, one that always fails, under a random name beside the
   hidden tests and at a random place in the run order;
3. the zygote forks the test process: it becomes the job uid, takes the rlimits and execs
   ``python3 -I -B repo_plugin.py`` (pytest with the result plugin, from outside the
   repository) on the FAIL_TO_PASS and PASS_TO_PASS node ids and the sentinel, with a
   configuration file written outside the repository, plugin autoloading and the cache off;
4. the runner reads per-test outcomes from the plugin's pipe (never pytest's output or a junit
   file), and decides: every FAIL_TO_PASS and PASS_TO_PASS test passed (or xfailed), the
   sentinel failed, the closing record came and matches the exit status: ``pass``; a required
   test that did not pass: ``fail``; a channel that carries anything else, or a sentinel that
   passed (outcomes rewritten wholesale): ``error``;
5. every process of the uid is killed and every writable root wiped and checked (fresh.py).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
from typing import Any

if __package__:
    from .repo_diff import DiffError, apply, parse
else:  # deployed flat in the judge image
    from repo_diff import DiffError, apply, parse  # type: ignore[no-redef]

TAIL = 4096
CHANNEL_CAP = 1 << 20  # bytes of result records read; more is an error
LINE_CAP = 1 << 14
CPU_S, WALL_S = 30, 130.0  # defaults; the frame gives the task's (repo_frame.py)
PASSING = ("passed", "xfailed")
STARTUP_NAMES = frozenset({"conftest.py", "pytest.ini", "tox.ini", "setup.cfg",
                           "pyproject.toml", "sitecustomize.py", "usercustomize.py"})
PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repo_plugin.py")
SENTINEL = "def test_sentinel():\n    values = [3, 1, 2]\n    assert sorted(values) == values\n"


def refused(path: str, hidden: frozenset[str] = frozenset()) -> str:
    """Why the agent's diff may not touch ``path``, or '' when it may."""
    base = path.rsplit("/", 1)[-1]
    if base in STARTUP_NAMES or base.endswith(".pth"):
        return f"{path}: changes how pytest or Python starts"
    if path.split("/")[0] in ("tests", "test") or base.startswith("test_") \
            or base.endswith("_test.py") or path in hidden:
        return f"{path}: a test file"
    return ""


def patch_paths(diff: str) -> set[str]:
    return {str(name) for patch in parse(diff) for name in (patch.old, patch.new)
            if name is not None}


def write_files(root: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = os.path.join(root, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)


def prepare(root: str, spec: dict[str, Any], diff: str) -> None:
    """The repository under ``root`` with ``diff`` and then the test_patch applied; DiffError
    when the diff may not be applied."""
    hidden = frozenset(patch_paths(spec["test_patch"]))
    for name in patch_paths(diff):
        why = refused(name, hidden)
        if why:
            raise DiffError(f"refused path {why}")
    write_files(root, spec["files"])
    apply(root, diff)
    apply(root, spec["test_patch"])


def outcomes(records: list[dict], nodes: list[str]) -> dict[str, str]:
    """One outcome per node id from the plugin's records: a phase that failed makes the test
    failed, a test with no call phase reported is whatever its setup was, none is missing."""
    phases: dict[str, dict[str, str]] = {}
    for record in records:
        if "node" in record:
            phases.setdefault(record["node"], {})[record["when"]] = record["outcome"]
    found = {}
    for node in nodes:
        seen = phases.get(node)
        if not seen:
            found[node] = "missing"
        elif "failed" in seen.values():
            found[node] = "failed"
        else:
            found[node] = seen.get("call", seen.get("setup", "missing"))
    return found


class Garbage(ValueError):
    """The result channel carried something the plugin does not write."""


def parse_records(data: bytes, nodes: set[str], key: str) -> tuple[list[dict], int | None]:
    """(records, exit status of the closing record or None), checked line by line: each must
    carry the job's ``key``."""
    records, end = [], None
    seen: set[tuple[str, str]] = set()
    if data and not data.endswith(b"\n"):
        raise Garbage("a record cut short")
    for line in data.splitlines():
        if end is not None:
            raise Garbage("a record after the closing one")
        if len(line) > LINE_CAP:
            raise Garbage("a record too long")
        try:
            record = json.loads(line)
        except ValueError:
            raise Garbage("a line that is not JSON") from None
        if not isinstance(record, dict) or record.pop("key", None) != key:
            raise Garbage("a record that is not the plugin's")
        if set(record) == {"end"} and type(record["end"]) is int:
            end = record["end"]
        elif set(record) == {"collect", "outcome"} and record["outcome"] == "failed":
            pass
        elif set(record) == {"node", "when", "outcome"}:
            phase = (record["node"], record["when"])
            if record["node"] not in nodes or record["when"] not in ("setup", "call", "teardown") \
                    or record["outcome"] not in ("passed", "failed", "skipped", "xfailed",
                                                 "xpassed") or phase in seen:
                raise Garbage(f"an unexpected record for {str(record['node'])[:80]!r}")
            seen.add(phase)
        else:
            raise Garbage("a record of an unknown shape")
        records.append(record)
    return records, end


# ---------------------------------------------------------------- the test process


EXEC_FAILED = 70  # the test process's exit code when it could not start the interpreter


def child_main(job: dict, fds: list[int]) -> None:
    """Runs in the process the zygote forked: set up, then exec pytest. Never returns."""
    try:
        import fcntl

        # out of the way of 3 and 4 first: either may be where the other one arrived
        result_w, key_r = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # pytest's output quotes the hidden tests: no one reads it
            os.dup2(devnull, fd)
        os.dup2(result_w, 3)
        os.dup2(key_r, 4)
        os.closerange(5, 1 << 16)
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
        os.chdir(job["repo"])
        for which, value in (
            (resource.RLIMIT_AS, job["memory_mb"] << 20),
            (resource.RLIMIT_NPROC, job["nproc"]),
            (resource.RLIMIT_FSIZE, job["fsize_mb"] << 20),
            (resource.RLIMIT_NOFILE, 256),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))
        resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_s"], job["cpu_s"] + 1))
        env = {"HOME": job["home"], "TMPDIR": job["home"], "PATH": "/usr/bin:/bin",
               "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
               "OPENBLAS_NUM_THREADS": "1"}
        # argv[0] is the interpreter's own path: Python finds its prefix (and so pytest) from
        # argv[0], and a bare "python3" would be looked up on PATH, another interpreter
        os.execve(job["python"], [job["python"], "-I", "-B", *job["argv"]], env)
    finally:
        os._exit(EXEC_FAILED)


# ---------------------------------------------------------------- one job


def _mkdir(path: str, mode: int, owner: int | None = None) -> None:
    os.mkdir(path, mode)
    os.chmod(path, mode)  # whatever the umask
    if owner is not None and os.getuid() == 0:
        os.chown(path, owner, owner)


def _readable(root: str) -> None:
    """The repository as the job uid sees it: readable, never writable."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def run(runner: Any, job: dict) -> dict:
    """Judge one repo job on ``runner`` (runner.Runner); the result frame's fields."""
    start = time.monotonic()
    spec = job["spec"]
    nodes = list(dict.fromkeys(spec["FAIL_TO_PASS"] + spec["PASS_TO_PASS"]))
    workdir = os.path.join(runner.work_root, f"job-{os.urandom(8).hex()}")
    repo, home = os.path.join(workdir, "repo"), os.path.join(workdir, "home")
    _mkdir(workdir, 0o755)
    _mkdir(repo, 0o755)
    _mkdir(home, 0o700, runner.uid)

    def result(status: str, detail: str, tests: dict, dirty: str = "") -> dict:
        passed = sum(tests.get(n) in PASSING for n in nodes)
        return {"id": job["id"], "status": status, "detail": detail[:500], "tests": tests,
                "calls": passed, "duration_s": round(time.monotonic() - start, 6),
                "output_tail": "", "output_bytes": 0, "dirty": dirty}

    try:
        prepare(repo, spec, job["solution"])
    except (DiffError, UnicodeDecodeError) as exc:
        _discard(runner, workdir)
        return result("invalid", f"the diff does not apply: {exc}", {})
    # beside the hidden tests, under a name like theirs, at a random place in the run order
    folder = "tests/" if os.path.isdir(os.path.join(repo, "tests")) else ""
    sentinel = f"{folder}test_{os.urandom(6).hex()}.py"
    write_files(repo, {sentinel: SENTINEL})
    _readable(repo)
    ini = os.path.join(workdir, "pytest.ini")
    with open(ini, "w", encoding="utf-8") as f:
        f.write(f"[pytest]\naddopts =\npythonpath = {repo}\n")
    os.chmod(ini, 0o644)
    if runner.fresh is not None:
        runner.fresh.restore(runner.work_root)  # making the work dir moved its times
    guard = f"{sentinel}::test_sentinel"
    order = list(nodes)
    order.insert(int.from_bytes(os.urandom(2), "big") % (len(order) + 1), guard)
    argv = [PLUGIN, "-c", ini, "--rootdir", repo, "-q", "-p", "no:cacheprovider",
            "--continue-on-collection-errors", *order]
    res_r, res_w = os.pipe()
    key_r, key_w = os.pipe()
    key = os.urandom(16).hex()
    os.write(key_w, key.encode())
    os.close(key_w)
    cpu_s, wall_s = int(job.get("cpu_s", CPU_S)), float(job.get("wall_s", WALL_S))
    child = {"kind": "repo", "uid": runner.uid, "workdir": workdir, "repo": repo, "home": home,
             "python": sys.executable, "argv": argv, "cpu_s": cpu_s,
             "memory_mb": job["memory_mb"], "nproc": job.get("nproc", 32),
             "fsize_mb": job.get("fsize_mb", 16)}
    oom_before = _oom_kills()
    pid = runner._zygote_call({"op": "spawn", "job": child}, [res_w, key_r])["pid"]
    os.close(res_w)
    os.close(key_r)
    try:
        timed_out, data = _collect(res_r, pid, wall_s)
    finally:
        os.close(res_r)
        # the zygote kills the test process's uid, then wipes and checks the sandbox
        finished = runner._zygote_call({"op": "finish", "pid": pid, "workdir": workdir})
    status, detail, tests = _decide(data, key, spec, guard, finished["status"], timed_out,
                                    _oom_kills() > oom_before, wall_s)
    if finished["dirty"]:
        status, detail = "error", "left state behind that could not be wiped"
    return result(status, detail, tests, finished["dirty"])


def _decide(data: bytes | None, key: str, spec: dict, guard: str, exit_status: int,
            timed_out: bool, oom: bool, wall_s: float) -> tuple[str, str, dict]:
    """(status, detail, per-test outcomes) from what the channel carried and how pytest
    ended."""
    nodes = list(dict.fromkeys(spec["FAIL_TO_PASS"] + spec["PASS_TO_PASS"]))
    if data is None:
        return "error", f"the result channel carried over {CHANNEL_CAP >> 20} MiB", {}
    try:
        records, end = parse_records(data, {*nodes, guard}, key)
    except Garbage as exc:
        if timed_out:  # a record cut short by the kill
            return "timeout", f"pytest ran over the wall clock of {wall_s:.0f} s", {}
        return "error", f"the result channel carried {exc}", {}
    tests = outcomes(records, nodes)
    if timed_out:
        return "timeout", f"pytest ran over the wall clock of {wall_s:.0f} s", tests
    if os.WIFSIGNALED(exit_status) and os.WTERMSIG(exit_status) == signal.SIGXCPU:
        return "timeout", "pytest ran over its CPU time", tests
    if os.WIFSIGNALED(exit_status) and oom:
        return "oom", "killed by the sandbox memory limit", tests
    code = os.WEXITSTATUS(exit_status) if os.WIFEXITED(exit_status) else None
    if code == EXEC_FAILED and not records:
        return "error", (f"the test process could not start {sys.executable} as the job's "
                         "uid (on the local backend: an interpreter that user may not run)"), tests
    if end is None or code != end:
        return "error", "the test process ended without closing its report", tests
    failing = [n for n in nodes if tests[n] not in PASSING]
    if failing:  # counts only: the node ids name hidden tests (a collection error in a
        # module named by a node id stops pytest before any test runs, the sentinel included)

        def passed(field: str) -> str:
            return f"{sum(tests[n] in PASSING for n in spec[field])}/{len(spec[field])}"

        return "fail", (f"{len(failing)} of {len(nodes)} tests did not pass (FAIL_TO_PASS "
                        f"{passed('FAIL_TO_PASS')} passed, PASS_TO_PASS "
                        f"{passed('PASS_TO_PASS')})"), tests
    if outcomes(records, [guard])[guard] != "failed":
        return "error", "a test that always fails was reported as not failing: the outcomes " \
            "were rewritten", tests
    return "pass", f"{len(nodes)} tests", tests


def _collect(res_r: int, pid: int, wall_s: float) -> tuple[bool, bytes | None]:
    """Read the result channel (capped) until it closes, the test process has ended (a process
    it left behind may hold the pipe open) or the wall clock ends: (timed out, the records, or
    None when they ran over the cap)."""
    deadline = time.monotonic() + wall_s
    data: bytearray | None = bytearray()
    ended = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True, bytes(data) if data is not None else None
        if not select.select([res_r], [], [], 0 if ended else min(left, 0.2))[0]:
            if ended:  # drained what it wrote before it ended
                return False, bytes(data) if data is not None else None
            ended = _ended(pid)
            continue
        chunk = os.read(res_r, 1 << 16)
        if not chunk:
            return False, bytes(data) if data is not None else None
        if data is not None:
            data += chunk
            if len(data) > CHANNEL_CAP:
                data = None


def _ended(pid: int) -> bool:
    """Has the zygote's child ``pid`` exited (a zombie until the zygote reaps it)?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _discard(runner: Any, workdir: str) -> None:
    """Remove a work directory no process of the job ever saw."""
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    if runner.fresh is not None:
        runner.fresh.restore(runner.work_root)


def _oom_kills() -> int:
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
