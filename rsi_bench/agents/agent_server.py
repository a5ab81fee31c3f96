"""Serves a warm agent container: many solves of one agent, one after another. Standard library
only; never imports rsi_bench.

    python3 -I -S /opt/rsi-bench/agent_server.py [--connect SOCKET] [--clean DIR ...]   (as root)

For each job line it starts the one-call runner (``agent_runner.py solve``, beside this file)
as a new interpreter, so no solve inherits another's memory; then, with every agent process dead,
it wipes the writable roots (``fresh.py``, beside this file: contents, and the owner, mode,
times and extended attributes of each root) and answers with one reply line. A container where a
job left something a wipe cannot remove (a surviving process, System V IPC objects, an abstract
socket, a root that differs from its record) is reported dirty, and the host replaces it before
the next job. Tasks therefore never see each other's files, processes or memory, as with a fresh
container per call, at a fraction of the cost.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
from typing import Any

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent_runner.py")


def _load(name: str) -> Any:
    """A module beside this file, by path (isolated mode puts no directory on sys.path)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load("agent_runner")
SERVE_GRACE_S = 10.0  # on top of a job's timeout, for the one-call runner's own cleanup


def _serve_one(job: dict, uid: int) -> dict:  # type: ignore[type-arg]
    """Run one solve job through a fresh one-call runner; return its reply."""
    nonce = secrets.token_hex(16)
    timeout = float(job["timeout"])
    wall = float(job.get("wall") or timeout)  # the agent's time, model waits included
    proc = subprocess.Popen([sys.executable, "-I", "-S", RUNNER, "solve"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/", close_fds=True)
    try:
        out, err = proc.communicate(json.dumps({**job, "nonce": nonce}).encode(),
                                    timeout=wall + SERVE_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        runner._kill_uid(uid)
        return {"status": "timeout", "detail": f"no result within {timeout:g} s; every process "
                "of the agent was killed"}
    prefix = f"{runner.RESULT_TAG} {nonce} ".encode()
    for line in out.splitlines():
        if line.startswith(prefix):
            reply = json.loads(line[len(prefix):])
            if isinstance(reply, dict):
                return reply
    return {"status": "error", "detail": f"the agent runner gave no result (exit code "
            f"{proc.returncode}): {err.decode('utf-8', 'replace')[-500:]}"}


def main(argv: list[str]) -> int:
    """Answer solve jobs (one JSON line each) with one reply line each, until end of input."""
    connect, clean = None, []
    args = iter(argv)
    for arg in args:
        if arg == "--connect":
            connect = next(args)
        elif arg == "--clean":
            clean.append(next(args))
        else:
            sys.stderr.write(f"serve: unknown argument {arg!r}\n")
            return 2
    if connect:
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        channel.connect(connect)
        reader: Any = channel.makefile("rb")
        writer: Any = channel.makefile("wb")
    else:
        reader = sys.stdin.buffer
        writer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt it
    fresh = _load("fresh").Fresh(clean)  # before any job: the record of a fresh container
    writer.write(json.dumps({"op": "hello"}).encode() + b"\n")
    writer.flush()
    for line in reader:
        try:
            job = json.loads(line)
            uid = int(job["uid"])
            reply = _serve_one(job, uid)
        except Exception as exc:  # noqa: BLE001 - a runner fault is reported, never a result
            reply, uid = {"status": "error", "detail": f"agent runner: {exc!r}"[:500]}, -1
        fresh.wipe()
        reply["dirty"] = "; ".join(fresh.leftovers(uid)) if uid >= 0 else "bad job"
        writer.write(json.dumps(reply).encode() + b"\n")
        writer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
