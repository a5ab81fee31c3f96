"""Keeping API keys out of everything recorded, raised or sent to a container.

A ``Redactor`` replaces every known secret value (the keys in the environment variables below,
plus any value given to it) and anything shaped like a provider key with ``[REDACTED]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

SECRET_ENV_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY",
                   "OPENAI_ADMIN_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
MASK = "[REDACTED]"
# sk-ant-..., sk-proj-..., sk-... and hf_... tokens of a plausible length
_KEY_SHAPE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,})")


def secret_values(extra: Iterable[str | None] = ()) -> list[str]:
    values = [os.environ.get(name) for name in SECRET_ENV_VARS] + list(extra)
    # very short values would mask ordinary words; real keys are long
    return sorted({v for v in values if v and len(v) >= 8}, key=len, reverse=True)


class Redactor:
    def __init__(self, extra: Iterable[str | None] = ()) -> None:
        self._extra = [v for v in extra if v]

    def add(self, value: str | None) -> None:
        if value:
            self._extra.append(value)

    def text(self, value: str) -> str:
        # secrets are read from the environment at each call, so a key set later is covered too
        for secret in secret_values(self._extra):
            value = value.replace(secret, MASK)
        return _KEY_SHAPE.sub(MASK, value)

    def deep(self, value: Any) -> Any:
        """Redact every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value
