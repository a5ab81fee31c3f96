"""Language-model backends behind one protocol, chosen by a ``provider/model`` spec.

Backends are imported only when used (the simulated model never imports an SDK):

- ``anthropic/<model>``  Anthropic Messages API (anthropic SDK)
- ``openai/<model>``     OpenAI or any OpenAI-compatible server (``base_url=``)
- ``local/<model>``      a GGUF model served on loopback by llama.cpp (``rsi-bench[local]``)
- ``replay/<path>``      calls recorded in an earlier run (or ``replay`` with ``path=``)
- ``simulated``          the deterministic stand-in with known ground truth
                         (``simulated/<edit>``: every improve answer is that library edit)
"""

from __future__ import annotations

import importlib
from typing import Any

from rsi_bench.models.base import (
    BadRequest,
    BudgetExceeded,
    CallContext,
    Completion,
    Message,
    MissingApiKey,
    Model,
    ModelError,
    ReplayMiss,
    UnknownProvider,
    Usage,
    request_hash,
)

PROVIDERS: dict[str, str] = {
    "anthropic": "rsi_bench.models.anthropic:AnthropicModel",
    "openai": "rsi_bench.models.openai:OpenAIModel",
    "local": "rsi_bench.models.local:LocalModel",
    "replay": "rsi_bench.models.replay:ReplayModel",
    "simulated": "rsi_bench.models.simulated:SimulatedModel",
}
EXAMPLES = {"anthropic": "anthropic/claude-sonnet-4-5", "openai": "openai/gpt-4o-mini"}


def provider_class(provider: str) -> type[Any]:
    if provider not in PROVIDERS:
        raise UnknownProvider(f"unknown model provider {provider!r}; known providers: "
                              f"{', '.join(PROVIDERS)}")
    module, _, name = PROVIDERS[provider].partition(":")
    return getattr(importlib.import_module(module), name)


def get_model(spec: str, **config: Any) -> Model:
    """Build a model from ``provider/model``; ``config`` goes to the backend's constructor."""
    provider, _, rest = spec.strip().partition("/")
    cls = provider_class(provider)
    if provider in ("anthropic", "openai"):
        if not rest:
            raise BadRequest(f"say which {provider} model, e.g. {EXAMPLES[provider]}")
        return cls(rest, **config)
    if provider == "local":
        return cls(rest or None, **config)
    if provider == "replay":
        return cls(config.pop("path", None) or rest or None, **config)
    if rest:  # simulated/<edit>: every improve answer is that edit of the library
        try:
            return cls(edit=rest, **config)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return cls(**config)


__all__ = ["PROVIDERS", "BadRequest", "BudgetExceeded", "CallContext", "Completion", "Message",
           "MissingApiKey", "Model", "ModelError", "ReplayMiss", "UnknownProvider", "Usage",
           "get_model", "provider_class", "request_hash"]
