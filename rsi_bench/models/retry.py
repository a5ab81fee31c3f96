"""The retry policy shared by the HTTP backends.

Retried: 408, 409, 429, 529 (Anthropic "overloaded"), every other 5xx, connection errors and
timeouts. Never retried: any other 4xx (400 bad request, 401/403 auth, 404, 413, 422 ...).
A ``retry-after-ms`` or ``retry-after`` header (seconds or an HTTP date) is honoured exactly,
up to ``max_retry_after``; without one the delay is exponential, ``base_delay * 2**n`` capped at
``max_delay``, with jitter: a uniform random fraction ``jitter`` of the delay is subtracted, so
clients that failed together do not retry together. The SDKs' own retries are switched off so
that this is the only policy, and so that tests can inject ``sleep`` and a seeded ``rng``.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 409, 429, 529})


@dataclass(frozen=True)
class Decision:
    retry: bool
    retry_after: float | None = None


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff * (1.0 - self.jitter * self.rng.random())

    def run(self, call: Callable[[], T], classify: Callable[[BaseException], Decision],
            on_retry: Callable[[int, float, BaseException], None] | None = None) -> T:
        """Call until success, a non-retryable error, or ``max_attempts``; re-raise the last."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except Exception as exc:
                decision = classify(exc)
                if not decision.retry or attempt >= self.max_attempts:
                    raise
                wait = self.delay(attempt, decision.retry_after)
                if on_retry is not None:
                    on_retry(attempt, wait, exc)
                self.sleep(wait)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value.strip() else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def classify_sdk_error(exc: BaseException) -> Decision:
    """Classify an exception from the anthropic or openai SDK (both share one design)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        retry = status in RETRY_STATUS or status >= 500
        return Decision(retry, parse_retry_after(headers) if retry else None)
    names = {cls.__name__ for cls in type(exc).__mro__}
    return Decision("APIConnectionError" in names or "APITimeoutError" in names)
