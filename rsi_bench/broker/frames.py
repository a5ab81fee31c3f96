"""Reading newline-delimited frames from one connection, within a socket's limits.

No frame is held beyond ``max_frame`` bytes, no connection's bytes beyond what the socket's
shared ``ByteBudget`` allows, and no frame waits beyond ``read_timeout``: each of those raises
``FrameRefused`` with a stable ``reason`` (recorded as the event's reason) and a message the
agent may read.
"""

from __future__ import annotations

import socket
import time

from rsi_bench.broker.limits import ByteBudget, SocketLimits

CHUNK = 64 * 1024


class FrameRefused(Exception):
    def __init__(self, reason: str, message: str, received: int) -> None:
        super().__init__(message)
        self.reason, self.received = reason, received


class FrameReader:
    def __init__(self, sock: socket.socket, limits: SocketLimits, budget: ByteBudget) -> None:
        self.sock, self.limits, self.budget = sock, limits, budget
        self._buffer = bytearray()
        self._held = 0  # bytes reserved in the budget: the buffer and the frame being answered

    def next_frame(self) -> bytes | None:
        """The next frame without its newline; ``None`` once the client has closed (or has
        sent nothing for ``read_timeout``). A last frame cut by the client's close counts as a
        frame, as ``readline`` would give it."""
        deadline = time.monotonic() + self.limits.read_timeout
        while True:
            end = self._buffer.find(b"\n")
            if 0 <= end <= self.limits.max_frame:
                frame = bytes(self._buffer[:end])
                del self._buffer[:end + 1]
                return frame
            if end > self.limits.max_frame or len(self._buffer) > self.limits.max_frame:
                raise FrameRefused(
                    "frame_too_large",
                    f"request refused: longer than the broker's limit of "
                    f"{self.limits.max_frame} bytes per request", len(self._buffer))
            chunk = self._recv(deadline)
            if not chunk:
                frame, self._buffer = bytes(self._buffer), bytearray()
                return frame or None
            if not self.budget.reserve(len(chunk)):
                raise FrameRefused(
                    "pending_bytes",
                    "request refused: the broker holds too many unfinished requests on this "
                    "socket", len(self._buffer) + len(chunk))
            self._held += len(chunk)
            self._buffer += chunk

    def _recv(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            self.sock.settimeout(remaining)
            try:
                return self.sock.recv(CHUNK)
            except TimeoutError:
                pass
            except OSError:
                return b""  # reset by the client: as good as closed
        if self._buffer:
            raise FrameRefused(
                "frame_incomplete",
                f"request refused: not completed (no newline) within "
                f"{self.limits.read_timeout:g} s", len(self._buffer))
        return b""  # idle past the deadline with nothing sent: close quietly

    def answered(self) -> None:
        """The last frame was answered: give back its bytes, keep the rest of the buffer."""
        done = self._held - len(self._buffer)
        self.budget.release(done)
        self._held -= done

    def close(self) -> None:
        self.budget.release(self._held)
        self._held = 0
        self._buffer = bytearray()
