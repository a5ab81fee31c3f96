"""Infrastructure outcomes: a job that failed for a reason outside the agent.

The rule (README "Infrastructure outcomes"): a failure is ``infra`` only when the host itself
observed it, outside every sandbox, and the agent's code could not have caused it within its
limits:

- **the model**: the broker's call to the model raised, after the backend's own retries, a
  connection error, a timeout, or a 408/409/429/529/5xx status (``model_cause``). The broker
  sees this on the host; nothing the agent prints or returns can claim it. A job during which
  such a call failed is infra whatever the agent did next, since its answer was shaped by it.
- **a sandbox that would not start**: creating the container, or starting its runner, failed
  before the job was sent to it (``SandboxUnavailable``, which covers the agent pool's and
  the judge's "did not start"). No agent or solution code had run in that sandbox yet.
- **the docker daemon**: an error from the docker SDK or its HTTP transport on the host.
- **host memory**: ``MemoryError`` in this process.
- **a container stopped from outside**: a warm agent container's runner was lost and docker
  says the container is gone, or stopped without an OOM kill (``lost_sandbox_cause``). Under
  runc its PID 1 is root's init, which no agent process can signal, and an agent that fills
  its cgroup makes docker report an OOM kill: both stay the agent's. Under gVisor a fork bomb
  can end the sandbox itself, so there a lost runner is always the agent's.

Everything that happens inside a sandbox after the agent's code started is the agent's: a
runner lost or killed, a container out of memory (the agent's processes share its cgroup), a
timeout, a crash, a broker connection the agent broke, a malformed reply, a budget refusal, a
bad request. An agent that provokes a model failure (a request that makes the model time out)
gains nothing: the same job is retried with the same requests, fails the same way, and after
``attempts`` the run stops, loudly, with no score recorded for that job.

Infra outcomes are retried a bounded number of times with exponential backoff; each attempt is
an ``infra`` event in the store. When the attempts are spent, ``RunStopped`` ends the run (the
CLI prints one line and exits non-zero); committed work is kept, and running the same command
again resumes from it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rsi_bench.errors import RsiBenchError, SandboxUnavailable
from rsi_bench.models.base import ModelError, ProviderError
from rsi_bench.models.retry import RETRY_STATUS

T = TypeVar("T")
EVENT = "infra"
STOP_EVENT = "infra_stop"


class InfraFailure(RsiBenchError):
    """A job failed for a reason outside the agent; ``cause`` says which."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class RunStopped(RsiBenchError):
    """The run stopped before its end; its committed work is kept and a re-run resumes it."""


def model_cause(exc: BaseException) -> str | None:
    """The infra cause of a failed model call, or None when the failure is the caller's
    (bad request, budget, replay miss, auth, any other 4xx)."""
    if isinstance(exc, ProviderError):
        status = exc.status
        if status is None or status in RETRY_STATUS or status >= 500:
            what = "no answer" if status is None else f"status {status}"
            return f"model: {what} after retries: {str(exc)[:200]}"
        return None
    if isinstance(exc, ModelError) and type(exc).__name__ == "LocalModelError":
        return f"model: the local model server failed: {str(exc)[:200]}"
    return None


def _is_docker_error(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        module = cls.__module__ or ""
        if module.startswith(("docker.", "requests.exceptions", "urllib3.exceptions")):
            return True
    return False


def host_cause(exc: BaseException) -> str | None:
    """The infra cause of an exception raised on the host side of a job, or None.

    Only exceptions raised by host code are passed here: what happens inside a sandbox comes
    back as a reply (a status and a detail), never as an exception of the host."""
    if isinstance(exc, InfraFailure):
        return exc.cause
    if isinstance(exc, MemoryError):
        return "host: out of memory"
    if isinstance(exc, SandboxUnavailable):
        return f"sandbox did not start: {str(exc)[:300]}"
    if _is_docker_error(exc):
        return f"docker daemon: {type(exc).__name__}: {str(exc)[:300]}"
    return model_cause(exc)


def lost_sandbox_cause(sandbox: Any, settle_s: float = 5.0) -> str | None:
    """Why a docker (runc) sandbox's runner was lost, when the host can tell that no agent
    caused it; None when it cannot (the agent's outcome)."""
    container = getattr(sandbox, "container", None)
    if container is None or getattr(sandbox, "runtime", "") not in ("", "runc"):
        return None
    # docker may record the exit a moment after the channel closed: look for up to
    # ``settle_s`` (a container still running then is the agent's outcome: the safe side)
    until = time.monotonic() + settle_s
    while True:
        try:
            container.reload()
        except Exception as exc:  # noqa: BLE001 - only docker's own errors are classified
            if not _is_docker_error(exc):
                return None
            if type(exc).__name__ == "NotFound":
                return "docker: the container was removed from outside"
            return f"docker daemon: {type(exc).__name__}: {str(exc)[:300]}"
        state = container.attrs.get("State") or {}
        if state.get("OOMKilled"):
            return None
        if not state.get("Running", True):
            return ("docker: the container stopped from outside (exit code "
                    f"{state.get('ExitCode')})")
        if time.monotonic() >= until:
            return None
        time.sleep(0.25)


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        raise RsiBenchError(f"{name}={value!r} is not a number") from None


@dataclass
class InfraRetry:
    """Runs one job, retrying it on infra failures: ``attempts`` in all, waiting
    ``base_delay * 2**n`` (at most ``max_delay``) between them. ``record(kind, generation,
    detail)`` stores each event; ``notify(detail)`` tells the progress line."""

    record: Callable[..., None]
    notify: Callable[[dict[str, Any]], None] = lambda detail: None
    attempts: int = field(default_factory=lambda: int(_env_number("RSI_BENCH_INFRA_ATTEMPTS",
                                                                  4)))
    base_delay: float = field(default_factory=lambda: _env_number("RSI_BENCH_INFRA_BACKOFF",
                                                                  5.0))
    max_delay: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise RsiBenchError("RSI_BENCH_INFRA_ATTEMPTS must be at least 1")

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))

    def run(self, job: Callable[[], T], *, what: str, generation: int | None,
            **where: Any) -> T:
        """``job()`` until it returns; an infra failure is recorded and retried, any other
        exception propagates at once. ``RunStopped`` once ``attempts`` are spent."""
        for attempt in range(1, self.attempts + 1):
            try:
                return job()
            except Exception as exc:  # noqa: BLE001 - classified here, re-raised if not infra
                cause = host_cause(exc)
                if cause is None:
                    raise
            last = attempt == self.attempts
            wait = 0.0 if last else self.delay(attempt)
            detail = {"job": what, **where, "cause": cause, "attempt": attempt,
                      "attempts": self.attempts, "retry_in_s": None if last else wait}
            self.record(EVENT, generation, **detail)
            self.notify({"generation": generation, **detail})
            if not last:
                self.sleep(wait)
        place = " ".join(f"{k} {v}" for k, v in where.items() if v is not None)
        self.record(STOP_EVENT, generation, job=what, **where, cause=cause)
        gen = "" if generation is None else f"generation {generation} "
        raise RunStopped(
            f"run stopped: the {gen}{what}{' of ' + place if place else ''} failed "
            f"{self.attempts} times for a reason outside the agent ({cause}); no score was "
            "recorded for it and committed work is kept: run the same command again to resume")


def infra_counts(events: list[dict[str, Any]]) -> dict[int | None, int]:
    """Infra events per generation (``None``: a job of no generation)."""
    counts: dict[int | None, int] = {}
    for event in events:
        if event["kind"] == EVENT:
            counts[event["generation"]] = counts.get(event["generation"], 0) + 1
    return counts
