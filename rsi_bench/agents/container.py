"""The host side of agent calls: every ``solve`` / ``improve`` / ``check`` runs in a fresh sandbox.

A fresh container per call is what keeps tasks from seeing each other's files, and an improve
from inheriting anything but its parent's files. The container gets: the agent, read-only, at
/agent (a staged copy, so the host directory can change afterwards and the sandbox uid can read
it); the runner and the model client, read-only; and, for calls that may use a model, a broker
socket bound to (role, task id, generation), so the agent cannot pose as another task or spend
another role's budget. The wall clock is enforced by the runner (it kills the agent's processes)
and, as a backstop, by the host (it kills the container).

An improve's workspace comes back as a tar stream that is checked entry by entry: symlinks,
links, devices, absolute or ``..`` paths, oversized files and too many files are refused and
recorded; the host never lets a hostile archive write outside ``child_dir``.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import rsi_bench.agent_client as agent_client
from rsi_bench.agents.agent_runner import RESULT_TAG
from rsi_bench.agents.audit import Finding
from rsi_bench.agents.manifest import AgentError, load_manifest
from rsi_bench.broker import Broker, BrokerServer
from rsi_bench.models.base import CallContext
from rsi_bench.sandbox import ExecResult, Limits, Sandbox, SandboxSpec, get_backend
from rsi_bench.sandbox.uids import UidLease
from rsi_bench.tasks.model import TaskView

RUNNER = Path(__file__).resolve().parent / "agent_runner.py"
CLIENT_DIR = Path(agent_client.__file__).resolve().parent
RUNNER_IN, CLIENT_IN = "/opt/rsi-bench/agent_runner.py", "/opt/rsi-bench/agent_client"
SERVER = RUNNER.with_name("agent_server.py")  # warm containers (see pool.py)
SERVER_IN = "/opt/rsi-bench/agent_server.py"
AGENT_IN, WORKSPACE, SOCKET_DIR_IN = "/agent", "/scratch/agent", "/run/rsi-bench"
WORKSPACE_SRC = "/workspace-src"
GRACE_S = 15.0  # host backstop on top of the runner's own deadline
MAX_FILES = 500
MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 16 << 20
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


@dataclass(frozen=True)
class ImproveOutcome:
    status: str  # ok | error | timeout | invalid
    detail: str
    duration_s: float
    model_calls: int = 0
    events: tuple[Finding, ...] = ()  # sandbox events and refused workspace entries
    output_tail: str = ""


@dataclass(frozen=True)
class CheckOutcome:
    status: str  # ok | invalid | error | timeout
    detail: str
    duration_s: float


class _CountingBroker:
    """Counts the calls that reached the host through this container's socket."""

    def __init__(self, broker: Broker) -> None:
        self._broker, self.calls, self._lock = broker, 0, threading.Lock()

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:  # the server answers each connection in its own thread
            self.calls += 1
        return self._broker.complete(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)


def _stage_agent(agent_dir: Path, dest: Path) -> None:
    """Copy the agent's regular files, world-readable, for the read-only mount."""
    dest.mkdir(mode=0o755)
    for path in sorted(agent_dir.rglob("*")):
        rel = path.relative_to(agent_dir)
        if path.is_symlink() or "__pycache__" in rel.parts:
            continue
        if path.is_dir():
            (dest / rel).mkdir(mode=0o755, exist_ok=True)
        elif path.is_file():
            (dest / rel).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            shutil.copyfile(path, dest / rel)
            os.chmod(dest / rel, 0o644)


@contextmanager
def _agent_box(agent_dir: Path, *, context: CallContext | None, broker: _CountingBroker | None,
               backend: str, limits: Limits, run_label: str,
               workspace_src: Path | None = None) -> Iterator[Sandbox]:
    with ExitStack() as stack:
        stage = Path(tempfile.mkdtemp(prefix="rsi-bench-agent-"))
        stack.callback(shutil.rmtree, stage, True)
        os.chmod(stage, 0o755)
        _stage_agent(agent_dir, stage / "agent")
        mounts = {str(stage / "agent"): AGENT_IN, str(RUNNER): RUNNER_IN,
                  str(CLIENT_DIR): CLIENT_IN}
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
        yield box


def _run_runner(box: Sandbox, mode: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run the runner once; return its reply, or a reply describing why there is none."""
    nonce = secrets.token_hex(16)
    payload = {**job, "nonce": nonce, "uid": box.spec.uid, "timeout": timeout,
               "memory_mb": box.spec.limits.job_memory_mb, "agent_dir": AGENT_IN}
    result = box.exec(["python3", "-I", "-S", RUNNER_IN, mode], input=json.dumps(payload).encode(),
                      timeout=timeout + GRACE_S, user=0, cwd="/")
    if result.timed_out:
        return {"status": "timeout", "detail": f"no result within {timeout + GRACE_S:g} s; "
                "the container was killed"}
    prefix = f"{RESULT_TAG} {nonce} ".encode()
    for line in result.stdout.splitlines():
        if line.startswith(prefix):
            reply = json.loads(line[len(prefix):])
            if isinstance(reply, dict):
                return reply
    tail = result.stderr.decode("utf-8", "replace")[-500:]
    return {"status": "error", "detail": f"the agent runner gave no result (exit code "
            f"{result.exit_code}): {tail}"}


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
            "examples": [{"call": e.call, "result": e.result} for e in view.examples]}


def run_solve(agent_dir: str | Path, task_view: TaskView, *, broker: Broker, generation: int,
              sample: int = 0, backend: str = "docker", limits: Limits = DEFAULT_LIMITS,
              timeout: float = 180.0, run_label: str = "agent") -> SolveOutcome:
    """Run the agent's ``solve`` on one task in a fresh sandbox."""
    start = time.monotonic()
    try:
        manifest = load_manifest(agent_dir)
    except AgentError as exc:
        return SolveOutcome("invalid", None, str(exc), 0.0, 0)
    counter = _CountingBroker(broker)
    context = CallContext("solve", task_view.id, generation, sample)
    with _agent_box(Path(agent_dir), context=context, broker=counter, backend=backend,
                    limits=limits, run_label=run_label) as box:
        reply = _run_runner(box, "solve", {"entry": manifest.entry,
                                           "task": _task_json(task_view)}, timeout)
    return solve_outcome(reply, start, counter.calls)


def solve_outcome(reply: Mapping[str, Any], start: float, calls: int) -> SolveOutcome:
    """A solve's outcome from the runner's reply (a reply that claims ok without a string
    solution is an error)."""
    status = str(reply.get("status"))
    solution = reply.get("solution") if status == "ok" else None
    if status == "ok" and not isinstance(solution, str):
        status, solution = "error", None
    return SolveOutcome(status, solution, str(reply.get("detail", "")),
                        time.monotonic() - start, calls, _events(reply),
                        str(reply.get("output_tail", "")))


def run_check(agent_dir: str | Path, *, backend: str = "docker", limits: Limits = DEFAULT_LIMITS,
              timeout: float = 60.0, run_label: str = "agent") -> CheckOutcome:
    """Import the entry module in a sandbox (no model) and check solve/improve are callable."""
    start = time.monotonic()
    try:
        manifest = load_manifest(agent_dir)
    except AgentError as exc:
        return CheckOutcome("invalid", str(exc), 0.0)
    with _agent_box(Path(agent_dir), context=None, broker=None, backend=backend, limits=limits,
                    run_label=run_label) as box:
        reply = _run_runner(box, "check", {"entry": manifest.entry}, timeout)
    return CheckOutcome(str(reply.get("status")), str(reply.get("detail", "")),
                        time.monotonic() - start)


def _fetch_workspace(box: Sandbox) -> ExecResult:
    """The improve's workspace as a tar stream (exit code 3: there is no workspace)."""
    return box.exec(["sh", "-c", f"test -d {WORKSPACE} || exit 3; exec tar -c -C {WORKSPACE} ."],
                    user=0, timeout=120, cwd="/")


def run_improve(parent_dir: str | Path, child_dir: str | Path,
                feedback: Sequence[Mapping[str, Any]], *, broker: Broker, generation: int,
                backend: str = "docker", limits: Limits = DEFAULT_LIMITS, timeout: float = 600.0,
                run_label: str = "agent",
                improver_dir: str | Path | None = None) -> ImproveOutcome:
    """Run the parent's ``improve`` on a copy of itself; write the result into ``child_dir``.

    ``child_dir`` must not exist or be empty. It receives every workspace entry that passes the
    checks, whatever the status; use it as the next generation only when the status is ``ok``.
    ``feedback`` must hold dev-split results only: it is shown to the agent as given.
    ``improver_dir``: whose ``improve`` runs, when it is not the parent's own (the ``fixed``
    improver: a meta-improver that is never rewritten edits a copy of the parent).
    """
    start, child = time.monotonic(), Path(child_dir)
    if child.exists() and any(child.iterdir()):
        raise AgentError(f"{child}: the child directory must be new or empty")
    child.mkdir(parents=True, exist_ok=True)
    improver = Path(improver_dir) if improver_dir is not None else Path(parent_dir)
    try:
        load_manifest(parent_dir)
        manifest = load_manifest(improver)
    except AgentError as exc:
        return ImproveOutcome("invalid", str(exc), 0.0)
    plain = [{"task_id": str(f.get("task_id", "")), "status": str(f.get("status", "")),
              "detail": str(f.get("detail", ""))} for f in feedback]
    counter = _CountingBroker(broker)
    separate = improver.resolve() != Path(parent_dir).resolve()
    with _agent_box(improver, context=CallContext("improve", None, generation),
                    broker=counter, backend=backend, limits=limits, run_label=run_label,
                    workspace_src=Path(parent_dir) if separate else None) as box:
        job = {"entry": manifest.entry, "workspace": WORKSPACE, "feedback": plain}
        if separate:
            job["workspace_src"] = WORKSPACE_SRC
        reply = _run_runner(box, "improve", job, timeout)
        packed = None if reply.get("status") == "timeout" else _fetch_workspace(box)
    status, detail = str(reply.get("status")), str(reply.get("detail", ""))
    refused: list[Finding] = []
    if packed is not None:
        if packed.exit_code == 3:
            refused.append(Finding("refused_file", WORKSPACE, "the workspace is gone (improve "
                                   "removed it)"))
        elif packed.truncated:
            refused.append(Finding("refused_file", WORKSPACE, "the workspace is larger than "
                                   f"{MAX_TOTAL_BYTES} bytes"))
        else:
            refused += unpack_workspace(packed.stdout, child)
        if status == "ok" and refused:
            status, detail = "invalid", "; ".join(f"{f.path}: {f.detail}" for f in refused[:5])
        elif status == "ok" and not (child / "agent.toml").is_file():
            status, detail = "invalid", "improve left no agent.toml in its workspace"
    return ImproveOutcome(status, detail, time.monotonic() - start, counter.calls,
                          _events(reply) + tuple(refused), str(reply.get("output_tail", "")))


def unpack_workspace(data: bytes, dest: Path, *, max_files: int = MAX_FILES,
                     max_file_bytes: int = MAX_FILE_BYTES) -> list[Finding]:
    """Write the regular files and directories of a tar stream under ``dest`` (which must be
    fresh); return a finding for every entry refused. Never raises on a hostile archive."""
    refused: list[Finding] = []
    root, files = dest.resolve(), 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./").rstrip("/")
                if name in ("", "."):
                    continue
                parts = PurePosixPath(name).parts
                if name.startswith("/") or ".." in parts:
                    refused.append(Finding("refused_file", name, "path escapes the workspace"))
                    continue
                if not (member.isfile() or member.isdir()):
                    kind = ("symlink" if member.issym() else "hard link" if member.islnk()
                            else "fifo" if member.isfifo() else "device file" if member.isdev()
                            else "special file")
                    refused.append(Finding("refused_file", name, f"{kind} refused"))
                    continue
                if member.isfile() and member.size > max_file_bytes:
                    refused.append(Finding("refused_file", name, f"{member.size} bytes, over "
                                           f"the {max_file_bytes}-byte cap"))
                    continue
                if member.isfile() and files >= max_files:
                    refused.append(Finding("refused_file", name, f"more than {max_files} files"))
                    break
                target = root.joinpath(*parts)
                if root not in target.parents:
                    refused.append(Finding("refused_file", name, "path escapes the workspace"))
                    continue
                try:
                    _write_member(tar, member, target)
                except OSError as exc:
                    refused.append(Finding("refused_file", name, f"cannot write: {exc}"))
                files += member.isfile()
    except (tarfile.TarError, EOFError) as exc:
        refused.append(Finding("refused_file", "", f"the workspace archive is unreadable: {exc}"))
    return refused


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    if member.isdir():
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:
        raise OSError("no data")
    with source, open(target, "xb") as out:
        shutil.copyfileobj(source, out)
    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
