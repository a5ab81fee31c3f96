"""The host side of agent calls: every ``solve`` / ``improve`` / ``check`` runs in a fresh sandbox.

A fresh container per call is what keeps tasks from seeing each other's files, and an improve
from inheriting anything but its parent's files. The container gets: the agent, read-only, at
/agent (a staged copy, so the host directory can change afterwards and the sandbox uid can read
it); the runner and the model client, read-only; and, for calls that may use a model, a broker
socket bound to (role, task id, generation), so the agent cannot pose as another task or spend
another role's budget. The agent's time is enforced by the host, which kills the container
once the job's wall clock, less the time its calls spent waiting on the broker and the model,
passes the timeout (``clock.py``); the runner enforces the hard wall (timeout plus the cap on
model time) and a per-process CPU limit inside.

What is mounted at /agent is exactly what the lineage records (``tree.py``: one walk for both).
An improve's workspace comes back as a tar stream checked header by header (``tarback.py``):
anything the lineage would not record, and anything over a cap, is refused and recorded before
its content is read; the host never lets a hostile archive write outside ``child_dir``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rsi_bench.agent_client as agent_client
from rsi_bench.agents.agent_runner import RESULT_TAG
from rsi_bench.agents.audit import Finding
from rsi_bench.agents.canary_watch import CANARY_DIR_IN, CanaryWatch
from rsi_bench.agents.clock import EXCLUDED_NAME, AgentDeadline, ExcludedFile, ModelClock
from rsi_bench.agents.job_events import SandboxEvent, from_reply, host_timeout, oom_killed
from rsi_bench.agents.manifest import AgentError, load_manifest
from rsi_bench.agents.tarback import Caps, fetch_workspace
from rsi_bench.agents.tree import copy_agent
from rsi_bench.broker import Broker, BrokerServer
from rsi_bench.infra import model_cause
from rsi_bench.models.base import CallContext, ModelError
from rsi_bench.sandbox import Limits, Sandbox, SandboxSpec, get_backend
from rsi_bench.sandbox.uids import UidLease
from rsi_bench.tasks.model import TaskView

RUNNER = Path(__file__).resolve().parent / "agent_runner.py"
CLIENT_DIR = Path(agent_client.__file__).resolve().parent
RUNNER_IN, CLIENT_IN = "/opt/rsi-bench/agent_runner.py", "/opt/rsi-bench/agent_client"
SERVER = RUNNER.with_name("agent_server.py")  # warm containers (see pool.py)
SERVER_IN = "/opt/rsi-bench/agent_server.py"
PROBE, PROBE_IN = RUNNER.with_name("probe.py"), "/opt/rsi-bench/probe.py"  # beside the runner
AGENT_IN, WORKSPACE, SOCKET_DIR_IN = "/agent", "/scratch/agent", "/run/rsi-bench"
WORKSPACE_SRC = "/workspace-src"
GRACE_S = 15.0  # host backstop on top of the runner's own deadline
MAX_TOTAL_BYTES = Caps().total_bytes
MAX_EVENTS = 60
DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class SolveOutcome:
    status: str  # ok | error | timeout | invalid
    solution: str | None
    detail: str
    duration_s: float
    model_calls: int
    events: tuple[Finding, ...] = ()  # what the sandbox saw the agent try (heuristic)
    output_tail: str = ""  # the agent's own prints, last 4 KiB
    model_s: float = 0.0  # time with a model call in flight (excluded from the limit)
    agent_s: float = 0.0  # the rest of the wall clock: what the limit measures
    infra: str = ""  # why the host saw a failure outside the agent (``rsi_bench.infra``)
    sandbox_events: tuple[SandboxEvent, ...] = ()  # seen by the host or the container's root


@dataclass(frozen=True)
class ImproveOutcome:
    status: str  # ok | error | timeout | invalid
    detail: str
    duration_s: float
    model_calls: int = 0
    events: tuple[Finding, ...] = ()  # sandbox events and refused workspace entries
    output_tail: str = ""
    model_s: float = 0.0
    agent_s: float = 0.0
    infra: str = ""
    sandbox_events: tuple[SandboxEvent, ...] = ()


@dataclass(frozen=True)
class CheckOutcome:
    status: str  # ok | invalid | error | timeout
    detail: str
    duration_s: float


class _CountingBroker:
    """Counts the calls that reached the host through this container's socket, times them
    (``clock``: what the job's deadline excludes) and keeps the first infra cause of a failed
    one (``rsi_bench.infra.model_cause``), as the host saw it."""

    def __init__(self, broker: Broker) -> None:
        self._broker, self.calls, self._lock = broker, 0, threading.Lock()
        self.clock = ModelClock()
        self.infra = ""

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:  # the server answers each connection in its own thread
            self.calls += 1
        with self.clock.call():
            try:
                return self._broker.complete(*args, **kwargs)
            except ModelError as exc:
                cause = model_cause(exc)
                if cause:
                    with self._lock:
                        self.infra = self.infra or cause
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)


def _stage_agent(agent_dir: Path, dest: Path) -> None:
    """Copy the agent, world-readable, for the read-only mount: the files the lineage records,
    nothing else (AgentError for an entry it could not record)."""
    copy_agent(agent_dir, dest)


@contextmanager
def _agent_box(agent_dir: Path, *, context: CallContext | None, broker: _CountingBroker | None,
               backend: str, limits: Limits, run_label: str,
               workspace_src: Path | None = None) -> Iterator[tuple[Sandbox, CanaryWatch]]:
    with ExitStack() as stack:
        stage = Path(tempfile.mkdtemp(prefix="rsi-bench-agent-"))
        stack.callback(shutil.rmtree, stage, True)
        os.chmod(stage, 0o755)
        _stage_agent(agent_dir, stage / "agent")
        canary = CanaryWatch(stage / "canary")
        stack.callback(canary.close)
        mounts = {str(stage / "agent"): AGENT_IN, str(RUNNER): RUNNER_IN,
                  str(PROBE): PROBE_IN, str(CLIENT_DIR): CLIENT_IN,
                  str(stage / "canary"): CANARY_DIR_IN}
        if workspace_src is not None:
            _stage_agent(workspace_src, stage / "workspace")
            mounts[str(stage / "workspace")] = WORKSPACE_SRC
        if broker is not None and context is not None:
            (stage / "run").mkdir(mode=0o755)
            server = BrokerServer(broker, stage / "run" / "broker.sock",  # type: ignore[arg-type]
                                  identity=context, mode=0o666)
            stack.enter_context(server)
            mounts[str(stage / "run")] = SOCKET_DIR_IN
        lease = stack.enter_context(UidLease("agent"))  # a uid no other live sandbox has
        spec = SandboxSpec(limits=replace(limits, output_bytes=max(
            limits.output_bytes, MAX_TOTAL_BYTES + (1 << 20))), run_label=run_label,
            mounts=mounts, uid=lease.uid)
        box = get_backend(backend).create(spec)
        stack.callback(box.close)
        canary.start()
        yield box, canary


def _watch(box: Sandbox, deadline: AgentDeadline, done: threading.Event,
           killed: threading.Event, seen: list[SandboxEvent]) -> None:
    """The host's backstop: kill the sandbox ``GRACE_S`` after the agent's deadline, which
    the runner inside enforces itself (the deadline moves while a model call is in flight, so
    it is read again on every turn). What docker says of the container first goes in ``seen``
    (under gVisor an OOM kill can end the sandbox without ending the exec)."""
    while not done.is_set():
        left = deadline.deadline() + GRACE_S - time.monotonic()
        if left <= 0:
            seen.extend(oom_killed(box, settle_s=0.0))
            killed.set()
            box.close()
            return
        done.wait(min(left, 1.0))


def _run_runner(box: Sandbox, mode: str, job: dict[str, Any],
                deadline: AgentDeadline) -> dict[str, Any]:
    """Run the runner once; return its reply, or a reply describing why there is none."""
    nonce = secrets.token_hex(16)
    wall = deadline.hard_wall
    sockets = next((Path(host) for host, inside in box.spec.mounts.items()
                    if inside == SOCKET_DIR_IN), None)
    payload = {**job, "nonce": nonce, "uid": box.spec.uid, "timeout": deadline.timeout,
               "wall": wall, "cpu_s": deadline.timeout,
               "memory_mb": box.spec.limits.job_memory_mb, "agent_dir": AGENT_IN,
               "excluded_file": f"{SOCKET_DIR_IN}/{EXCLUDED_NAME}" if sockets else "",
               "probe": getattr(box, "backend", "") != "local"}  # local: the host's counters
    done, killed, seen = threading.Event(), threading.Event(), []  # type: ignore[var-annotated]
    watcher = threading.Thread(target=_watch, args=(box, deadline, done, killed, seen),
                               daemon=True)
    deadline.start()
    watcher.start()
    stack = ExitStack()
    stack.enter_context(ExcludedFile(deadline, sockets))
    try:
        result = box.exec(["python3", "-I", "-S", RUNNER_IN, mode],
                          input=json.dumps(payload).encode(), timeout=wall + GRACE_S, user=0,
                          cwd="/")
    except Exception:
        if not killed.is_set():
            raise
        result = None  # the watcher removed the container under the exec
    finally:
        done.set()
        watcher.join()
        deadline.stop()
        stack.close()
    if killed.is_set():
        return {"status": "timeout", "detail": deadline.describe_timeout(), "host_events": seen}
    assert result is not None
    if result.timed_out:
        return {"status": "timeout", "detail": f"no result within {wall + GRACE_S:g} s; "
                "the container was killed"}
    prefix = f"{RESULT_TAG} {nonce} ".encode()
    for line in result.stdout.splitlines():
        if line.startswith(prefix):
            reply = json.loads(line[len(prefix):])
            if isinstance(reply, dict):
                return reply
    tail = result.stderr.decode("utf-8", "replace")[-500:]
    return {"status": "error", "detail": f"the agent runner gave no result (exit code "
            f"{result.exit_code}): {tail}", "host_events": oom_killed(box, settle_s=1.0)}


def _events(reply: Mapping[str, Any]) -> tuple[Finding, ...]:
    """Sandbox events, sanitised: they came from a process the agent shared."""
    raw = reply.get("events")
    out = []
    for event in raw[:MAX_EVENTS] if isinstance(raw, list) else []:
        if isinstance(event, dict):
            out.append(Finding(*(str(event.get(k, ""))[:300] for k in ("kind", "path",
                                                                         "detail"))))
    return tuple(out)


def _task_json(view: TaskView) -> dict[str, Any]:
    return {"id": view.id, "prompt": view.prompt, "entry_point": view.entry_point,
            "examples": [{"call": e.call, "result": e.result} for e in view.examples],
            "kind": view.kind, **({"files": dict(view.files)} if view.files else {})}


def run_solve(agent_dir: str | Path, task_view: TaskView, *, broker: Broker, generation: int,
              sample: int = 0, backend: str = "docker", limits: Limits = DEFAULT_LIMITS,
              timeout: float = 180.0, run_label: str = "agent",
              model_cap: float | None = None) -> SolveOutcome:
    """Run the agent's ``solve`` on one task in a fresh sandbox. ``timeout`` is the agent's
    own time; up to ``model_cap`` seconds of model time are excluded (``clock.py``)."""
    start = time.monotonic()
    counter = _CountingBroker(broker)
    deadline = AgentDeadline(timeout, model_cap, counter.clock)
    context = CallContext("solve", task_view.id, generation, sample)
    try:
        manifest = load_manifest(agent_dir)
        with _agent_box(Path(agent_dir), context=context, broker=counter, backend=backend,
                        limits=limits, run_label=run_label) as (box, canary):
            reply = _run_runner(box, "solve", {"entry": manifest.entry,
                                               "task": _task_json(task_view)}, deadline)
            seen = canary.events()
    except AgentError as exc:
        return SolveOutcome("invalid", None, str(exc), 0.0, 0)
    return solve_outcome(reply, start, counter, deadline, seen)


def job_events(reply: Mapping[str, Any], host: tuple[SandboxEvent, ...] = ()
               ) -> tuple[SandboxEvent, ...]:
    """A job's sandbox events: the host's, the root runner's, and the host backstop's timeout
    (a reply the host made itself, with nothing from the container)."""
    made_by_host = reply.get("status") == "timeout" and "sandbox_events" not in reply
    return host + ((host_timeout(str(reply.get("detail", ""))),) if made_by_host else ()) \
        + from_reply(reply)


def solve_outcome(reply: Mapping[str, Any], start: float, counter: _CountingBroker,
                  deadline: AgentDeadline, host: tuple[SandboxEvent, ...] = ()
                  ) -> SolveOutcome:
    """A solve's outcome from the runner's reply (a reply that claims ok without a string
    solution is an error)."""
    status = str(reply.get("status"))
    solution = reply.get("solution") if status == "ok" else None
    if status == "ok" and not isinstance(solution, str):
        status, solution = "error", None
    return SolveOutcome(status, solution, str(reply.get("detail", "")),
                        time.monotonic() - start, counter.calls, _events(reply),
                        str(reply.get("output_tail", "")), deadline.model_s(),
                        deadline.agent_s(), counter.infra, job_events(reply, host))


def run_check(agent_dir: str | Path, *, backend: str = "docker", limits: Limits = DEFAULT_LIMITS,
              timeout: float = 60.0, run_label: str = "agent") -> CheckOutcome:
    """Import the entry module in a sandbox (no model) and check solve/improve are callable."""
    start = time.monotonic()
    try:
        manifest = load_manifest(agent_dir)
        with _agent_box(Path(agent_dir), context=None, broker=None, backend=backend,
                        limits=limits, run_label=run_label) as (box, _):
            reply = _run_runner(box, "check", {"entry": manifest.entry},
                                AgentDeadline(timeout, 0.0, ModelClock()))
    except AgentError as exc:
        return CheckOutcome("invalid", str(exc), 0.0)
    return CheckOutcome(str(reply.get("status")), str(reply.get("detail", "")),
                        time.monotonic() - start)


def _fetch_workspace(box: Sandbox, child: Path) -> list[Finding]:
    """Unpack the improve's workspace into ``child``; the entries refused."""
    return fetch_workspace(box, WORKSPACE, child)


def _fetch_after_failure(box: Sandbox, child: Path) -> list[Finding]:
    """What a failed improve left, for a reader of its diff; nothing when its sandbox died with
    it (gVisor's sandbox dies whole on an OOM kill, and docker then refuses every exec). The
    improve's own failure stands either way: the child is never used."""
    try:
        return _fetch_workspace(box, child)
    except Exception:  # the sandbox is gone; the job's outcome is the reply's
        return []


def run_improve(parent_dir: str | Path, child_dir: str | Path,
                feedback: Sequence[Mapping[str, Any]], *, broker: Broker, generation: int,
                backend: str = "docker", limits: Limits = DEFAULT_LIMITS, timeout: float = 600.0,
                run_label: str = "agent", improver_dir: str | Path | None = None,
                model_cap: float | None = None) -> ImproveOutcome:
    """Run the parent's ``improve`` on a copy of itself; write the result into ``child_dir``.

    ``child_dir`` must not exist or be empty. It receives every workspace entry that passes the
    checks, whatever the status; use it as the next generation only when the status is ``ok``.
    ``feedback`` must hold dev-split results only: it is shown to the agent as given.
    ``improver_dir``: whose ``improve`` runs, when it is not the parent's own (the ``fixed``
    improver: a meta-improver that is never rewritten edits a copy of the parent).
    ``timeout`` is the agent's own time; up to ``model_cap`` seconds of model time are
    excluded from it (``clock.py``).
    """
    start, child = time.monotonic(), Path(child_dir)
    if child.exists() and any(child.iterdir()):
        raise AgentError(f"{child}: the child directory must be new or empty")
    child.mkdir(parents=True, exist_ok=True)
    improver = Path(improver_dir) if improver_dir is not None else Path(parent_dir)
    plain = [{"task_id": str(f.get("task_id", "")), "status": str(f.get("status", "")),
              "detail": str(f.get("detail", ""))} for f in feedback]
    counter = _CountingBroker(broker)
    deadline = AgentDeadline(timeout, model_cap, counter.clock)
    separate = improver.resolve() != Path(parent_dir).resolve()
    refused: list[Finding] = []
    try:
        load_manifest(parent_dir)
        manifest = load_manifest(improver)
        with _agent_box(improver, context=CallContext("improve", None, generation),
                        broker=counter, backend=backend, limits=limits, run_label=run_label,
                        workspace_src=Path(parent_dir) if separate else None
                        ) as (box, canary):
            job = {"entry": manifest.entry, "workspace": WORKSPACE, "feedback": plain}
            if separate:
                job["workspace_src"] = WORKSPACE_SRC
            reply = _run_runner(box, "improve", job, deadline)
            if reply.get("status") == "ok":
                refused = _fetch_workspace(box, child)
            elif reply.get("status") != "timeout":
                refused = _fetch_after_failure(box, child)
            seen = canary.events()
    except AgentError as exc:
        return ImproveOutcome("invalid", str(exc), 0.0)
    status, detail = str(reply.get("status")), str(reply.get("detail", ""))
    if status == "ok" and refused:
        status, detail = "invalid", "; ".join(f"{f.path}: {f.detail}" for f in refused[:5])
    elif status == "ok" and not (child / "agent.toml").is_file():
        status, detail = "invalid", "improve left no agent.toml in its workspace"
    return ImproveOutcome(status, detail, time.monotonic() - start, counter.calls,
                          _events(reply) + tuple(refused), str(reply.get("output_tail", "")),
                          deadline.model_s(), deadline.agent_s(), counter.infra,
                          job_events(reply, seen))
