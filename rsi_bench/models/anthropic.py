"""``anthropic/<model>``: the Messages API through the anthropic SDK.

Prompt caching: the system prompt and the first user message are the stable prefix of an
agent's conversation (its instructions, often its own source code). Each of them that is at
least ``cache_min_chars`` long (default 4,000 characters, about the 1,024-token minimum the API
caches) is sent as a text block with ``cache_control: {"type": "ephemeral"}``. The API then
reports ``cache_creation_input_tokens`` (priced at the cache-write rate) and
``cache_read_input_tokens`` (cache-read rate) separately from ``input_tokens``.

Parameters: ``max_tokens`` (default 4096), ``temperature``, ``top_p``, ``top_k``, ``stop``
(a list of stop sequences) and ``seed``, which Anthropic does not support: it is accepted so a
caller can ask for an independent sample (it changes the request hash) and is not sent. The
anthropic SDK 2.x dropped the sampling arguments from ``messages.create``; they are sent in
the request body (``extra_body``), and models that no longer accept them answer HTTP 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rsi_bench.models._http import HttpBackend, import_sdk, resolve_key, validate_base_url
from rsi_bench.models.base import Completion, Message, Usage
from rsi_bench.models.pricing import Price
from rsi_bench.models.retry import RetryPolicy

ENV_VAR = "ANTHROPIC_API_KEY"
CACHE = {"type": "ephemeral"}


class AnthropicModel(HttpBackend):
    provider = "anthropic"
    supported_params = frozenset({"max_tokens", "temperature", "top_p", "top_k", "stop", "seed"})

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 300.0, retry: RetryPolicy | None = None,
                 prices: Mapping[str, Price | Mapping[str, Any]] | None = None,
                 max_tokens: int = 4096, cache_min_chars: int = 4000,
                 require_key: bool = True, model_id: str | None = None, free: bool = False,
                 **_: Any) -> None:
        base_url = validate_base_url(base_url) if base_url is not None else None
        key, source = resolve_key(api_key, ENV_VAR, self.provider, required=require_key)
        super().__init__(model, key=key, key_source=source, base_url=base_url, timeout=timeout,
                         retry=retry, prices=prices, model_id=model_id, free=free)
        sdk = import_sdk("anthropic")
        self.max_tokens = max_tokens
        self.cache_min_chars = cache_min_chars
        self._client = sdk.Anthropic(api_key=key, base_url=base_url, timeout=timeout,
                                     max_retries=0)

    def _prefix_block(self, text: str) -> str | list[dict[str, Any]]:
        if len(text) >= self.cache_min_chars:
            return [{"type": "text", "text": text, "cache_control": dict(CACHE)}]
        return text

    def build_request(self, messages: list[Message], params: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments of ``messages.create``; public so tests can inspect them."""
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns: list[dict[str, Any]] = [dict(m) for m in messages if m["role"] != "system"]
        for turn in turns:
            if turn["role"] == "user":
                turn["content"] = self._prefix_block(turn["content"])
                break
        request: dict[str, Any] = {"model": self.model, "messages": turns,
                                   "max_tokens": int(params.get("max_tokens", self.max_tokens))}
        if system:
            request["system"] = self._prefix_block(system)
        sampling = {n: params[n] for n in ("temperature", "top_p", "top_k") if n in params}
        if sampling:  # the 2.x SDK has no sampling arguments; the API still reads the fields
            request["extra_body"] = sampling
        if "stop" in params:
            stop = params["stop"]
            request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        return request

    def _send(self, messages: list[Message], params: dict[str, Any]) -> Completion:
        response = self._client.messages.create(**self.build_request(messages, params))
        text = "".join(getattr(b, "text", "") for b in response.content
                       if getattr(b, "type", "") == "text")
        u = response.usage
        usage = Usage(input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                      cache_read_tokens=u.cache_read_input_tokens or 0,
                      cache_write_tokens=u.cache_creation_input_tokens or 0)
        model_id = self.model_id(response.model)
        return Completion(text, response.stop_reason, usage, self.price(model_id, usage), 0.0,
                          model_id)
