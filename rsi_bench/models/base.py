"""The model vocabulary: messages, completions, the Model protocol, the request hash, errors.

A message is a plain dict ``{"role": "system" | "user" | "assistant", "content": str}`` so that
it crosses the broker socket and the store unchanged. Usage counts are normalised across
providers: ``input_tokens`` are the *uncached* input tokens, and cache reads / writes are
counted separately (Anthropic reports them this way; OpenAI's ``prompt_tokens`` includes the
cached part, so the OpenAI backend subtracts it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from rsi_bench.errors import RsiBenchError

SCHEMA_VERSION = 1
ROLES = ("system", "user", "assistant")


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens + self.output_tokens + self.cache_read_tokens
                + self.cache_write_tokens)


OPTIONAL_FIELDS = ("queue_s", "tokens_per_s")  # of Completion: omitted from to_dict when None


@dataclass(frozen=True)
class Completion:
    """One answer. ``model_id`` is the exact model that answered, e.g. ``anthropic/claude-...``;
    the simulated model's ids always start with ``simulated``.

    ``queue_s``: of ``latency_s``, the seconds the call waited before its request was sent (for
    a free slot of the local server, or for it to restart). ``tokens_per_s``: output tokens per
    second of generation as the server timed it (llama.cpp reports it), else over the request.
    Both are None where a backend does not know them, and are then left out of ``to_dict`` so
    that those backends' records stay as they were."""

    text: str
    stop_reason: str | None
    usage: Usage
    cost_usd: float | None
    latency_s: float
    model_id: str
    queue_s: float | None = None
    tokens_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in OPTIONAL_FIELDS:
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Completion:
        optional = {name: None if data.get(name) is None else float(data[name])
                    for name in OPTIONAL_FIELDS}
        return cls(text=data["text"], stop_reason=data.get("stop_reason"),
                   usage=Usage(**data.get("usage", {})), cost_usd=data.get("cost_usd"),
                   latency_s=float(data.get("latency_s", 0.0)), model_id=data["model_id"],
                   **optional)


@dataclass(frozen=True)
class CallContext:
    """Who is asking: set by the broker from the request, never by the model."""

    role: str
    task_id: str | None = None
    generation: int | None = None
    sample: int = 0  # which of a task's samples (a loop draws each with its own seed)
    # Which independent draw of a request this is, for models that take no sampling seed: the
    # broker's cache treats the same request in two draws as two requests. Never sent.
    draw: str | None = None
    split: str | None = None  # the task's split (dev | heldout | sealed), when a loop knows it

    @property
    def bound(self) -> bool:
        """Whether the call belongs to a task or a generation (a loop's calls always do)."""
        return self.task_id is not None or self.generation is not None


@runtime_checkable
class Model(Protocol):
    """``name`` is the spec the model was built from (``anthropic/claude-sonnet-4-5``); it is
    part of the request hash, so a replay of the same run finds the same calls."""

    name: str

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion: ...


@runtime_checkable
class ContextualModel(Protocol):
    """A model that also wants to know the role and task (the simulated model does)."""

    def complete_in_context(self, messages: Sequence[Message], context: CallContext,
                            **params: Any) -> Completion: ...


def canonical_request(model: str, messages: Sequence[Mapping[str, Any]],
                      params: Mapping[str, Any], draw: str | None = None) -> str:
    """Canonical JSON of a request: sorted keys, no whitespace, UTF-8 kept as is. ``draw``
    (see ``CallContext``) is part of it only when set, so hashes without one never change."""
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages],
                            "params": dict(params)}
    if draw is not None:
        body["draw"] = draw
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(model: str, messages: Sequence[Mapping[str, Any]],
                 params: Mapping[str, Any], draw: str | None = None) -> str:
    return hashlib.sha256(canonical_request(model, messages, params, draw).encode()).hexdigest()


def binding_key(digest: str, context: CallContext) -> str:
    """The broker's cache key: a request's hash *and* who asked it (role, task, split,
    generation, sample). An answer is only ever served again to the binding that first received
    it, so no request an agent builds can reach another role's, task's, split's, generation's or
    sample's answers. Replay looks recorded calls up by the same key."""
    body = {"request": digest, "role": context.role, "task_id": context.task_id,
            "split": context.split, "generation": context.generation, "sample": context.sample}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def validate_messages(messages: object) -> list[Message]:
    """Check the shape of a message list; raise BadRequest naming the first problem."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of {role, content} objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise BadRequest(f"messages[{i}] must be an object with exactly 'role' and 'content'")
        if m["role"] not in ROLES:
            raise BadRequest(f"messages[{i}].role must be one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise BadRequest(f"messages[{i}].content must be a string")
    return messages


def summarize(messages: Sequence[Mapping[str, Any]], limit: int = 80) -> str:
    """A short one-line description of a request, for error messages."""
    last = str(messages[-1].get("content", "")) if messages else ""
    flat = " ".join(last.split())
    flat = flat if len(flat) <= limit else flat[: limit - 3] + "..."
    return f"{len(messages)} message(s), last: {flat!r}"


# ---------------------------------------------------------------- errors


class ModelError(RsiBenchError):
    """A model call failed; the message is safe to show (keys are redacted)."""


class UnknownProvider(ModelError):
    pass


class MissingApiKey(ModelError):
    def __init__(self, env_var: str, provider: str) -> None:
        super().__init__(f"{provider}: no API key: set the {env_var} environment variable")
        self.env_var = env_var


class AuthenticationFailed(ModelError):
    pass


class BadBaseUrl(ModelError):
    pass


class BadRequest(ModelError):
    """The request itself is malformed (bad messages, unsupported parameter)."""


class ProviderError(ModelError):
    """The provider answered with an error, after any retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelTimeout(ProviderError):
    pass


class ReplayMiss(ModelError):
    def __init__(self, digest: str, summary: str, source: str) -> None:
        super().__init__(f"replay: no recorded call for request {digest[:16]} ({summary}) in "
                         f"{source}; a replay never makes a live call")
        self.digest = digest


class BudgetExceeded(ModelError):
    pass


class LocalModelError(ModelError):
    """The local model cannot be assembled, verified or started."""
