"""Is a child agent worth evaluating? Three cheap checks before a whole generation is spent on it.

A child that cannot be parsed, imported or run on one task would score zero on every task and
look like a regression of the loop; recording it as invalid, with the reason, is more honest and
much cheaper.
"""

from __future__ import annotations

from pathlib import Path

from rsi_bench.agents.container import DEFAULT_LIMITS, run_check, run_solve
from rsi_bench.agents.manifest import AgentError, load_manifest
from rsi_bench.broker import Broker
from rsi_bench.infra import InfraFailure
from rsi_bench.sandbox import Limits
from rsi_bench.tasks.model import TaskView


def validate_child(child_dir: str | Path, *, smoke_task_view: TaskView, broker: Broker,
                   generation: int, backend: str = "docker", limits: Limits = DEFAULT_LIMITS,
                   timeout: float = 180.0, run_label: str = "agent",
                   model_cap: float | None = None) -> tuple[bool, str]:
    """``(True, "ok")`` or ``(False, reason)``: the manifest parses, the entry module imports
    in a sandbox with ``solve`` and ``improve`` callable, and ``solve`` on the smoke task (a
    dev task: its model call is recorded like any other) returns a string. A smoke solve the
    host saw fail outside the agent (``rsi_bench.infra``) raises ``InfraFailure``: it says
    nothing about the child."""
    try:
        manifest = load_manifest(child_dir)
    except AgentError as exc:
        return False, str(exc)
    check = run_check(child_dir, backend=backend, limits=limits, timeout=min(timeout, 60.0),
                      run_label=run_label)
    if check.status != "ok":
        return False, f"entry module {manifest.entry!r} does not load ({check.status}): " \
                      f"{check.detail}"
    smoke = run_solve(child_dir, smoke_task_view, broker=broker, generation=generation,
                      backend=backend, limits=limits, timeout=timeout, run_label=run_label,
                      model_cap=model_cap)
    if smoke.infra:
        raise InfraFailure(smoke.infra)
    if smoke.status != "ok":
        return False, f"solve on smoke task {smoke_task_view.id} ended {smoke.status}: " \
                      f"{smoke.detail}"
    return True, "ok"
