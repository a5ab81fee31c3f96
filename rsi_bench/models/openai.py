"""``openai/<model>``: Chat Completions through the openai SDK, for OpenAI itself and for any
OpenAI-compatible server given as ``base_url`` (vLLM, Ollama, llama.cpp, LM Studio).

Keys: for api.openai.com the key is ``api_key`` or ``OPENAI_API_KEY``. For any other
``base_url`` (the argument, or ``OPENAI_BASE_URL``) the OpenAI key is never sent: the key is
``api_key``, or the environment variable named by ``api_key_env``, or none (local servers
need none).

Usage: OpenAI's ``prompt_tokens`` include cached tokens; they are split into uncached
``input_tokens`` and ``cache_read_tokens`` (``prompt_tokens_details.cached_tokens``). OpenAI
caches prompts automatically; there is no cache-write charge.

Parameters: ``max_tokens`` (sent as ``max_completion_tokens`` to OpenAI itself, which newer
models require, and as ``max_tokens`` elsewhere), ``temperature``, ``top_p``, ``stop``,
``seed``, and ``top_k`` (only for other servers; OpenAI has none).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rsi_bench.models._http import HttpBackend, import_sdk, resolve_key, validate_base_url
from rsi_bench.models.base import BadRequest, Completion, Message, Usage
from rsi_bench.models.pricing import Price
from rsi_bench.models.retry import RetryPolicy

ENV_VAR = "OPENAI_API_KEY"


class OpenAIModel(HttpBackend):
    provider = "openai"
    supported_params = frozenset({"max_tokens", "temperature", "top_p", "stop", "seed", "top_k"})

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 api_key_env: str | None = None, timeout: float = 300.0,
                 retry: RetryPolicy | None = None,
                 prices: Mapping[str, Price | Mapping[str, Any]] | None = None,
                 max_tokens: int = 4096, model_id: str | None = None,
                 free: bool = False, **_: Any) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        official = base_url is None
        base_url = validate_base_url(base_url) if base_url is not None else None
        env = ENV_VAR if official else api_key_env
        key, source = resolve_key(api_key, env, self.provider, required=official)
        super().__init__(model, key=key, key_source=source, base_url=base_url, timeout=timeout,
                         retry=retry, prices=prices, model_id=model_id, free=free)
        sdk = import_sdk("openai")
        self.official = official
        self.max_tokens = max_tokens
        self._client = sdk.OpenAI(api_key=key, base_url=base_url, timeout=timeout,
                                  max_retries=0)

    def build_request(self, messages: list[Message], params: dict[str, Any]) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        limit = int(params.get("max_tokens", self.max_tokens))
        request["max_completion_tokens" if self.official else "max_tokens"] = limit
        for name in ("temperature", "top_p", "stop", "seed"):
            if name in params:
                request[name] = params[name]
        if "top_k" in params:
            if self.official:
                raise BadRequest("openai: top_k is not supported by api.openai.com")
            request["extra_body"] = {"top_k": params["top_k"]}
        return request

    def _send(self, messages: list[Message], params: dict[str, Any]) -> Completion:
        response = self._client.chat.completions.create(**self.build_request(messages, params))
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "") if choice is not None else ""
        u = response.usage
        prompt = (u.prompt_tokens or 0) if u is not None else 0
        details = getattr(u, "prompt_tokens_details", None) if u is not None else None
        cached = (getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
        usage = Usage(input_tokens=max(prompt - cached, 0),
                      output_tokens=(u.completion_tokens or 0) if u is not None else 0,
                      cache_read_tokens=cached)
        model_id = self.model_id(response.model)
        stop = choice.finish_reason if choice is not None else None
        return Completion(text, stop, usage, self.price(model_id, usage), 0.0, model_id,
                          tokens_per_s=_server_rate(response))


def _server_rate(response: Any) -> float | None:
    """Generation speed as llama.cpp times it (its ``timings`` extension); None elsewhere."""
    timings = (getattr(response, "model_extra", None) or {}).get("timings")
    rate = timings.get("predicted_per_second") if isinstance(timings, dict) else None
    return float(rate) if isinstance(rate, (int, float)) and rate > 0 else None
