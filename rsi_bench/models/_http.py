"""What the anthropic and openai backends share: keys, base URLs, retries, error translation."""

from __future__ import annotations

import importlib
import ipaddress
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from rsi_bench.models.base import (
    AuthenticationFailed,
    BadBaseUrl,
    BadRequest,
    Completion,
    Message,
    MissingApiKey,
    ModelError,
    ModelTimeout,
    ProviderError,
    Usage,
    validate_messages,
)
from rsi_bench.models.pricing import FREE, Price, cost
from rsi_bench.models.retry import RetryPolicy, classify_sdk_error
from rsi_bench.models.secrets import Redactor

NO_KEY = "no-key-needed"


def import_sdk(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(f"the {module} package is not installed: pip install {module}") from exc


def validate_base_url(url: str) -> str:
    """Return the URL without a trailing slash, or raise BadBaseUrl saying what is wrong."""
    shown = url if len(url) <= 80 else url[:77] + "..."
    if not url or url != url.strip() or any(c.isspace() for c in url):
        raise BadBaseUrl(f"base URL {shown!r} is malformed: it must not be empty or contain spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadBaseUrl(f"base URL {shown!r} is malformed: it must start with http:// or "
                         "https://, e.g. http://127.0.0.1:8000/v1")
    try:
        port = parts.port
    except ValueError:
        raise BadBaseUrl(f"base URL {shown!r} is malformed: the port is not a number "
                         "between 0 and 65535") from None
    host = parts.hostname
    if not host or (port is None and parts.netloc.endswith(":")):
        raise BadBaseUrl(f"base URL {shown!r} is malformed: it has no host")
    if parts.username or parts.password:
        raise BadBaseUrl(f"base URL {shown!r} must not carry credentials; pass api_key instead")
    if parts.query or parts.fragment:
        raise BadBaseUrl(f"base URL {shown!r} is malformed: no query string or fragment allowed")
    if host[0].isdigit() and not _is_ip(host):
        raise BadBaseUrl(f"base URL {shown!r} is malformed: {host!r} is not a valid address")
    return url.rstrip("/")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_key(api_key: str | None, env_var: str | None, provider: str,
                required: bool) -> tuple[str, str]:
    """Return (key, where it came from); raise MissingApiKey when a required key is absent."""
    if api_key:
        return api_key, "the api_key setting"
    if env_var and os.environ.get(env_var):
        return os.environ[env_var], env_var
    if required:
        raise MissingApiKey(env_var or "API key", provider)
    return NO_KEY, "no key (none needed by this server)"


class HttpBackend:
    """Base of the SDK backends: one retry policy, one error translation, one timer."""

    provider = ""
    supported_params: frozenset[str] = frozenset()

    def __init__(self, model: str, *, key: str, key_source: str, base_url: str | None,
                 timeout: float, retry: RetryPolicy | None,
                 prices: Mapping[str, Price | Mapping[str, Any]] | None,
                 model_id: str | None = None, free: bool = False) -> None:
        if not model or model != model.strip():
            raise BadRequest(f"{self.provider}: empty or malformed model name {model!r}")
        self.model = model
        # model_id pins the reported id, e.g. local/qwen2.5-coder-0.5b served by llama.cpp
        self.name = model_id or f"{self.provider}/{model}"
        self.fixed_id = model_id
        self.free = free
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.prices = prices
        self.key_source = key_source
        self.redactor = Redactor([key if key != NO_KEY else None])
        self.attempts = 0  # of the last call (informational: racy under concurrency)

    def _send(self, messages: list[Message], params: dict[str, Any]) -> Completion:
        raise NotImplementedError

    def model_id(self, reported: str | None) -> str:
        return self.fixed_id or f"{self.provider}/{reported or self.model}"

    def price(self, model_id: str, usage: Usage) -> float | None:
        if self.free:
            return FREE.cost(usage)
        found = cost(model_id, usage, self.prices)
        return found if found is not None else cost(self.name, usage, self.prices)

    def secrets(self) -> list[str]:
        """Values the broker must redact (the key this backend holds)."""
        return list(self.redactor._extra)

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        checked = validate_messages(list(messages))
        unknown = set(params) - self.supported_params
        if unknown:
            raise BadRequest(f"{self.provider}: unsupported parameter(s) {sorted(unknown)}; "
                             f"supported: {sorted(self.supported_params)}")
        attempts = 0
        start = time.monotonic()

        def attempt() -> Completion:
            nonlocal attempts
            attempts += 1
            self.attempts = attempts
            return self._send(checked, dict(params))

        try:
            completion = self.retry.run(attempt, classify_sdk_error)
        except ModelError:
            raise
        except Exception as exc:
            raise self._translate(exc, attempts) from None
        return replace(completion, latency_s=time.monotonic() - start)

    def _translate(self, exc: Exception, attempts: int) -> ModelError:
        where = self.base_url or "the default endpoint"
        tries = f"after {attempts} attempt(s)"
        status = getattr(exc, "status_code", None)
        names = {cls.__name__ for cls in type(exc).__mro__}
        if status in (401, 403):
            return AuthenticationFailed(self.redactor.text(
                f"{self.provider}: the server rejected the API key (HTTP {status}); "
                f"check {self.key_source}"))
        if isinstance(status, int):
            detail = getattr(exc, "api_message", None) or _body_message(exc) or str(exc)
            return ProviderError(self.redactor.text(
                f"{self.provider}: HTTP {status} from {where} {tries}: {detail}"), status)
        if "APITimeoutError" in names:
            return ModelTimeout(f"{self.provider}: no answer from {where} within "
                                f"{self.timeout:g}s, {tries}")
        if "APIConnectionError" in names:
            cause = exc.__cause__ or exc
            return ProviderError(self.redactor.text(
                f"{self.provider}: cannot connect to {where} {tries}: {cause}"))
        return ModelError(self.redactor.text(f"{self.provider}: {type(exc).__name__}: {exc}"))


def _body_message(exc: Exception) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return None

