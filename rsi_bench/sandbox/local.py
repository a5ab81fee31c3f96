"""Process sandboxes on the host: ``local`` (no isolation) and the base of ``bubblewrap``.

State lives in a host temporary directory that is the sandbox's /scratch; every exec is a new
process (for bubblewrap, a new set of namespaces) over that directory.

``local`` isolates nothing. It exists for debugging on machines without Docker or bubblewrap and
must be chosen explicitly; solutions it runs can read and write anything the user can.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox.base import CappedBuffer, ExecResult, SandboxSpec, drain

RUNNER = str(Path(__file__).resolve().parent.parent / "judge" / "runner.py")


class ProcessSandbox:
    backend = "local"
    pid_namespace = False

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.host_dir = Path(tempfile.mkdtemp(prefix=f"rsi-bench-{spec.run_label}-"))
        os.chmod(self.host_dir, 0o755)
        self._procs: list[subprocess.Popen[bytes]] = []
        self.runner_path = RUNNER
        self.work_root = str(self.host_dir)
        self.scratch: tuple[str, ...] = (self.work_root,)
        self.python = sys.executable

    # -- hooks the bubblewrap backend overrides
    def wrap(self, cmd: list[str], user: int | None, cwd: str
             ) -> tuple[list[str], str | None, tuple[int, ...]]:
        """The host command to run, its host cwd, and descriptors it must inherit (closed here
        once it has started)."""
        return cmd, self._host_path(cwd), ()

    def _host_path(self, path: str) -> str:
        return path.replace("/scratch", self.work_root, 1) if path.startswith("/scratch") else path

    def describe(self) -> dict[str, str]:
        return {"backend": self.backend, "image": "", "image_id": ""}

    def _popen(self, cmd: list[str], user: int | None, cwd: str) -> subprocess.Popen[bytes]:
        host_cmd, host_cwd, fds = self.wrap(cmd, user, cwd)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **self.spec.env}
        try:
            proc = subprocess.Popen(host_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=host_cwd, env=env,
                                    start_new_session=True, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        self._procs.append(proc)
        return proc

    def exec(self, cmd: list[str], *, input: bytes | None = None, timeout: float = 30.0,
             user: int | None = None, cwd: str = "/scratch",
             env: dict[str, str] | None = None) -> ExecResult:
        start = time.monotonic()
        if env:
            cmd = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *cmd]
        proc = self._popen(cmd, user, cwd)
        assert proc.stdin and proc.stdout and proc.stderr
        out = CappedBuffer(self.spec.limits.output_bytes)
        err = CappedBuffer(self.spec.limits.output_bytes)
        threads = [threading.Thread(target=drain, args=(os.dup(f.fileno()), sink), daemon=True)
                   for f, sink in ((proc.stdout, out), (proc.stderr, err))]
        proc.stdout.close()
        proc.stderr.close()
        for t in threads:
            t.start()
        try:
            if input:
                proc.stdin.write(input)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        timed_out = False
        try:
            code: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out, code = True, None
            self._kill(proc)
        for t in threads:
            t.join(timeout=5)
        self._procs.remove(proc)
        return ExecResult(code, out.getvalue(), err.getvalue(), timed_out,
                          time.monotonic() - start, out.truncated or err.truncated)

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()

    def write_file(self, path: str, data: bytes) -> None:
        target = Path(self._host_path(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def read_file(self, path: str) -> bytes:
        return Path(self._host_path(path)).read_bytes()

    def stream(self, cmd: list[str], *, user: int = 0) -> ProcessStream:
        if cmd and cmd[0] == "python3":
            cmd = [self.python, *cmd[1:]]
        return ProcessStream(self._popen(cmd, user, "/scratch"))

    def close(self) -> None:
        for proc in list(self._procs):
            self._kill(proc)
        self._procs.clear()
        shutil.rmtree(self.host_dir, ignore_errors=True)


class ProcessStream:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin and proc.stdout and proc.stderr
        self.proc = proc
        self.stdin_fd, self.stdout_fd = proc.stdin.fileno(), proc.stdout.fileno()
        self._err = CappedBuffer(1 << 16)
        threading.Thread(target=drain, args=(os.dup(proc.stderr.fileno()), self._err),
                         daemon=True).start()
        proc.stderr.close()

    def stderr_tail(self) -> bytes:
        return self._err.getvalue()[-4096:]

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()
        self.proc.wait()


class LocalBackend:
    """No isolation at all: explicit opt-in for debugging."""

    name = "local"

    def check(self) -> None:
        return None

    def create(self, spec: SandboxSpec) -> ProcessSandbox:
        if spec.environment:
            raise SandboxUnavailable(f"the environment image {spec.image} needs the docker "
                                     "sandbox (runc or runsc): "
                                     "the local backend runs on the host itself")
        # Jobs run as the invoking user: there is nothing to drop to without isolation.
        return ProcessSandbox(replace(spec, uid=os.getuid()))
