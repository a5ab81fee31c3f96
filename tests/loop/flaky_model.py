"""A slow, flaky model server between the broker and the simulated model.

``FlakyTransport(inner)`` answers like ``inner`` but, as an overloaded or crashing server would:
every attempt takes ``latency_factor`` times the inner model's latency (at least ``floor_s``;
``sleep`` does the waiting, so a test chooses real or no time); a seeded fraction of attempts
answer 503, never more than ``max_failures_in_a_row`` times for one request (so the backend's
retries, like the HTTP backends' ``RetryPolicy``, always get through a 503 storm); and ``kill()``
takes the server down for the next ``down_for`` attempts, each a connection error
(``ProviderError`` without a status), after which it is back. What reaches the broker is what
an HTTP backend raises after its retries: ``ProviderError`` with the last status.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rsi_bench.models.base import CallContext, Completion, Message, ProviderError, request_hash
from rsi_bench.models.retry import Decision, RetryPolicy


class FlakyTransport:
    def __init__(self, inner: Any, *, latency_factor: float = 20.0, floor_s: float = 0.0,
                 error_rate: float = 0.3, max_failures_in_a_row: int = 2, attempts: int = 3,
                 kill_at_call: int | None = None, down_for: int = 0, seed: int = 0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        assert max_failures_in_a_row < attempts  # a 503 storm alone never exhausts retries
        self.inner, self.name = inner, inner.name
        self.latency_factor, self.floor_s = latency_factor, floor_s
        self.error_rate, self.max_in_a_row = error_rate, max_failures_in_a_row
        self.kill_at_call, self.down_for = kill_at_call, down_for
        self.sleep = sleep
        self.policy = RetryPolicy(max_attempts=attempts, sleep=lambda s: None,
                                  rng=random.Random(seed))
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._in_a_row: dict[str, int] = {}
        self._down_left = 0
        self.calls = 0  # calls the broker made
        self.attempts = 0  # attempts on the wire, retries included
        self.errors_503 = self.refused = self.kills = 0

    def kill(self) -> None:
        with self._lock:
            self._down_left = self.down_for
            self.kills += 1

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        return self.complete_in_context(messages, CallContext("unknown"), **params)

    def complete_in_context(self, messages: Sequence[Message], context: CallContext,
                            **params: Any) -> Completion:
        with self._lock:
            self.calls += 1
            if self.calls == self.kill_at_call:
                self._down_left = self.down_for
                self.kills += 1
        digest = request_hash(self.name, list(messages), params)
        return self.policy.run(lambda: self._attempt(messages, context, params, digest),
                               lambda exc: Decision(isinstance(exc, ProviderError)))

    def _attempt(self, messages: Sequence[Message], context: CallContext,
                 params: dict[str, Any], digest: str) -> Completion:
        with self._lock:
            self.attempts += 1
            if self._down_left > 0:
                self._down_left -= 1
                self.refused += 1
                raise ProviderError("connection refused: the model server is down")
            fail = (self._in_a_row.get(digest, 0) < self.max_in_a_row
                    and self._rng.random() < self.error_rate)
            self._in_a_row[digest] = self._in_a_row.get(digest, 0) + 1 if fail else 0
            if fail:
                self.errors_503 += 1
        start = time.monotonic()
        completion = self.inner.complete_in_context(messages, context, **params)
        took = max(time.monotonic() - start, 0.0)
        slow = max(took * self.latency_factor, self.floor_s)
        self.sleep(slow)
        if fail:
            raise ProviderError("503 Service Unavailable: overloaded", status=503)
        return replace(completion, latency_s=slow)
