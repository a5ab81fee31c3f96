"""Serves a warm agent container: many solves of one agent, one after another. Standard library
only; never imports rsi_bench.

    python3 -I -S /opt/rsi-bench/agent_server.py [--connect SOCKET] [--clean DIR ...]   (as root)

For each job line it starts the one-call runner (``agent_runner.py solve``, beside this file)
as a new interpreter, so no solve inherits another's memory; then, with every agent process dead,
it empties the scratch directories and answers with one reply line. A container where a job left
something that emptying cannot remove (a surviving process, System V IPC objects, POSIX message
queues) is reported dirty, and the host replaces it before the next job. Tasks therefore never
see each other's files, processes or memory, as with a fresh container per call, at a fraction of
the cost.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from typing import Any

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent_runner.py")


def _load_runner() -> Any:
    """The one-call runner, by path (isolated mode puts no directory on sys.path)."""
    spec = importlib.util.spec_from_file_location("agent_runner", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
SERVE_GRACE_S = 10.0  # on top of a job's timeout, for the one-call runner's own cleanup
IPC_TABLES = ("/proc/sysvipc/shm", "/proc/sysvipc/msg", "/proc/sysvipc/sem")


def _serve_one(job: dict, uid: int) -> dict:  # type: ignore[type-arg]
    """Run one solve job through a fresh one-call runner; return its reply."""
    nonce = secrets.token_hex(16)
    timeout = float(job["timeout"])
    proc = subprocess.Popen([sys.executable, "-I", "-S", RUNNER, "solve"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd="/", close_fds=True)
    try:
        out, err = proc.communicate(json.dumps({**job, "nonce": nonce}).encode(),
                                    timeout=timeout + SERVE_GRACE_S)
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


def _empty(top: str) -> None:
    """Remove everything under ``top`` (never following a symlink), keeping ``top`` itself."""
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _leftovers(uid: int, clean: list[str]) -> str:
    """What a finished job left that the next one could see; empty when nothing."""
    found = []
    survivors = [n for n in os.listdir("/proc") if n.isdigit() and _owned_live(n, uid)]
    if survivors:
        found.append(f"{len(survivors)} processes of uid {uid} survived")
    for table, rows in _sysv_ipc_objects().items():
        if rows > 0:
            found.append(f"{rows} System V IPC objects in {table}")
    try:
        if os.listdir("/dev/mqueue"):
            found.append("POSIX message queues in /dev/mqueue")
    except OSError:
        pass
    for top in clean:
        try:
            if os.listdir(top):
                found.append(f"{top} could not be emptied")
        except OSError:
            pass
    return "; ".join(found)


# Under gVisor there is no /proc/sysvipc; the kernel's own counters answer instead:
# shmctl(SHM_INFO).used_ids, msgctl(MSG_INFO).msgpool (queues in use), semctl(SEM_INFO).semusz.
IPC_INFO_CALLS = {"/proc/sysvipc/shm": ("shmctl", 14, 0), "/proc/sysvipc/msg": ("msgctl", 12, 0),
                  "/proc/sysvipc/sem": ("semctl", 19, 7)}


def _sysv_ipc_objects() -> dict[str, int]:
    """System V IPC objects that exist, per kind; a kind that cannot be counted counts as one
    (the container is then replaced rather than trusted)."""
    counts = {}
    for table in IPC_TABLES:
        try:
            with open(table) as f:
                counts[table] = len(f.read().splitlines()) - 1
            continue
        except OSError:
            pass
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            name, command, field = IPC_INFO_CALLS[table]
            buf = (ctypes.c_int * 64)()
            args = (0, command, buf) if name != "semctl" else (0, 0, command, buf)
            counts[table] = buf[field] if getattr(libc, name)(*args) >= 0 else 1
        except (OSError, AttributeError):
            counts[table] = 1
    return counts


def _owned_live(pid: str, uid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == uid and not runner._zombie(pid)
    except OSError:
        return False


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
    writer.write(json.dumps({"op": "hello"}).encode() + b"\n")
    writer.flush()
    for line in reader:
        try:
            job = json.loads(line)
            uid = int(job["uid"])
            reply = _serve_one(job, uid)
        except Exception as exc:  # noqa: BLE001 - a runner fault is reported, never a result
            reply, uid = {"status": "error", "detail": f"agent runner: {exc!r}"[:500]}, -1
        for top in clean:
            _empty(top)
        reply["dirty"] = _leftovers(uid, clean) if uid >= 0 else "bad job"
        writer.write(json.dumps(reply).encode() + b"\n")
        writer.flush()
    return 0




if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
