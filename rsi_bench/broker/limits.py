"""What one broker socket accepts: frame size, connections, unfinished bytes, read deadline.

An agent controls everything that arrives on its socket, so each of these is a cap the agent
cannot raise. Together they bound the memory one socket can hold: at most ``max_pending``
bytes of frames that are being read or answered, whatever the number of connections (which
``max_connections`` caps as well, so threads are bounded too). Each refusal is recorded as an
event (``broker_refused``) in the run's store.

Defaults, and why: a model request is text. 4 MiB is about a million tokens of ASCII even
after JSON escaping, above any context window a run will use; a real request is rarely over a
few hundred KiB. 16 connections per socket is more than any solve needs (the agent client uses
one per call, and the broker runs at most ``concurrency`` calls at once anyway); 16 MiB of
unfinished frames is four maximal requests in flight on one socket. A frame must be complete
within 30 s of the moment the broker starts waiting for it: on a unix socket a maximal frame
takes milliseconds. Each can be set per broker (``Broker(socket_limits=...)``) or from the
environment (``RSI_BENCH_BROKER_MAX_FRAME`` and so on, read when a broker is made).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields

from rsi_bench.errors import InputError

ENV_PREFIX = "RSI_BENCH_BROKER_"


@dataclass(frozen=True)
class SocketLimits:
    max_frame: int = 4 << 20  # bytes of one request line
    max_connections: int = 16  # open at once on one socket
    max_pending: int = 16 << 20  # bytes of unfinished or unanswered frames, all connections
    read_timeout: float = 30.0  # seconds for a frame to arrive once the broker waits for it
    max_events: int = 20  # refusals recorded one by one per socket; the rest as a count

    def __post_init__(self) -> None:
        for f in fields(self):
            if not getattr(self, f.name) > 0:
                raise InputError(f"broker limit {f.name} must be positive, "
                                 f"not {getattr(self, f.name)!r}")
        if self.max_pending < self.max_frame:
            raise InputError("broker limit max_pending must be at least max_frame")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SocketLimits:
        """Defaults, overridden by ``RSI_BENCH_BROKER_<NAME>`` (e.g. ``..._MAX_FRAME=8388608``)."""
        env = os.environ if environ is None else environ
        values: dict[str, float | int] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            kind = float if f.name == "read_timeout" else int
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise InputError(f"{ENV_PREFIX}{f.name.upper()} must be a number, "
                                 f"not {raw!r}") from None
        return cls(**values)  # type: ignore[arg-type]


class ByteBudget:
    """Bytes of unfinished frames on one socket: reserved as they arrive, released once the
    frame is answered (or its connection is gone)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def reserve(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.used -= n
