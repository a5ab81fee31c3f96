"""What an agent is told: its own answer, or that it has none and in what category.

Never anything about other calls: no cache hit flag (a hit is only ever the caller's own
earlier answer, and the reply is byte for byte the one it first got), no budget numbers (they
are the sum of every caller's spending), no host path, provider account detail or broker
internals. The host-side record (``model_calls``, ``events``) keeps the full story.
"""

from __future__ import annotations

from typing import Any

from rsi_bench.models.base import (
    BadRequest,
    BudgetExceeded,
    Completion,
    ModelTimeout,
    ProviderError,
    ReplayMiss,
)

# Provider statuses whose message is about the request itself (too long, malformed, unknown
# parameter): the agent can act on it, and it says nothing about other callers. Rate limits
# (429) and server errors say how busy the account is, so they are reported by status only.
REQUEST_STATUS = frozenset({400, 404, 413, 422})


# What the host records of a call but never tells the agent: how long the call queued behind
# other callers' calls says how busy the model was with them.
HOST_ONLY = ("queue_s",)


def ok(request_id: Any, completion: Completion) -> dict[str, Any]:
    told = {k: v for k, v in completion.to_dict().items() if k not in HOST_ONLY}
    return {"id": request_id, "ok": True, "completion": told}


def error(request_id: Any, kind: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"type": kind, "message": message}}


def agent_error(exc: Exception, redact: Any = str) -> tuple[str, str]:
    """``(type, message)`` for the agent. ``redact`` masks keys in a message that is passed on.
    """
    if isinstance(exc, BudgetExceeded):
        return "BudgetExceeded", "budget exhausted: the call was refused"
    if isinstance(exc, BadRequest):  # about the agent's own request
        return "BadRequest", redact(str(exc))
    if isinstance(exc, ReplayMiss):
        return "ReplayMiss", ("replay: this request was not recorded for this call; a replay "
                              "never makes a live call")
    if isinstance(exc, ModelTimeout):
        return "ModelTimeout", "the model did not answer in time"
    if isinstance(exc, ProviderError):
        if exc.status in REQUEST_STATUS:
            return "ProviderError", redact(str(exc))
        status = f" (HTTP {exc.status})" if exc.status else ""
        return "ProviderError", f"the model provider could not answer{status}"
    return "ModelError", f"the model is not available ({type(exc).__name__})"
