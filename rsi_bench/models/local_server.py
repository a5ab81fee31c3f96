"""The host side of the local model server: one llama.cpp server in a child process.

The child (``rsi_bench.models.llama_server``) serves on 127.0.0.1 at a free port and exits when
its standard input closes, so it cannot outlive this process. Its output goes to a log file
whose name is removed as soon as the child has it open (our handle stays open), so nothing is left
behind even if rsi-bench is killed, while ``log_tail()`` can still show why it died.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

from rsi_bench.models.base import LocalModelError
from rsi_bench.models.secrets import SECRET_ENV_VARS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """A llama.cpp server in a child process this object owns."""

    def __init__(self, gguf: Path, *, alias: str, ctx: int = 8192, threads: int = 1,
                 parallel: int = 1, startup_timeout: float = 300.0) -> None:
        self.gguf, self.alias, self.ctx = gguf, alias, ctx
        self.threads, self.parallel = threads, parallel
        self.startup_timeout = startup_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._log_reader: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The child's command line (a test server overrides it)."""
        try:
            importlib.metadata.distribution("xllamacpp")
        except importlib.metadata.PackageNotFoundError:
            raise LocalModelError("local models need xllamacpp: pip install "
                                  "'rsi-bench[local]'") from None
        return [sys.executable, "-m", "rsi_bench.models.llama_server", "--model", str(self.gguf),
                "--port", str(self.port), "--alias", self.alias, "--ctx", str(self.ctx),
                "--threads", str(self.threads), "--parallel", str(self.parallel)]

    def start(self) -> LlamaServer:
        self.port = free_port()
        cmd = self.command()
        fd, log = tempfile.mkstemp(prefix="rsi-bench-llama-", suffix=".log")
        self._log = Path(log)
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=fd,
                                     stderr=subprocess.STDOUT, env=env, close_fds=True)
        os.close(fd)
        # Unnamed from the start: a parent killed while the model loads leaves no file.
        self._keep_log_unnamed()
        atexit.register(self.stop)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                reason = _first_error(self.log_tail(60))
                self.stop()
                raise LocalModelError(f"the llama.cpp server exited with code {code} while "
                                      f"loading {self.gguf}: {reason}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(f"the llama.cpp server did not become healthy within "
                              f"{self.startup_timeout:g}s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def healthy(self, timeout: float = 10.0) -> bool:
        """Alive and answering ``/health``. A busy server still answers it (llama.cpp serves
        it from its HTTP thread), so a failure means dead or wedged, not merely slow."""
        if not self.alive():
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=timeout) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def _keep_log_unnamed(self) -> None:
        """Keep reading the log through an open handle, and remove its name, so that no file
        is left behind even if this process is killed (the child writes to its own handle)."""
        if self._log is not None:
            self._log_reader = self._log.open("rb")
            self._log.unlink(missing_ok=True)
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        if self._log_reader is not None:
            self._log_reader.seek(0)
            data = self._log_reader.read()
        elif self._log is not None and self._log.exists():
            data = self._log.read_bytes()
        else:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            if proc.stdin is not None:
                proc.stdin.close()  # the child exits on end of input
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elif proc is not None and proc.stdin is not None:
            proc.stdin.close()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None
        if self._log_reader is not None:
            self._log_reader.close()
            self._log_reader = None
        atexit.unregister(self.stop)


def _first_error(log: str) -> str:
    """The first line of a server log that reports an error, without its timestamp."""
    for line in log.splitlines():
        words = line.split()
        if len(words) > 2 and words[1] == "E":  # llama.cpp: "<time> E <component> <message>"
            return " ".join(words[2:])
    lines = [line for line in log.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no log output"


