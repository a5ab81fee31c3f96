"""Sandbox administration behind `rsi-bench sandbox doctor` and `sandbox cleanup`."""

from __future__ import annotations

from dataclasses import dataclass

from rsi_bench.errors import RsiBenchError
from rsi_bench.sandbox import BACKENDS, LABEL, SandboxSpec, get_backend


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def doctor() -> list[Check]:
    """Try every backend for real: create a sandbox, run python3 in it, check its isolation."""
    checks = []
    for name in BACKENDS:
        try:
            backend = get_backend(name)
            backend.check()
            sandbox = backend.create(SandboxSpec(run_label="doctor"))
            try:
                result = sandbox.exec(
                    ["python3", "-S", "-c", "import os, socket; print(os.getuid());"
                     "socket.create_connection(('1.1.1.1', 53), timeout=2)"],
                    timeout=30,
                )
            finally:
                sandbox.close()
            isolated = b"Network is unreachable" in result.stderr or b"OSError" in result.stderr
            info = sandbox.describe()
            detail = f"python3 runs as uid {result.stdout.decode().strip()}"
            if name == "local":
                detail += "; NO isolation (debugging only)"
            elif not isolated:
                checks.append(Check(name, False, "the sandbox reached the network"))
                continue
            else:
                detail += "; no network"
            if info.get("image_id"):
                detail += f"; image {info['image']} {info['image_id'][:19]}"
            checks.append(Check(name, True, detail))
        except RsiBenchError as exc:
            checks.append(Check(name, False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
    return checks


def cleanup(run_label: str | None = None) -> list[str]:
    """Remove containers that carry our label (optionally one run's); return their names."""
    from rsi_bench.sandbox.docker_backend import _client

    client = _client()
    wanted = [f"{LABEL}.run={run_label}"] if run_label else [LABEL]
    removed = []
    for container in client.containers.list(all=True, filters={"label": wanted}):
        if container.labels.get(LABEL) != "1":
            continue  # belt and braces: never touch what is not ours
        container.remove(force=True)
        removed.append(container.name)
    return removed
