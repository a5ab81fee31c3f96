"""Sandboxes: one protocol, backends chosen by a short name through a lazy map.

The map holds dotted paths, not classes, so choosing ``local`` never imports the docker SDK.
"""

from __future__ import annotations

import importlib

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox.base import (
    LABEL,
    SANDBOX_UID,
    Backend,
    ExecResult,
    Limits,
    Sandbox,
    SandboxSpec,
    Stream,
)

BACKENDS: dict[str, str] = {
    "docker": "rsi_bench.sandbox.docker_backend:DockerBackend",
    "bubblewrap": "rsi_bench.sandbox.bubblewrap:BubblewrapBackend",
    "local": "rsi_bench.sandbox.local:LocalBackend",
}


def get_backend(name: str) -> Backend:
    try:
        target = BACKENDS[name]
    except KeyError:
        known = ", ".join(BACKENDS)
        raise SandboxUnavailable(f"unknown sandbox {name!r}; known: {known}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)()  # type: ignore[no-any-return]


__all__ = [
    "BACKENDS", "LABEL", "SANDBOX_UID", "Backend", "ExecResult", "Limits", "Sandbox",
    "SandboxSpec", "Stream", "get_backend",
]
