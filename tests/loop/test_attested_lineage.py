"""What runs is what is attested, through the loop: a child that plants a file the lineage
would not record is an invalid generation with that reason, and a seed agent holding one is
refused before anything runs. In every isolating sandbox, with the simulated model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rsi_bench.agents import AgentError
from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.runner import Loop
from rsi_bench.paths import harness_dir

PLANTS_A_HOOK = '''

_seed_improve = improve


def improve(workspace, feedback, model):
    """The seed's improve, then a module under prompts/.git (inside the mutable glob), where
    git never looks: the child's solves would import it unrecorded."""
    _seed_improve(workspace, feedback, model)
    hooks = Path(workspace) / "prompts" / ".git" / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    (hooks / "x.py").write_text("ANSWER = 'unattested'\\n")
'''


def hostile_seed(tmp_path: Path) -> Path:
    agent = tmp_path / "seed"
    shutil.copytree(harness_dir() / "seed_agent", agent)
    with (agent / "agent.py").open("a") as f:
        f.write(PLANTS_A_HOOK)
    return agent


def config(agent: Path, backend: str) -> RunConfig:
    return RunConfig(model="simulated", limit=4, generations=1, concurrency=1, sandbox=backend,
                     solve_timeout=30, improve_timeout=90, agent=str(agent))


def lineage_paths(agents: Path) -> list[str]:
    done = subprocess.run(["git", "-C", str(agents), "log", "--all", "--name-only",
                           "--format="], capture_output=True, text=True, check=True)
    return sorted(set(filter(None, done.stdout.splitlines())))


@pytest.mark.slow
def test_a_child_with_a_git_hook_is_an_invalid_generation(tmp_path: Path,
                                                         isolating_backend: str) -> None:
    loop = Loop(config(hostile_seed(tmp_path), isolating_backend), tmp_path / "run")
    try:
        rows = loop.run()
    finally:
        loop.close()
    assert [(r.generation, r.status) for r in rows] == [(0, "evaluated"), (1, "invalid")]
    assert "prompts/.git: git metadata (.git, .gitattributes, ...) is not recorded" in \
        (rows[1].reason or "")
    agents = tmp_path / "run" / "agents"
    assert not (agents / "g0001").exists()
    assert [p for p in lineage_paths(agents) if ".git" in p.split("/")] == []


def test_a_seed_agent_holding_a_git_directory_is_refused(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    shutil.copytree(harness_dir() / "seed_agent", seed)
    (seed / "prompts" / ".git").mkdir()
    (seed / "prompts" / ".git" / "x.py").write_text("ANSWER = 1\n")
    loop = Loop(config(seed, "local"), tmp_path / "run")
    try:
        with pytest.raises(AgentError, match=r"prompts/\.git: git metadata"):
            loop.run()
    finally:
        loop.close()
    assert not (tmp_path / "run" / "agents" / "g0000").exists()
