"""Sandbox administration behind `rsi-bench sandbox doctor` and `sandbox cleanup`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rsi_bench.errors import RsiBenchError
from rsi_bench.sandbox import BACKENDS, LABEL, SandboxSpec, get_backend, parse_backend

RUNTIMES = ("runsc",)  # docker runtimes the doctor checks beside dockerd's default


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def doctor() -> list[Check]:
    """Try every backend for real: create a sandbox, run python3 in it, check its isolation.
    A docker runtime is also checked for its binary, its registration and its kernel."""
    checks = []
    for name in [*BACKENDS, *(f"docker:{r}" for r in RUNTIMES)]:
        try:
            checks.append(_check(name))
        except RsiBenchError as exc:
            checks.append(Check(name, False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
    return checks


def _check(name: str) -> Check:
    runtime = parse_backend(name)[1]
    found = _runtime_found(runtime) if runtime else ""
    backend = get_backend(name)
    backend.check()
    sandbox = backend.create(SandboxSpec(run_label="doctor"))
    try:
        result = sandbox.exec(
            ["python3", "-S", "-c", "import os, socket; print(os.getuid());"
             "socket.create_connection(('1.1.1.1', 53), timeout=2)"],
            timeout=30,
        )
        kernel = sandbox.exec(["dmesg"], timeout=30).stdout if runtime == "runsc" else b""
    finally:
        sandbox.close()
    isolated = b"Network is unreachable" in result.stderr or b"OSError" in result.stderr
    info = sandbox.describe()
    detail = f"python3 runs as uid {result.stdout.decode().strip()}"
    if name == "local":
        detail += "; NO isolation (debugging only)"
    elif not isolated and result.exit_code == 0:
        return Check(name, False, "the sandbox reached the network")
    elif not isolated:  # the probe itself failed: say how, not that the network was reached
        tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return Check(name, False, f"the network probe failed to run (exit {result.exit_code}): "
                                  f"{tail[0][:200]}")
    else:
        detail += "; no network"
    if info.get("image_id"):
        detail += f"; image {info['image']} {info['image_id'][:19]}"
    if not runtime:
        return Check(name, True, detail)
    ok, more = _runtime_detail(backend, runtime, info, kernel)
    return Check(name, ok, f"{found}; {more}; {detail}")


def _runtime_found(runtime: str) -> str:
    from rsi_bench.errors import SandboxUnavailable
    from rsi_bench.sandbox.runtime import INSTALL_HINT, find_binary, version

    binary = find_binary(runtime)
    if binary is None:
        raise SandboxUnavailable(f"no {runtime} binary here: {INSTALL_HINT}, then "
                                 f"`rsi-bench sandbox setup --runtime {runtime}`")
    return f"{binary} ({version(binary) or 'version unknown'})"


def _runtime_detail(backend: Any, runtime: str, info: dict[str, str],
                    kernel: bytes) -> tuple[bool, str]:
    """Registered how, on which platform, and did the container really run under it."""
    from rsi_bench.sandbox.runtime import platform, registered

    entry = registered(backend.client).get(runtime, {})
    args = [str(a) for a in entry.get("runtimeArgs") or []]
    detail = f"registered as {entry.get('path')} {' '.join(args)}".rstrip()
    detail += f"; platform {platform(str(entry.get('path') or runtime), args)}"
    if info.get("runtime") != runtime:
        return False, f"{detail}; but the container ran under {info.get('runtime')!r}"
    if runtime == "runsc" and b"gVisor" not in kernel:
        return False, f"{detail}; but the container's kernel log does not say gVisor"
    return True, f"{detail}; a container started under it (its kernel log: gVisor)"


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
