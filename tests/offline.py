"""Tests never reach a real model provider: keys are removed from the environment and the
SDKs' default endpoints are pointed at a closed loopback port. Conftests that need it import the
fixture (it is autouse where imported)."""

from __future__ import annotations

import pytest

from rsi_bench.models.secrets import SECRET_ENV_VARS


@pytest.fixture(autouse=True)
def no_real_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECRET_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
