"""Runs one agent call inside an agent container. Standard library only; never imports rsi_bench.

    python3 -I -S /opt/rsi-bench/agent_runner.py solve|improve|check   (as root; job JSON on stdin)

Why a parent and a child: the agent is hostile until proven otherwise, so it must not be able to
forge the result the host reads. This process (root) reads the job, then forks a child that
drops to the sandbox uid, points its stdout/stderr at a drained pipe, keeps only a private
result pipe, and only then imports the agent. The child cannot reach this process's stdout
(another uid's fds are out of reach), so whatever the agent prints is output, never the result.
This process waits under the job's wall clock, kills every process of the sandbox uid (daemons
included), and writes the one result line, prefixed with the host's nonce, to its own stdout.

A warm container runs many solves through ``agent_server.py``, which starts this runner once
per solve.

The child records suspicious operations (sockets, grader files, writes outside the workspace,
hunting for tests) with an audit hook. That is a heuristic: code in the same interpreter can
evade it. Containment never depends on it; it only makes attempts visible in the report. What
this process sees itself (``probe.py``: network counters, limits hit, signals) goes into the
reply as ``sandbox_events``, which the agent can neither forge nor suppress.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import resource
import select
import shutil
import signal
import sys
import threading
import time
import traceback

RESULT_TAG = "RSI-BENCH-RESULT"
CLIENT_DIR = "/opt/rsi-bench/agent_client"
GRADER_DIR = "/opt/rsi-bench"
BROKER_SOCKET = "/run/rsi-bench/broker.sock"
MAX_RESULT = 4 << 20
TAIL = 4096
CPU_GRACE_S = 5  # CPU seconds an agent process may use beyond its own timeout
MAX_EVENTS = 50
OUTPUT_CAP = 1 << 20  # the agent's prints beyond this are an ``output`` event (the tail is kept)


class Example:
    __slots__ = ("call", "result")

    def __init__(self, call: str, result: str) -> None:
        self.call, self.result = call, result

    @property
    def input(self) -> str:  # an io task's example: standard input ...
        return self.call

    @property
    def output(self) -> str:  # ... and the expected standard output
        return self.result

    def __repr__(self) -> str:
        return f"Example(call={self.call!r}, result={self.result!r})"


class TaskView:
    """What the agent may see of a task (the host's TaskView, rebuilt without rsi_bench)."""

    __slots__ = ("id", "prompt", "entry_point", "examples", "kind", "repo_path")

    def __init__(self, id: str, prompt: str, entry_point: str,  # noqa: A002
                 examples: tuple[Example, ...], kind: str = "function",
                 repo_path: str = "") -> None:
        self.id, self.prompt, self.entry_point, self.examples = id, prompt, entry_point, examples
        # "function": return its source; "io": a whole stdin/stdout program; "repo": a diff
        self.kind = kind
        self.repo_path = repo_path  # repo: the agent's own writable copy of the repository

    def __repr__(self) -> str:
        return f"TaskView(id={self.id!r}, kind={self.kind!r}, entry_point={self.entry_point!r})"


WORKSPACE_SRC = "/workspace-src"
REPO_COPY = "/scratch/repo"  # a repo task's repository, written fresh for each solve


def _write_repo(files: dict, root: str) -> None:  # type: ignore[type-arg]
    """The repository's visible files, owned by the agent, under ``root`` (emptied first)."""
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root, mode=0o755)
    for path, text in files.items():
        parts = str(path).split("/")
        if str(path).startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"repository path {path!r} leaves the repository")
        target = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            out.write(str(text))


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _install_watch(writable: tuple[str, ...], readable: tuple[str, ...],
                   events: list[dict[str, str]]) -> None:
    """Record (never block) operations an honest agent has no reason to make."""
    seen: set[tuple[str, str]] = set()
    python_dirs = tuple({sys.prefix, sys.base_prefix, "/usr/lib", "/usr/local/lib"})

    def note(kind: str, path: str, detail: str) -> None:
        if (kind, path) not in seen and len(events) < MAX_EVENTS:
            seen.add((kind, path))
            events.append({"kind": kind, "path": path, "detail": f"{detail} (seen by the "
                           "runner's audit hook; heuristic)"})

    def classify_path(path: str, write: bool, what: str) -> None:
        path = os.path.abspath(path)
        if _under(path, (GRADER_DIR,)) and not (not write and _under(path, (CLIENT_DIR,))):
            note("grader_file", path, f"{what} a grader file")
        elif write and not _under(path, writable):
            note("write_outside", path, f"{what} outside the workspace")
        elif not write and _under(path, ("/proc", "/sys", "/run", "/root", "/home", "/var")) \
                and not _under(path, ("/proc/self",)):
            note("read_outside", path, f"{what} a system path")
        elif not write and "test" in os.path.basename(path).lower() \
                and not _under(path, readable + python_dirs):
            note("hunt", path, f"{what} a file that looks like tests")

    def hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
        try:
            if event == "open" and isinstance(args[0], str):
                mode, flags = args[1] or "", args[2] or 0
                write = any(c in str(mode) for c in "wax+") or bool(
                    flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
                classify_path(args[0], write, "opened" + (" for writing" if write else ""))
            elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "shutil.rmtree",
                           "os.rename", "os.symlink", "os.link", "os.truncate"):
                if isinstance(args[0], str):
                    classify_path(args[0], True, event)
            elif event in ("os.listdir", "os.scandir") and isinstance(args[0], str):
                path = os.path.abspath(args[0])
                if not _under(path, readable + writable + python_dirs):
                    note("hunt", path, f"{event} outside the agent's own places")
            elif event == "glob.glob" and "test" in str(args[0]).lower() \
                    and not _under(os.path.abspath(str(args[0])), readable):
                note("hunt", str(args[0]), "globbed for test-like files")
            elif event == "socket.__new__" and args[1] != 1:  # 1 is AF_UNIX
                note("network", "", f"created a socket of family {args[1]}")
            elif event in ("socket.connect", "socket.bind", "socket.sendto") \
                    and args[1] != BROKER_SOCKET:
                note("network", "", f"{event} {args[1]!r}"[:200])
            elif event in ("socket.getaddrinfo", "socket.gethostbyname"):
                note("network", "", f"{event} {args[0]!r}"[:200])
            elif event in ("os.fork", "subprocess.Popen", "os.system", "os.posix_spawn"):
                note("process", "", f"{event} (informational)")
        except Exception:  # noqa: BLE001 - the watch must never break the agent
            pass

    sys.addaudithook(hook)


def _child(mode: str, job: dict, result_fd: int, log_fd: int) -> None:  # type: ignore[type-arg]
    """The agent's process: drop privileges, isolate fds, import the agent, call it."""
    uid = int(job["uid"])
    os.setsid()
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Bound the agent's processes well below the container's pids limit, so a fork bomb can
    # neither starve the runner of pids nor bury it under runnable processes.
    nproc = int(job.get("nproc", 64))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if job.get("memory_mb"):
        size = int(job["memory_mb"]) << 20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if job.get("cpu_s"):
        # The host excludes model waits from the wall clock; CPU spent meanwhile is bounded
        # here, per process: SIGXCPU at the agent's own timeout plus CPU_GRACE_S, SIGKILL a
        # second later. The container's CPU quota (one core) keeps a process's CPU time under
        # its wall time, so an agent that merely runs out of time is a timeout, never this.
        cpu = max(1, int(float(job["cpu_s"]) + CPU_GRACE_S + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    null = os.open(os.devnull, os.O_RDWR)
    private = os.dup(result_fd)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.dup2(private, 3, inheritable=False)
    os.closerange(4, 1 << 16)
    agent_dir, workspace = job["agent_dir"], job.get("workspace", "")
    os.environ.clear()
    os.environ.update({"HOME": "/scratch", "PATH": "/usr/local/bin:/usr/bin:/bin",
                       "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"})
    sys.dont_write_bytecode = True
    events: list[dict[str, str]] = []
    reply: dict = {"status": "error", "detail": ""}  # type: ignore[type-arg]
    try:
        if mode == "improve":
            # the workspace starts as a copy of the agent being improved; that is the improver
            # itself, except for the fixed (non-recursive) improver, which edits another agent
            shutil.copytree(job.get("workspace_src") or agent_dir, workspace)
            os.chdir(workspace)
            writable = (workspace, "/tmp", "/dev/shm")
        else:
            os.chdir("/scratch")
            writable = ("/scratch", "/tmp", "/dev/shm")
            if mode == "solve" and job["task"].get("files"):
                _write_repo(job["task"]["files"], REPO_COPY)
        # a repo task's own tests (its visible ones) are the agent's to read and run
        _install_watch(writable, (agent_dir, CLIENT_DIR, WORKSPACE_SRC, REPO_COPY), events)
        sys.path[:0] = [agent_dir, CLIENT_DIR]
        module = importlib.import_module(job["entry"])
        reply = _call(mode, module, job, workspace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and friends are agent errors too
        reply = {"status": "invalid" if mode == "check" else "error", "detail": _describe(exc)}
    reply["events"] = events
    for stream in (sys.stdout, sys.stderr):  # os._exit below would drop buffered prints
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - the agent may have replaced or closed them
            pass
    data = json.dumps(reply, default=repr).encode() + b"\n"
    view = memoryview(data)
    while view:
        view = view[os.write(3, view):]
    os._exit(0)


def _call(mode: str, module: object, job: dict, workspace: str) -> dict:  # type: ignore[type-arg]
    missing = [n for n in ("solve", "improve") if not callable(getattr(module, n, None))]
    if missing:
        return {"status": "invalid",
                "detail": f"entry module {job['entry']!r} has no callable {', '.join(missing)}"}
    if mode == "check":
        return {"status": "ok", "detail": ""}
    from model_client import ModelClient

    model = ModelClient()
    if mode == "solve":
        task = job["task"]
        view = TaskView(task["id"], task["prompt"], task["entry_point"],
                        tuple(Example(e["call"], e["result"]) for e in task["examples"]),
                        str(task.get("kind", "function")),
                        REPO_COPY if task.get("files") else "")
        value = module.solve(view, model)  # type: ignore[attr-defined]
        if not isinstance(value, str):
            return {"status": "invalid", "detail": f"solve returned {type(value).__name__}, "
                    "not str"}
        if len(value.encode("utf-8", "replace")) > MAX_RESULT:
            return {"status": "invalid", "detail": f"solution longer than {MAX_RESULT} bytes"}
        return {"status": "ok", "solution": value, "detail": ""}
    module.improve(pathlib.Path(workspace), list(job["feedback"]), model)  # type: ignore[attr-defined]
    return {"status": "ok", "detail": ""}


def _describe(exc: BaseException) -> str:
    """The exception and the innermost frames: enough to debug, short enough to store."""
    lines = traceback.format_exception(exc)
    return ("".join(lines[-4:]) if len(lines) > 4 else "".join(lines)).strip()[-1500:]


def _kill_uid(uid: int) -> int:
    """SIGKILL every process of ``uid`` until none is left; no fork needed (a fork bomb may
    have used every pid). Returns how many kills were sent."""
    sent = 0
    for _ in range(200):
        found = 0
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.stat(f"/proc/{name}").st_uid != uid or _zombie(name):
                        continue
                    os.kill(int(name), signal.SIGKILL)
                    found += 1
                except OSError:
                    pass
        sent += found
        if not found:
            return sent
        time.sleep(0.01)
    return sent


def _zombie(pid: str) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"


def _outside_files(workspace: str) -> list[dict[str, str]]:
    """Files the improve left in the scratch areas outside its workspace (read as root, after
    every agent process is dead, so nothing can hide them)."""
    found: list[dict[str, str]] = []
    for top in ("/scratch", "/tmp", "/dev/shm"):
        for dirpath, dirs, files in os.walk(top):
            if workspace and _under(dirpath, (workspace,)):
                dirs[:] = []
                continue
            dirs[:] = [d for d in dirs if not _under(os.path.join(dirpath, d), (workspace,))]
            for name in files:
                if len(found) < 20:
                    found.append({"kind": "write_outside", "path": os.path.join(dirpath, name),
                                  "detail": "file left outside the workspace"})
    return found


def _drain(fd: int, tail: bytearray, total: list[int]) -> None:
    while chunk := os.read(fd, 1 << 16):
        total[0] += len(chunk)
        tail.extend(chunk)
        del tail[:-TAIL]
    os.close(fd)


def _load_probe() -> object:
    """``probe.py`` beside this file (the container's root watches the job with it), by path:
    isolated mode puts no directory on sys.path."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.py")
    spec = importlib.util.spec_from_file_location("rsi_bench_probe", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) == 2 else ""
    if mode not in ("solve", "improve", "check"):
        sys.stderr.write("usage: agent_runner.py solve|improve|check < job.json\n")
        return 2
    job_r, job_w = os.pipe()
    result_r, result_w = os.pipe()
    log_r, log_w = os.pipe()
    tail, printed = bytearray(), [0]
    drain = threading.Thread(target=_drain, args=(log_r, tail, printed), daemon=True)
    drain.start()  # before the fork: a fork bomb may leave no pid for a thread later
    sys.stdout.flush()
    pid = os.fork()  # before the job is read, so the child's memory never holds the nonce
    if pid == 0:
        try:
            os.close(job_w)
            with os.fdopen(job_r, "rb") as source:
                child_job = json.loads(source.read())
            _child(mode, child_job, result_w, log_w)
        finally:
            os._exit(70)
    for fd in (job_r, result_w, log_w):
        os.close(fd)
    job = json.loads(sys.stdin.buffer.read())
    nonce = str(job.pop("nonce"))
    # before the child has the job (it waits for it): the counters' state without the agent
    probe = _load_probe().Probe(int(job["uid"]),  # type: ignore[attr-defined]
                                int(job.get("nproc", 64)), bool(job.get("probe", True)))
    with os.fdopen(job_w, "wb") as sink:
        sink.write(json.dumps(job).encode())
    clock = _AgentClock(float(job["timeout"]), float(job.get("wall") or job["timeout"]),
                        str(job.get("excluded_file") or ""))
    data, exit_status, timed_out = bytearray(), None, False
    while exit_status is None:
        ready, _, _ = select.select([result_r], [], [], 0.05)
        if ready and len(data) <= 8 * MAX_RESULT:
            data.extend(os.read(result_r, 1 << 16))
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            exit_status = status
            probe.sample(force=True, reaped=1)  # what it left running, and its own slot
        elif clock.over():
            timed_out = True
            break
        probe.sample()
    probe.sample(force=True)  # a fork bomb's processes are all there until they are killed
    killed = _kill_uid(int(job["uid"]))
    if exit_status is None:
        os.waitpid(pid, 0)
    if not timed_out:
        os.set_blocking(result_r, False)
        try:
            while len(data) <= 8 * MAX_RESULT and (chunk := os.read(result_r, 1 << 16)):
                data.extend(chunk)
        except BlockingIOError:
            pass
    drain.join(timeout=2)
    reply = _reply(bytes(data), exit_status, timed_out, float(job["timeout"]))
    reply["output_tail"] = bytes(tail[-TAIL:]).decode("utf-8", "replace")
    reply["sandbox_events"] = probe.events(
        timed_out=timed_out, exit_status=exit_status, result_bytes=len(data),
        result_cap=MAX_RESULT + 4096, output_bytes=printed[0], output_cap=OUTPUT_CAP,
        outlived=killed if exit_status is not None else 0)
    if mode == "improve":
        reply["events"] = list(reply.get("events") or []) + _outside_files(job["workspace"])
    out = os.fdopen(os.dup(1), "w")
    out.write(f"{RESULT_TAG} {nonce} {json.dumps(reply)}\n")
    out.flush()
    return 0


class _AgentClock:
    """The agent's own time: the wall clock since the job began, less the model time the host
    excluded (``excluded_file``: written only by the host, in a directory no sandbox uid can
    write; seconds, already capped), and never past the hard wall ``wall``."""

    def __init__(self, timeout: float, wall: float, excluded_file: str) -> None:
        self.start = time.monotonic()
        self.timeout, self.wall, self.path = timeout, max(wall, timeout), excluded_file
        self.excluded, self._read_at = 0.0, 0.0

    def over(self) -> bool:
        now = time.monotonic()
        if self.path and now - self._read_at >= 0.25:
            self._read_at = now
            try:
                with open(self.path) as source:
                    self.excluded = max(self.excluded, float(source.read() or 0.0))
            except (OSError, ValueError):
                pass  # no call yet, or a write in flight: keep the last value
        elapsed = now - self.start
        return elapsed > self.wall or elapsed - min(self.excluded, self.wall) > self.timeout


def _reply(data: bytes, exit_status: int | None, timed_out: bool,
           timeout: float) -> dict:  # type: ignore[type-arg]
    if timed_out:
        return {"status": "timeout", "detail": f"no result within {timeout:g} s of the agent's "
                "own time; every process of the agent was killed"}
    line = data.split(b"\n", 1)[0]
    try:
        reply = json.loads(line)
        if not isinstance(reply, dict) or reply.get("status") not in ("ok", "error", "invalid"):
            raise ValueError("not a reply")
    except ValueError:
        code = os.waitstatus_to_exitcode(exit_status) if exit_status is not None else None
        if code == -signal.SIGXCPU:
            return {"status": "error", "detail": "the agent process used up its CPU time "
                    "limit and was killed"}
        return {"status": "error", "detail": f"the agent process ended (exit code {code}) "
                "without returning"}
    return reply


if __name__ == "__main__":
    sys.exit(main(sys.argv))
