"""Sandboxes: one protocol, backends chosen by a short name through a lazy map.

The map holds dotted paths, not classes, so choosing ``local`` never imports the docker SDK.
A docker name may carry the container runtime after a colon: ``docker:runsc`` runs every
container under gVisor; plain ``docker`` is dockerd's default runtime (runc).
"""

from __future__ import annotations

import importlib
import re

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


DEFAULT_RUNTIME = "runc"  # what plain ``docker`` means; never written into a backend name


def parse_backend(name: str) -> tuple[str, str]:
    """``"docker:runsc"`` -> ``("docker", "runsc")``; ``"docker"`` -> ``("docker", "")``."""
    kind, _, runtime = name.partition(":")
    if kind not in BACKENDS:
        known = ", ".join([*BACKENDS, "docker:runsc"])
        raise SandboxUnavailable(f"unknown sandbox {name!r}; known: {known}")
    if runtime and kind != "docker":
        raise SandboxUnavailable(f"sandbox {name!r}: only docker has container runtimes")
    if ":" in name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", runtime):
        raise SandboxUnavailable(f"sandbox {name!r}: {runtime!r} is not a runtime name")
    return kind, "" if runtime == DEFAULT_RUNTIME else runtime


def with_runtime(sandbox: str, runtime: str | None) -> str:
    """The backend name for ``--sandbox`` plus ``--runtime``: ``docker`` + ``runsc`` ->
    ``docker:runsc``. No runtime (or ``runc``) leaves docker on its default runtime."""
    kind, own = parse_backend(sandbox)
    runtime = "" if runtime in (None, "", DEFAULT_RUNTIME) else runtime
    if runtime and kind != "docker":
        raise SandboxUnavailable(f"--runtime {runtime} needs the docker sandbox, not {kind}")
    if own and runtime and own != runtime:
        raise SandboxUnavailable(f"sandbox {sandbox!r} conflicts with runtime {runtime!r}")
    runtime = runtime or own
    parse_backend(f"{kind}:{runtime}" if runtime else kind)  # the same checks on the result
    return f"{kind}:{runtime}" if runtime else kind


def backend_kind(name: str) -> str:
    """``docker`` for every docker name, whatever its runtime."""
    return parse_backend(name)[0]


def get_backend(name: str) -> Backend:
    kind, runtime = parse_backend(name)
    module, _, cls = BACKENDS[kind].partition(":")
    backend_cls = getattr(importlib.import_module(module), cls)
    return backend_cls(runtime) if runtime else backend_cls()  # type: ignore[no-any-return]


__all__ = [
    "BACKENDS", "LABEL", "SANDBOX_UID", "Backend", "ExecResult", "Limits", "Sandbox",
    "SandboxSpec", "Stream", "backend_kind", "get_backend", "parse_backend", "with_runtime",
]
