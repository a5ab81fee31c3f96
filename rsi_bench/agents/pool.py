"""Warm agent containers for one generation's solves.

``run_solve`` gives every call a new container, which costs far more than the judge's whole
verdict. A ``SolvePool`` instead keeps up to ``workers`` containers of one agent (staged once,
read-only at /agent) and runs the agent server (``agent_server.py``) in each: every solve is a new
interpreter as the sandbox uid; after it, every process of that uid is killed and the scratch
directories are emptied before the next solve starts. A container where a solve left something
behind that emptying cannot remove is replaced (the runner says so in its reply), as is one that
misses the host's deadline. What a task may see is therefore what a fresh container shows it.

The deadline is the agent's own time (``clock.py``): it moves while a call of the solve is in
flight on its broker socket, up to the cap on model time; the runner inside is given the hard
wall (timeout plus cap) as its own limit.

The broker socket of a solve exists only while that solve runs: the host binds it, to that
solve's (role, task, generation, sample) identity, in the worker's own socket directory, and
removes it when the reply arrives.

Every solve's sandbox events (``job_events.py``) come from the root runner's reply, the root
wiper's leftovers and the host's own watch of the worker's planted canary file.

Only backends with a pid namespace (docker, bubblewrap) can kill every process of the uid
without touching the host; on ``local`` the pool falls back to ``run_solve``.
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rsi_bench.agents.canary_watch import CANARY_DIR_IN, CanaryWatch
from rsi_bench.agents.clock import EXCLUDED_NAME, AgentDeadline, ExcludedFile
from rsi_bench.agents.container import (
    CLIENT_DIR,
    CLIENT_IN,
    DEFAULT_LIMITS,
    GRACE_S,
    MAX_TOTAL_BYTES,
    PROBE,
    PROBE_IN,
    RUNNER,
    RUNNER_IN,
    SERVER,
    SERVER_IN,
    SOCKET_DIR_IN,
    SolveOutcome,
    _CountingBroker,
    _stage_agent,
    _task_json,
    run_solve,
    solve_outcome,
)
from rsi_bench.agents.job_events import oom_killed
from rsi_bench.agents.manifest import AgentError, load_manifest
from rsi_bench.broker import Broker, BrokerServer
from rsi_bench.infra import InfraFailure, lost_sandbox_cause
from rsi_bench.models.base import CallContext
from rsi_bench.sandbox import Limits, SandboxSpec, backend_kind
from rsi_bench.sandbox.channel import Attached, ChannelError
from rsi_bench.sandbox.uids import UidLease

AGENT_IN = "/agent"
FRESH = Path(__file__).resolve().parent.parent / "sandbox" / "fresh.py"
FRESH_IN = "/opt/rsi-bench/fresh.py"  # beside the agent server, which loads it
CHANNEL_IN = "/run/rsi-bench-runner"  # root-only: the runner's channel to the host
MAX_REPLY = 64 << 20
POOLED_BACKENDS = ("docker", "bubblewrap")


class _Closed(Exception):
    """The runner's channel ended or missed its deadline."""


def _read_line(fd: int, buffer: bytearray, deadline: Callable[[], float]) -> bytes:
    """One line from ``fd`` before ``deadline()``, which is read again on every turn (it
    moves while a model call is in flight)."""
    while (end := buffer.find(b"\n")) < 0:
        left = deadline() - time.monotonic()
        if left <= 0:
            raise _Closed("no reply before the deadline")
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise _Closed("the runner's channel closed")
            buffer.extend(chunk)
            if len(buffer) > MAX_REPLY:
                raise _Closed(f"a reply longer than {MAX_REPLY} bytes")
    line = bytes(buffer[:end])
    del buffer[: end + 1]
    return line


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Worker:
    """One warm container of the agent, with its own broker socket directory and a uid of its
    own (leased while the container lives)."""

    def __init__(self, backend: str, spec: SandboxSpec, socket_dir: Path) -> None:
        self.spec = spec
        self.attached = Attached(backend, spec, CHANNEL_IN)
        self.socket_dir = socket_dir
        # a canary file of the worker's own, so what inotify sees belongs to its solve
        self.canary = CanaryWatch(socket_dir.with_name(f"canary-{socket_dir.name}"))
        self.lease: UidLease | None = None
        self._buffer = bytearray()

    @property
    def uid(self) -> int:
        return self.attached.spec.uid

    def start(self) -> None:
        self.socket_dir.mkdir(mode=0o755, exist_ok=True)
        if self.lease is None:
            self.lease = UidLease("agent")
        self.attached.spec = replace(self.spec, uid=self.lease.uid)

        def command(sandbox: Any) -> list[str]:
            cmd = ["python3", "-I", "-S", SERVER_IN]
            for path in sandbox.scratch:
                cmd += ["--clean", path]
            return cmd

        try:
            self.attached.start(command, extra_mounts={str(self.socket_dir): SOCKET_DIR_IN,
                                                       str(self.canary.path.parent):
                                                       CANARY_DIR_IN})
            until = time.monotonic() + 60
            hello = json.loads(_read_line(self.attached.out_fd, self._buffer, lambda: until))
        except (ChannelError, _Closed, ValueError, OSError) as exc:
            tail = self.attached.stderr_tail()
            self.stop()
            raise ChannelError(f"the agent runner did not start in the sandbox ({exc}): "
                               f"{tail}") from exc
        if hello != {"op": "hello"}:
            self.stop()
            raise ChannelError(f"the agent runner sent an unexpected greeting: {hello!r}")

    def run(self, job: dict[str, Any], deadline: AgentDeadline) -> dict[str, Any]:
        """Send one job (the worker is started); return the runner's reply, or one that says
        why there is none. ``deadline`` is started here, as the job is handed over."""
        deadline.start()
        self.canary.start()
        try:
            _write_all(self.attached.in_fd, json.dumps(job).encode() + b"\n")
            # the runner enforces the deadline; this is the backstop, GRACE_S after it
            reply = json.loads(_read_line(self.attached.out_fd, self._buffer,
                                          lambda: deadline.deadline() + GRACE_S))
        except _Closed as exc:
            if "deadline" in str(exc):
                self.stop()
                return {"status": "timeout", "detail": deadline.describe_timeout()}
            return self._lost(str(exc))
        except (ValueError, OSError) as exc:
            return self._lost(repr(exc))
        if not isinstance(reply, dict):
            self.stop()
            return {"status": "error", "detail": "the agent runner sent a malformed reply"}
        if reply.get("dirty"):
            self.stop()  # a fresh container for the next solve
        return reply

    def _lost(self, why: str) -> dict[str, Any]:
        """The runner's channel broke: the agent's outcome, unless docker shows the container
        was stopped from outside (``rsi_bench.infra.lost_sandbox_cause``: then the host raises
        ``InfraFailure``; nothing from the container is read to decide it)."""
        cause = lost_sandbox_cause(self.attached.sandbox)
        seen = () if cause else oom_killed(self.attached.sandbox, settle_s=5.0)
        self.stop()
        if cause:
            raise InfraFailure(f"{cause}; the agent runner was lost ({why})")
        return {"status": "error", "detail": f"the agent runner was lost ({why})",
                "host_events": seen}

    def stop(self) -> None:
        self.attached.stop()
        self._buffer.clear()
        if self.lease is not None:
            self.lease.release()
            self.lease = None


class SolvePool:
    """``with SolvePool(agent_dir, ...) as pool: pool.solve(view, sample)`` from any number of
    threads; at most ``workers`` solves run at once."""

    def __init__(self, agent_dir: str | Path, *, broker: Broker, generation: int,
                 backend: str = "docker", limits: Limits = DEFAULT_LIMITS,
                 timeout: float = 180.0, run_label: str = "agent", workers: int = 1,
                 model_cap: float | None = None) -> None:
        """``timeout``: the agent's own time per solve; ``model_cap``: the most model time
        excluded from it (default ``clock.default_cap``)."""
        self.agent_dir, self.broker, self.generation = Path(agent_dir), broker, generation
        self.backend, self.limits, self.timeout = backend, limits, timeout
        self.model_cap = model_cap
        self.run_label = run_label
        self.pooled = backend_kind(backend) in POOLED_BACKENDS
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._stage = ""
        try:
            self.entry: str | None = load_manifest(agent_dir).entry
        except AgentError as exc:
            self.entry, self.invalid = None, str(exc)
        if not self.pooled or self.entry is None:
            return
        self._stage = tempfile.mkdtemp(prefix="rsi-bench-agent-")
        os.chmod(self._stage, 0o755)
        _stage_agent(self.agent_dir, Path(self._stage) / "agent")
        mounts = {str(Path(self._stage) / "agent"): AGENT_IN, str(RUNNER): RUNNER_IN,
                  str(SERVER): SERVER_IN, str(CLIENT_DIR): CLIENT_IN, str(FRESH): FRESH_IN,
                  str(PROBE): PROBE_IN}
        self.spec = SandboxSpec(limits=replace(limits, output_bytes=max(
            limits.output_bytes, MAX_TOTAL_BYTES + (1 << 20))), run_label=run_label,
            mounts=mounts)
        for i in range(workers):
            worker = _Worker(backend, self.spec, Path(self._stage) / f"run-{i}")
            self._workers.append(worker)
            self._idle.put(worker)

    def solve(self, task_view: Any, sample: int = 0) -> SolveOutcome:
        if self.entry is None:
            return SolveOutcome("invalid", None, self.invalid, 0.0, 0)
        if not self.pooled:
            return run_solve(self.agent_dir, task_view, broker=self.broker,
                             generation=self.generation, sample=sample, backend=self.backend,
                             limits=self.limits, timeout=self.timeout, run_label=self.run_label,
                             model_cap=self.model_cap)
        start = time.monotonic()
        worker = self._idle.get()
        try:
            if worker.attached.stream is None:
                worker.start()
            counter = _CountingBroker(self.broker)
            deadline = AgentDeadline(self.timeout, self.model_cap, counter.clock)
            context = CallContext("solve", task_view.id, self.generation, sample)
            job = {"entry": self.entry, "task": _task_json(task_view),
                   "uid": worker.uid, "timeout": self.timeout, "wall": deadline.hard_wall,
                   "cpu_s": self.timeout, "memory_mb": self.limits.job_memory_mb,
                   "agent_dir": AGENT_IN, "excluded_file": f"{SOCKET_DIR_IN}/{EXCLUDED_NAME}"}
            with BrokerServer(counter, worker.socket_dir / "broker.sock",  # type: ignore[arg-type]
                              identity=context, mode=0o666), \
                    ExcludedFile(deadline, worker.socket_dir):
                reply = worker.run(job, deadline)
                deadline.stop()
            seen = worker.canary.events()
        finally:
            self._idle.put(worker)
        return solve_outcome(reply, start, counter, deadline, seen)

    def close(self) -> None:
        with self._lock:
            for worker in self._workers:
                worker.stop()
                worker.canary.close()
            if self._stage:
                shutil.rmtree(self._stage, ignore_errors=True)
                self._stage = ""

    def __enter__(self) -> SolvePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
