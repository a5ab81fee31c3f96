"""The judge runner: the process that grades solutions inside a sandbox.

Stdlib only: this file is copied into the judge image and runs there as
``python3 runner.py --uid N``. It is the grader's side of the sandbox; the solution never shares
an interpreter with it.

Process layout, one runner per sandbox, one job at a time:

* **runner** (privileged inside the sandbox) reads jobs from stdin and writes results to stdout as
  length-prefixed JSON frames. It holds the hidden tests and runs them: ``check(candidate)``
  executes here, and ``candidate`` is a proxy that forwards each call to the solution process.
  Its own uid never changes.
* **zygote** (zygote.py) is started at start-up, before any job is read, as an interpreter of its
  own, so its memory never holds a test. It forks one **solution process** per job, which drops to
  the unprivileged uid, applies rlimits, loads the solution and serves calls. Arguments and results
  cross the process boundary as data (codec.py: exact builtin and allow-listed stdlib types;
  callables and iterators as handles, bridge.py), so objects whose ``==`` lies, trace hooks, frame
  or gc walks cannot reach the code that compares results.
* After each job the zygote kills every process owned by the job's uid, empties every writable
  root and puts back its owner, mode, times and extended attributes, and reports whatever cannot
  be wiped (System V IPC, abstract sockets, a survivor) as ``dirty``: the host then replaces the
  sandbox (``fresh.py``, given with ``--fresh``, does the wiping and the checking). The runner
  answers the host only once that is done, so no job starts before the last one's check passed.

A job passes only if ``check`` returned normally. Early exits, forged output and killed processes
all look like a solution process that stopped answering, which is never a pass.
"""

from __future__ import annotations

import argparse
import codecs
import io
import json
import os
import queue
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

if __package__:
    from . import bridge, codec, io_job, rebuild, repo_job, zygote
else:  # deployed flat in the judge image: python3 -I does not put this directory on sys.path
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # after the stdlib
    import bridge  # type: ignore[no-redef]
    import codec  # type: ignore[no-redef]
    import io_job  # type: ignore[no-redef]
    import rebuild  # type: ignore[no-redef]
    import repo_job  # type: ignore[no-redef]
    import zygote  # type: ignore[no-redef]

PROTOCOL = 2
OUTPUT_TAIL = 4096
MAX_FRAME = 64 << 20  # the host channel (jobs and results); solution values: codec.MAX_FRAME
NotPlainData, encode, decode = codec.NotPlainData, codec.encode, codec.decode
SolutionGone, JobTimeout, SolutionOOM = bridge.SolutionGone, bridge.JobTimeout, bridge.SolutionOOM


# ---------------------------------------------------------------- framing


def send_frame(fd: int, obj: object) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    payload = struct.pack(">I", len(data)) + data
    view = memoryview(payload)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(fd: int, deadline: float | None = None) -> Any:
    (size,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
    return json.loads(_read_exact(fd, size, deadline))


# ---------------------------------------------------------------- runner


class JobOutput(io.TextIOBase):
    """The runner's ``sys.stdout`` during a job. The solution's output that no test redirected
    lands here and joins the job's capped output tail; the tests' own prints go where they went
    before (never into the tail, which the agent may see)."""

    def __init__(self, tests_out: Any) -> None:
        super().__init__()
        self.tests_out, self.last, self.total = tests_out, b"", 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self.tests_out.write(text)

    def flush(self) -> None:
        self.tests_out.flush()

    def solution(self, data: bytes) -> None:
        if sys.stdout is not self:  # redirected by the test, as in one interpreter
            sys.stdout.write(self.decoder.decode(data))
            return
        self.total += len(data)
        self.last = (self.last + data[-4 * OUTPUT_TAIL:])[-4 * OUTPUT_TAIL:]

    @property
    def tail(self) -> str:
        return self.last.decode("utf-8", "replace")[-OUTPUT_TAIL:]


class OutputDrain(threading.Thread):
    """One long-lived thread that reads each job's stdout/stderr pipe to EOF.

    Only the last OUTPUT_TAIL bytes and a byte count are kept. A pipe reaches EOF once every
    process of the job is dead, which ``run_job`` guarantees before asking for the result.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._fds: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[bytes, int]] = queue.SimpleQueue()

    def follow(self, fd: int) -> None:
        self._fds.put(fd)

    def result(self) -> tuple[bytes, int]:
        return self._done.get()

    def run(self) -> None:
        while True:
            fd = self._fds.get()
            tail, total = b"", 0
            while True:
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError:
                    break
                if not chunk:
                    break
                total += len(chunk)
                tail = (tail + chunk)[-OUTPUT_TAIL:]
            os.close(fd)
            self._done.put((tail, total))


def _candidate(peer: bridge.Peer, name: str, looks: Any) -> bridge.RemoteFunction:
    """The ``candidate`` the tests call: the solution's entry point, looking like it."""
    proxy = bridge.RemoteFunction(peer, 0, name)
    if type(looks) is list and len(looks) == 4:
        for attr, value in zip(("__name__", "__qualname__", "__doc__"), looks, strict=False):
            if type(value) is str or (attr == "__doc__" and value is None):
                setattr(proxy, attr, value)
        sig = bridge.signature_from(looks[3])
        if sig is not None:
            proxy.__signature__ = sig  # type: ignore[attr-defined]
    return proxy


class Runner:
    def __init__(self, uid: int, reap_by_uid: bool, work_root: str, clean: list[str],
                 fresh: Any = None) -> None:
        self.uid, self.reap_by_uid = uid, reap_by_uid
        self.work_root, self.clean = work_root, clean
        # with a pid namespace, every writable root is wiped and checked after each job
        self.fresh = fresh([work_root, *clean]) if fresh is not None and reap_by_uid else None
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # the zygote loads the same fresh.py: the file this class was compiled from
        fresh_path = (fresh.__init__.__code__.co_filename
                      if fresh is not None and reap_by_uid else None)
        argv = zygote.command(child.fileno(), uid, reap_by_uid, work_root, clean, fresh_path)
        os.set_inheritable(child.fileno(), True)
        pid = os.fork()
        if pid == 0:  # before any job is read: nothing of a test is in this process yet
            try:
                devnull = os.open(os.devnull, os.O_RDWR)
                os.dup2(devnull, 0)  # the host's channel: never the zygote's
                os.dup2(devnull, 1)
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        child.close()
        self.zygote, self.zygote_pid = parent, pid
        if self.zygote.recv(1 << 10) != b'{"op": "ready"}':
            raise RuntimeError("the zygote did not start (its error is on the runner's stderr)")
        rebuild.exceptions()  # made here, not in the first job's time
        self.drain = OutputDrain()
        self.drain.start()
        self.output = JobOutput(sys.stdout)

    def _zygote_call(self, request: dict, fds: list[int] | None = None) -> dict:
        socket.send_fds(self.zygote, [json.dumps(request).encode()], fds or [])
        return json.loads(self.zygote.recv(1 << 16))

    def run_job(self, job: dict) -> dict:
        if job.get("kind") == "io":  # a stdin/stdout program: io_job.py
            return io_job.run(self, job)
        if job.get("kind") == "repo":  # a diff against a repository, judged by pytest
            return repo_job.run(self, job)
        workdir = os.path.join(self.work_root, f"job-{os.urandom(8).hex()}")
        os.makedirs(workdir, mode=0o700)
        if os.getuid() == 0:
            os.chown(workdir, self.uid, self.uid)
        if self.fresh is not None:
            self.fresh.restore(self.work_root)  # making the work dir moved its times
        call_r, call_w = os.pipe()
        reply_r, reply_w = os.pipe()
        out_r, out_w = os.pipe()
        spec = {k: job[k] for k in ("solution", "entry_point", "memory_mb", "timeout")}
        spec.update(uid=self.uid, workdir=workdir, nproc=job.get("nproc", 32),
                    fsize_mb=job.get("fsize_mb", 16))
        start = time.monotonic()
        deadline = start + job["timeout"]
        oom_before = _oom_kills()
        pid = self._zygote_call({"op": "spawn", "job": spec}, [call_r, reply_w, out_w])["pid"]
        for fd in (call_r, reply_w, out_w):
            os.close(fd)
        self.drain.follow(out_r)
        try:
            status, detail, calls = self._grade(job, call_w, reply_r, deadline)
        finally:
            os.close(call_w)
            os.close(reply_r)
            # the zygote kills the job's processes, then wipes and checks the sandbox
            finished = self._zygote_call({"op": "finish", "pid": pid, "workdir": workdir})
            exit_status, dirty = finished["status"], finished["dirty"]
            tail, total = self.drain.result()
            tail = (tail.decode("utf-8", "replace") + self.output.tail)[-OUTPUT_TAIL:]
            total += self.output.total
        if status == "error" and _killed(exit_status) and _oom_kills() > oom_before:
            status, detail = "oom", "killed by the sandbox memory limit"
        return {
            "id": job["id"], "status": status, "detail": detail, "calls": calls,
            "duration_s": round(time.monotonic() - start, 6),
            "output_tail": tail, "output_bytes": total,
            "dirty": dirty,
        }

    def _grade(self, job: dict, call_w: int, reply_r: int, deadline: float):
        peer = bridge.Peer(reply_r, call_w, runner=True, deadline=deadline)
        proxy = None
        saved, self.output = sys.stdout, JobOutput(sys.stdout)
        peer.write_out = self.output.solution
        sys.stdout = self.output
        try:
            hello, looks = peer.recv()
            while hello.get("op") == "out":  # printed while loading, flushed
                hello, looks = peer.recv()
            status = hello.get("status")
            if hello.get("op") != "hello" or status != "ready":
                if status not in ("invalid", "error", "oom"):
                    return "error", "the solution process sent a malformed greeting", 0
                detail = str(hello.get("detail", ""))
                raised = hello.get("raised")
                if isinstance(raised, dict):
                    detail = f"{detail}: {raised.get('type')}: {raised.get('message')}"
                return status, detail[:500], 0
            proxy = _candidate(peer, job["entry_point"], looks)
            namespace: dict = {"__name__": "__tests__"}
            exec(compile(job.get("prelude", ""), "prompt.py", "exec"), namespace)
            namespace[job["entry_point"]] = proxy  # tests may call the entry point by name
            exec(compile(job["tests"], "tests.py", "exec"), namespace)
            random.seed(job.get("seed", 0))
            namespace["check"](proxy)
            if peer.broken is not None:
                raise peer.broken
        except BaseException as exc:  # noqa: BLE001 - classified, then reported
            return (*_classify(exc, job), proxy.calls if proxy else 0)
        finally:
            sys.stdout = saved
        return "pass", f"{proxy.calls} calls", proxy.calls

def _classify(exc: BaseException, job: dict) -> tuple[str, str]:
    """(status, detail) of a job that did not pass. A detail never carries the hidden tests'
    text: for the tests' own failures only the exception's class and the line number."""
    if isinstance(exc, bridge.JobTimeout):
        return "timeout", f"exceeded {job['timeout']} s"
    if isinstance(exc, (bridge.SolutionGone, bridge.Refused)):
        return "error", str(exc)[:500]
    if isinstance(exc, bridge.CandidateExit):
        return "error", f"the solution raised {exc}"[:500]
    if isinstance(exc, bridge.SolutionOOM):
        return "oom", str(exc)
    if not isinstance(exc, Exception):
        raise exc
    if getattr(exc, "__rsi_from_candidate__", False):
        return "error", f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, AssertionError):
        return "fail", _where(exc, "assertion failed")
    return "fail", _where(exc, type(exc).__name__)


def _where(exc: BaseException, what: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "tests.py"]
    return f"{what} (tests.py line {frames[-1].lineno})" if frames else what


def _killed(status: int) -> bool:
    return status > 0 and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _load_fresh(path: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rsi_bench_fresh", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Fresh


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uid", type=int, default=os.getuid())
    parser.add_argument("--reap", choices=["uid", "group"], default="uid",
                        help="kill every process of --uid after a job (needs a pid namespace), "
                        "or only the solution's process group")
    parser.add_argument("--work-root", default="/scratch")
    parser.add_argument("--clean", action="append", default=[],
                        help="a writable directory to purge of the job uid's files after a job")
    parser.add_argument("--fresh", metavar="PATH",
                        help="fresh.py: wipe and check every writable root after each job")
    parser.add_argument("--connect", metavar="SOCKET",
                        help="talk to the host over this unix socket instead of stdin/stdout")
    args = parser.parse_args(argv)
    fresh = _load_fresh(args.fresh) if args.fresh else None
    runner = Runner(args.uid, args.reap == "uid", args.work_root, args.clean, fresh)
    if args.connect:  # after the zygote fork: no solution process can inherit the channel
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        channel.connect(args.connect)
        stdin = stdout = channel.fileno()
    else:
        stdin, stdout = sys.stdin.fileno(), os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt it
    send_frame(stdout, {"op": "hello", "protocol": PROTOCOL, "python": sys.version.split()[0]})
    while True:
        try:
            job = recv_frame(stdin)
        except EOFError:
            return 0
        if not isinstance(job, dict) or job.get("op") != "job":
            send_frame(stdout, {"op": "error", "detail": "expected a job frame"})
            continue
        try:
            result = runner.run_job(job)
        except Exception as exc:  # noqa: BLE001 - a runner fault is reported, never a verdict
            result = {"id": job.get("id"), "status": "internal", "detail": repr(exc)[:500]}
        send_frame(stdout, {"op": "result", **result})


if __name__ == "__main__":
    sys.exit(main())
