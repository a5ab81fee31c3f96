"""Limits that measure the agent: a solve's or improve's wall clock without its model waits.

The broker socket of a job is the only way its agent reaches a model, so the host knows when a
call of that job is in flight: from the moment the broker takes the request (budget, cache and
the concurrency slot included) to the moment the answer is handed back. ``ModelClock`` keeps
the union of those intervals (four calls in flight at once wait for the model once, not four
times). ``AgentDeadline`` moves the job's deadline by that time, up to ``cap``:

    deadline = start + timeout + min(model time, cap)

so ``timeout`` is the agent's own time, whatever the machine's load or the model's speed, and
no agent can stretch it without bound: each call is bounded by the model's own timeout and
retries, the sum of them by ``cap``, and the whole job by ``timeout + cap``. CPU burnt while a
call is in flight is bounded by the sandbox's CPU quota over that wall, and by the runner's
per-process CPU limit.

The runner inside the sandbox enforces the deadline, on its own clock from the moment the
agent starts (so starting a container under load is never agent time): ``ExcludedFile``
writes the excluded seconds into the job's broker socket directory, which only the host can
write, and the runner reads them. The host kills the sandbox ``GRACE_S`` after the same
deadline, as a backstop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Clock = Callable[[], float]
DEFAULT_CAP_FACTOR = 10.0  # model time a job may have excluded, as a multiple of its timeout


def default_cap(timeout: float) -> float:
    return DEFAULT_CAP_FACTOR * timeout


class ModelClock:
    """Time during which at least one model call of a job was in flight."""

    def __init__(self, now: Clock = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = 0.0
        self._total = 0.0

    @contextmanager
    def call(self) -> Iterator[None]:
        with self._lock:
            if self._in_flight == 0:
                self._since = self._now()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._total += self._now() - self._since

    def seconds(self) -> float:
        """Model time so far, a call still in flight included."""
        with self._lock:
            running = self._now() - self._since if self._in_flight else 0.0
            return self._total + running


class AgentDeadline:
    """``start()`` when the job is handed to the runner; then ``deadline()`` (monotonic) moves
    with the job's model time, up to ``cap``."""

    def __init__(self, timeout: float, cap: float | None, clock: ModelClock,
                 now: Clock = time.monotonic) -> None:
        self.timeout = timeout
        self.cap = default_cap(timeout) if cap is None else max(cap, 0.0)
        self.clock, self._now = clock, now
        self._start: float | None = None
        self._end: float | None = None

    @property
    def hard_wall(self) -> float:
        """The longest the job can last, model time included."""
        return self.timeout + self.cap

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> None:
        if self._end is None:
            self._end = self._now()

    def excluded(self) -> float:
        return min(self.clock.seconds(), self.cap)

    def deadline(self) -> float:
        begun = self._now() if self._start is None else self._start
        return begun + self.timeout + self.excluded()

    def elapsed(self) -> float:
        if self._start is None:
            return 0.0
        return (self._end if self._end is not None else self._now()) - self._start

    def model_s(self) -> float:
        return self.clock.seconds()

    def agent_s(self) -> float:
        """Wall time of the job that was not model time."""
        return max(self.elapsed() - self.model_s(), 0.0)

    def describe_timeout(self) -> str:
        """Deterministic (a detail is part of the result): the times are in agent_s, model_s."""
        return (f"no result within {self.timeout:g} s of the agent's own time (at most "
                f"{self.cap:g} s of model time excluded); the container was killed")


EXCLUDED_NAME = "model_s"  # in the job's broker socket directory


class ExcludedFile:
    """``with ExcludedFile(deadline, directory):`` keeps ``directory/model_s`` holding the
    seconds the deadline excludes (capped), for the runner inside the sandbox."""

    def __init__(self, deadline: AgentDeadline, directory: Path | None,
                 every: float = 0.25) -> None:
        self.deadline, self.every = deadline, every
        self.path = None if directory is None else directory / EXCLUDED_NAME
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _write(self) -> None:
        assert self.path is not None
        tmp = self.path.with_name(f".{EXCLUDED_NAME}.tmp")
        tmp.write_text(f"{self.deadline.excluded():.3f}\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            self._write()

    def __enter__(self) -> ExcludedFile:
        if self.path is not None:
            self._write()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
