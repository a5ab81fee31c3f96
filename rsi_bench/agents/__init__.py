"""Agents: the manifest, running agent calls in sandboxes, auditing and validating children.

Agent code is data to this package until a container runs it: nothing here imports it.
"""

from rsi_bench.agents.audit import Finding, audit, changed_files, diff_text
from rsi_bench.agents.container import (
    CheckOutcome,
    ImproveOutcome,
    SolveOutcome,
    run_check,
    run_improve,
    run_solve,
)
from rsi_bench.agents.manifest import AgentError, AgentManifest, load_manifest
from rsi_bench.agents.validate import validate_child

__all__ = [
    "AgentError", "AgentManifest", "CheckOutcome", "Finding", "ImproveOutcome", "SolveOutcome",
    "audit", "changed_files", "diff_text", "load_manifest", "run_check", "run_improve",
    "run_solve", "validate_child",
]
