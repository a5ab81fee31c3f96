"""The judge runner's zygote and the solution processes it forks (stdlib only; deployed beside
runner.py).

The zygote is started by the runner at start-up, before any job is read, as an interpreter of
its own (``python3 -I zygote.py --socket-fd N ...``): its memory never holds a test, and it
imports only what a solution process needs, never ``threading`` or ``random``, whose at-fork
handlers would run in every process it forks (a fork from the runner's interpreter cost about
twice as much). For each job it forks one **solution process**, which drops to the job's uid,
applies rlimits, loads the solution and serves calls (bridge.py). When the job ends it kills
every process of that uid, then wipes and checks the sandbox (``Cleanup``): the runner's own
process, which holds the tests, never changes its uid, and nothing that runs as the job's uid
is ever forked from it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any

if __package__:
    from . import bridge, io_job, repo_job
else:  # deployed flat in the judge image, beside runner.py: python3 -I does not put this
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # directory on sys.path
    import bridge  # type: ignore[no-redef]
    import io_job  # type: ignore[no-redef]
    import repo_job  # type: ignore[no-redef]


# ---------------------------------------------------------------- solution process


def _apply_limits(job: dict) -> None:
    mem = job["memory_mb"] << 20
    limits = [
        (resource.RLIMIT_AS, mem),
        (resource.RLIMIT_NPROC, job["nproc"]),
        (resource.RLIMIT_FSIZE, job["fsize_mb"] << 20),
        (resource.RLIMIT_NOFILE, 256),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_CPU, int(job["timeout"]) + 2),
    ]
    for which, value in limits:
        resource.setrlimit(which, (value, value))


def _drop_privileges(uid: int, workdir: str) -> None:
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(
        {"HOME": workdir, "TMPDIR": workdir, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    )


def solution_main(job: dict, call_r: int, reply_w: int) -> None:
    """Runs in the forked solution process; never returns."""
    code = 0
    try:
        os.setsid()
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        _drop_privileges(job["uid"], job["workdir"])
        _apply_limits(job)
        sys.argv = ["solution.py"]
        sys.stdin = open(os.devnull)  # noqa: SIM115
        _serve(job, call_r, reply_w)
    except BaseException:  # noqa: BLE001 - the process must end here, whatever happened
        code = 70
    os._exit(code)


def _describe(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "message": str(exc)[:500]}


def _serve(job: dict, call_r: int, reply_w: int) -> None:
    peer = bridge.Peer(call_r, reply_w, runner=False)
    sys.stdout = bridge.solution_stdout(peer)  # print() reaches the test's sys.stdout
    try:
        code = compile(job["solution"], "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:
        peer.send({"op": "hello", "status": "invalid", "detail": f"does not compile: {exc}"})
        return
    namespace: dict = {"__name__": "__solution__", "__builtins__": __builtins__}
    try:
        exec(code, namespace)
    except MemoryError:
        peer.send({"op": "hello", "status": "oom", "detail": "MemoryError while loading"})
        return
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: it is an error here
        peer.send({"op": "hello", "status": "error", "detail": "load", "raised": _describe(exc)})
        return
    fn = namespace.get(job["entry_point"])
    if not callable(fn):
        detail = f"entry point {job['entry_point']!r} is not defined or not callable"
        peer.send({"op": "hello", "status": "invalid", "detail": detail})
        return
    peer.exports[0] = fn
    peer.send({"op": "hello", "status": "ready"}, _looks(fn))
    peer.serve_forever()


def _looks(fn: Any) -> list:
    """What the test may read off the candidate: name, qualname, doc, signature (as data)."""
    looks = []
    for attr in ("__name__", "__qualname__", "__doc__"):
        value = getattr(fn, attr, None)
        looks.append(value if type(value) is str else None)
    return [*looks, bridge.signature_data(fn)]


# ---------------------------------------------------------------- zygote


@dataclass
class Cleanup:
    """What the zygote does after a job's processes are dead. With a pid namespace (``reap``)
    every process of ``uid`` is killed and, given ``fresh`` (fresh.py), every writable root is
    wiped and checked; without one only the job's own files are removed."""

    uid: int
    reap: bool
    roots: list[str]
    fresh: Any = None

    def after(self, workdir: str, survivors: int | None = None) -> str:
        """Wipe what the job could have left; return what could not be wiped, empty when the
        sandbox is as fresh as before the job (``survivors``: the uid's processes still alive,
        counted once they were all killed)."""
        if self.fresh is not None:
            self.fresh.wipe()
            return "; ".join(self.fresh.leftovers(self.uid, survivors))
        if self.reap:
            for root in self.roots:
                _remove_owned(root, self.uid)
        shutil.rmtree(workdir, ignore_errors=True)
        return ""


def command(socket_fd: int, uid: int, reap: bool, work_root: str, clean: list[str],
            fresh_path: str | None) -> list[str]:
    """The command line that starts the zygote (``main``) with the runner's interpreter."""
    flags = ["-I"] + (["-S"] if sys.flags.no_site else [])
    cmd = [sys.executable, *flags, os.path.abspath(__file__), "--socket-fd", str(socket_fd),
           "--uid", str(uid), "--reap", "uid" if reap else "group", "--work-root", work_root]
    for path in clean:
        cmd += ["--clean", path]
    return cmd + (["--fresh", fresh_path] if fresh_path else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the judge runner's zygote (runner.py starts it)")
    parser.add_argument("--socket-fd", type=int, required=True)
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--reap", choices=["uid", "group"], required=True)
    parser.add_argument("--work-root", required=True)
    parser.add_argument("--clean", action="append", default=[])
    parser.add_argument("--fresh", metavar="PATH")
    args = parser.parse_args(argv)
    reap = args.reap == "uid"
    fresh = None
    if args.fresh and reap:
        import importlib.util

        spec = importlib.util.spec_from_file_location("rsi_bench_fresh", args.fresh)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fresh = module.Fresh([args.work_root, *args.clean])
    sock = socket.socket(fileno=args.socket_fd)
    zygote_main(sock, Cleanup(args.uid, reap, args.clean, fresh))
    return 0


def zygote_main(sock: socket.socket, cleanup: Cleanup) -> None:
    """Forks solution processes on request and ends jobs. Holds no test, ever."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the runner's stdin carries tests: never let a child inherit it
    os.dup2(devnull, 1)
    sock.sendall(b'{"op": "ready"}')
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 24, 4)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        request = json.loads(msg)
        if request["op"] == "finish":
            sock.sendall(json.dumps(_finish(request["pid"], request["workdir"], cleanup))
                         .encode())
            continue
        job = request["job"]
        pid = os.fork()
        if pid == 0:
            sock.close()
            if job.get("kind") == "io":  # a stdin/stdout program: its own set-up, then exec
                io_job.child_main(job, list(fds))  # fds: stdin, stdout, stderr
            if job.get("kind") == "repo":  # pytest on a repository: exec'd the same way
                repo_job.child_main(job, list(fds))  # fds: the result channel
            call_r, reply_w, out_w = fds
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            keep = {call_r, reply_w}
            for fd in _open_fds():
                if fd > 2 and fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            solution_main(job, call_r, reply_w)
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"pid": pid}).encode())


def _finish(pid: int, workdir: str, cleanup: Cleanup) -> dict:
    """End a job: kill its process group, reap it, kill whatever else its uid runs, then wipe
    and check the sandbox. ``dirty`` names what the next job could still see."""
    _kill_group(pid)
    try:
        _pid, status = os.waitpid(pid, 0)
    except ChildProcessError:
        status = -1
    dirty = []
    remaining = _kill_uid(cleanup.uid) if cleanup.reap else 0
    if remaining:
        dirty.append(f"{remaining} processes of uid {cleanup.uid} survived")
    try:
        dirty.append(cleanup.after(workdir, remaining if cleanup.reap else None))
    except Exception as exc:  # noqa: BLE001 - the host replaces a dirty sandbox
        dirty.append(str(exc) or type(exc).__name__)
    return {"status": status, "dirty": "; ".join(filter(None, dirty))}


def _open_fds() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_uid(uid: int) -> int:
    """SIGKILL every process of ``uid`` in this pid namespace; return how many survived.

    The killer is forked from the zygote (which never held a test) and becomes ``uid`` itself,
    so ``kill(-1)`` reaches exactly that uid's processes and nothing else.
    """
    for _ in range(200):
        if not _pids_of(uid):
            return 0
        killer = os.fork()
        if killer == 0:
            try:
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(killer, 0)
    return len(_pids_of(uid))


def _pids_of(uid: int) -> list[int]:
    """Live (non-zombie) processes of ``uid``; zombies are reaped by their parent or init."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid != uid:
                    continue
                with open(f"/proc/{name}/stat", "rb") as f:
                    state = f.read().rpartition(b")")[2].split()[0]
            except OSError:
                continue
            if state not in (b"Z", b"X"):
                found.append(int(name))
    return found


def _remove_owned(root: str, uid: int) -> None:
    if not os.path.isdir(root):
        return
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_uid == uid:
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
