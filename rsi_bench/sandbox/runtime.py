"""Container runtimes for the docker backend: gVisor (``runsc``) found, registered, checked.

gVisor puts a user-space kernel between untrusted code and the host kernel. dockerd learns of a
runtime from the ``runtimes`` table of its daemon.json and re-reads that table on SIGHUP, so
registering one needs no restart. Our containers need two runsc flags: ``--network=none`` (no
network stack inside the sandbox at all) and ``--host-uds=open`` (the runner connects to the
host's socket in its bind mount; without it runsc refuses host unix sockets).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsi_bench.errors import SandboxUnavailable

DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKER_PIDFILE = Path("/var/run/docker.pid")
RUNSC_ARGS = ("--network=none", "--host-uds=open")
INSTALL_HINT = ("install gVisor: `apt-get install runsc` (Debian 12+, Ubuntu 23.04+) or see "
                "https://gvisor.dev/docs/user_guide/install/")


def registered(client: Any) -> dict[str, dict[str, Any]]:
    """The runtimes the running dockerd knows: name -> {"path": ..., "runtimeArgs": [...]}."""
    return dict(client.info().get("Runtimes") or {})


def _is_gvisor(entry: dict[str, Any], name: str) -> bool:
    return name == "runsc" or os.path.basename(str(entry.get("path", ""))) == "runsc"


def missing_args(entry: dict[str, Any], name: str) -> list[str]:
    """The runsc flags our containers need that a registered entry lacks."""
    if not _is_gvisor(entry, name):
        return []
    args = [str(a) for a in entry.get("runtimeArgs") or []]
    uds = [a.split("=", 1)[1] for a in args if a.startswith("--host-uds=")]
    wanted = []
    if not any(u in ("open", "all") for u in uds):
        wanted.append("--host-uds=open")
    if "--network=none" not in args:
        wanted.append("--network=none")
    return wanted


def check_registered(client: Any, runtime: str) -> None:
    """Raise SandboxUnavailable, saying what to do, unless dockerd runs ``runtime`` as we need."""
    entry = registered(client).get(runtime)
    if entry is None:
        raise SandboxUnavailable(
            f"docker runtime {runtime!r} is not registered with dockerd; run "
            f"`rsi-bench sandbox setup --runtime {runtime}` (as root) to register it")
    lacking = missing_args(entry, runtime)
    if lacking:
        raise SandboxUnavailable(
            f"docker runtime {runtime!r} is registered without {' '.join(lacking)} (the judge "
            f"runner cannot reach its socket otherwise); run `rsi-bench sandbox setup --runtime "
            f"{runtime}` to fix its daemon.json entry")


def find_binary(runtime: str) -> str | None:
    found = shutil.which(runtime)
    if found:
        return found
    for folder in ("/usr/bin", "/usr/local/bin", "/usr/sbin"):
        if os.access(f"{folder}/{runtime}", os.X_OK):
            return f"{folder}/{runtime}"
    return None


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.splitlines()[0].strip() if out.returncode == 0 and out.stdout else ""


def platform(binary: str, args: list[str]) -> str:
    """Which gVisor platform (how it intercepts syscalls) the registered entry uses."""
    for arg in args:
        if arg.startswith("--platform="):
            return arg.split("=", 1)[1]
    out = subprocess.run([binary, "flags"], capture_output=True, text=True, timeout=30)
    match = re.search(r"-platform string\s.*?\(default \"(\w+)\"\)", out.stdout + out.stderr,
                      re.S)
    return f"{match.group(1)} (runsc's default)" if match else "runsc's default"


@dataclass
class Registration:
    """What ``register`` did (``done``) and what is left to a person (``todo``, exact steps)."""

    done: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.todo


def desired_entry(binary: str, existing: Any = None) -> dict[str, Any]:
    """Our runsc entry; an existing one keeps its path and flags (a chosen ``--platform``...)
    and gains only the flags it lacks."""
    if not isinstance(existing, dict) or not existing.get("path"):
        return {"path": binary, "runtimeArgs": list(RUNSC_ARGS)}
    args = [str(a) for a in existing.get("runtimeArgs") or []]
    args = [a for a in args if not a.startswith("--host-uds=") or a.endswith(("=open", "=all"))]
    return {**existing, "runtimeArgs": args + missing_args({**existing, "runtimeArgs": args},
                                                          "runsc")}


def register(runtime: str, *, daemon_json: Path = DAEMON_JSON, pidfile: Path = DOCKER_PIDFILE,
             client: Any = None, is_root: bool | None = None,
             log: Callable[[str], None] = lambda _: None) -> Registration:
    """Register ``runtime`` (only ``runsc`` is known) with dockerd, as far as this process can.

    Merges the entry into ``daemon_json`` (other keys and runtimes kept; the old file backed up),
    then sends SIGHUP to the dockerd of ``pidfile`` and waits until ``client`` (that dockerd)
    lists the runtime. Where a step is impossible here, ``todo`` says exactly what to do.
    """
    result = Registration()
    if runtime != "runsc":
        result.todo.append(f"rsi-bench knows how to register runsc only; register {runtime!r} "
                           "in dockerd's daemon.json yourself")
        return result
    binary = find_binary(runtime)
    if binary is None:
        result.todo.append(f"no runsc binary on this machine: {INSTALL_HINT}; then run this "
                           "command again")
        return result
    result.done.append(f"found {binary} ({version(binary) or 'version unknown'})")
    if client is not None:
        entry = registered(client).get(runtime)
        if entry is not None and not missing_args(entry, runtime):
            result.done.append(f"dockerd already runs {runtime} with {' '.join(RUNSC_ARGS)}")
            return result
    if not _write_daemon_json(daemon_json, runtime, binary, result,
                              os.geteuid() == 0 if is_root is None else is_root):
        return result
    if client is not None:
        _reload(client, runtime, pidfile, daemon_json, result, log)
    return result


def _write_daemon_json(path: Path, runtime: str, binary: str, result: Registration,
                       is_root: bool) -> bool:
    snippet = json.dumps({"runtimes": {runtime: desired_entry(binary)}})
    try:
        current = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError) as exc:
        result.todo.append(f"{path} is not readable JSON ({exc}); fix it, then merge {snippet} "
                           "into it and restart dockerd")
        return False
    if not isinstance(current, dict) or not isinstance(current.get("runtimes", {}), dict):
        result.todo.append(f"{path} has no JSON object with a runtimes table; merge {snippet} "
                           "into it by hand and restart dockerd")
        return False
    entry = desired_entry(binary, current.get("runtimes", {}).get(runtime))
    snippet = json.dumps({"runtimes": {runtime: entry}})
    if current.get("runtimes", {}).get(runtime) == entry:
        result.done.append(f"{path} already registers {runtime}")
        return True
    writable = os.access(path if path.exists() else path.parent, os.W_OK)
    if not (is_root and writable):
        why = "not root" if not is_root else f"{path} is not writable"
        result.todo.append(f"cannot edit {path} ({why}): as root, merge {snippet} into it, then "
                           "`kill -HUP $(cat /var/run/docker.pid)` (or restart dockerd)")
        return False
    merged = {**current, "runtimes": {**current.get("runtimes", {}), runtime: entry}}
    if path.exists():
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
        result.done.append(f"backed up {path} to {backup}")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, path)  # atomic: dockerd never reads half a file
    result.done.append(f"registered {runtime} in {path}")
    return True


def _reload(client: Any, runtime: str, pidfile: Path, daemon_json: Path, result: Registration,
            log: Callable[[str], None]) -> None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        result.todo.append(f"could not signal dockerd through {pidfile} ({exc}): send it SIGHUP "
                           "(`kill -HUP <dockerd pid>`) or restart it to load the runtime")
        return
    log(f"sent SIGHUP to dockerd (pid {pid}) to reload its runtimes")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        entry = registered(client).get(runtime)
        if entry is not None and not missing_args(entry, runtime):
            result.done.append(f"dockerd reloaded: {runtime} is available")
            return
        time.sleep(0.5)
    result.todo.append(f"dockerd (pid {pid}) did not load {runtime} after SIGHUP; it may read "
                       f"another config file than {daemon_json} (see its --config-file): "
                       "restart it with this daemon.json")
