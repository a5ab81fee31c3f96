"""A long-lived runner in a sandbox, and the host's end of its channel.

The judge's workers and the warm agent containers both keep one runner process alive in a
sandbox and send it job after job. On docker the runner talks to the host over a unix socket in
a root-only (0700) bind mount instead of dockerd's exec stream, which halves the cost of a job;
the host accepts exactly one connection and closes the listener, so nothing started later in
the sandbox can attach. Elsewhere the runner's own stdin and stdout are the channel.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import replace

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox.base import Sandbox, SandboxSpec, Stream

SOCKET_NAME = "runner.sock"


class ChannelError(SandboxUnavailable):
    """The runner did not start or did not connect; the message carries its stderr tail."""


class Attached:
    """``start(command)`` creates the sandbox and its runner; ``in_fd`` / ``out_fd`` are then
    the host's ends of the channel. ``stop()`` removes all of it and may be called twice."""

    def __init__(self, backend_name: str, spec: SandboxSpec, mount: str) -> None:
        self.backend_name, self.spec, self.mount = backend_name, spec, mount
        self.sandbox: Sandbox | None = None
        self.stream: Stream | None = None
        self.conn: socket.socket | None = None
        self._dir = ""
        self.in_fd = self.out_fd = -1

    def start(self, command: Callable[[Sandbox], list[str]], *, extra_mounts:
              dict[str, str] | None = None, connect_timeout: float = 60.0) -> Sandbox:
        """Create the sandbox and start ``command(sandbox)`` in it, as root.

        With a socket channel the runner is given ``--connect PATH`` as its last arguments.
        """
        from rsi_bench.sandbox import backend_kind, get_backend

        spec, listener = self.spec, None
        mounts = {**spec.mounts, **(extra_mounts or {})}
        if backend_kind(self.backend_name) == "docker":
            self._dir = tempfile.mkdtemp(prefix="rsi-bench-channel-")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.path.join(self._dir, SOCKET_NAME))
            listener.listen(1)
            mounts[self._dir] = self.mount
        try:
            self.sandbox = sandbox = get_backend(self.backend_name).create(
                replace(spec, mounts=mounts))
            cmd = command(sandbox)
            if listener is not None:
                cmd += ["--connect", f"{self.mount}/{SOCKET_NAME}"]
            self.stream = stream = sandbox.stream(cmd, user=0)
            self.in_fd, self.out_fd = stream.stdin_fd, stream.stdout_fd
            if listener is not None:
                listener.settimeout(connect_timeout)
                try:
                    self.conn, _ = listener.accept()
                except OSError as exc:
                    raise ChannelError(f"the runner did not connect: {self.stderr_tail()}"
                                       ) from exc
                self.conn.settimeout(None)
                self.in_fd = self.out_fd = self.conn.fileno()
        except BaseException:
            self.stop()
            raise
        finally:
            if listener is not None:
                listener.close()  # one connection only: nothing else can attach later
        return sandbox

    def stderr_tail(self, n: int = 300) -> str:
        return self.stream.stderr_tail().decode(errors="replace")[-n:] if self.stream else ""

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.stream is not None:
            self.stream.close()
        if self.sandbox is not None:
            self.sandbox.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
        self.stream = self.sandbox = self.conn = None
        self._dir = ""
        self.in_fd = self.out_fd = -1
