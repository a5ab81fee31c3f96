"""Agent tests: a real Broker and store in tmp_path, with the simulated model (labelled as such
in every answer) or a scripted one, and agents written into tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rsi_bench.broker import Broker
from rsi_bench.models.simulated import SimulatedConfig, SimulatedModel, sim_tasks
from rsi_bench.paths import harness_dir
from rsi_bench.store import Store
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.model import Task

TASK_IDS = ("rsi-core/chunk", "rsi-core/count_vowels", "rsi-core/median")
SEED = harness_dir() / "seed_agent"
RUN_LABEL = "pytest-agents"


@dataclass
class World:
    broker: Broker
    store: Store
    tasks: dict[str, Task]
    tmp: Path

    def task(self, short: str) -> Task:
        return self.tasks[f"rsi-core/{short}"]


@pytest.fixture(scope="session")
def core_tasks() -> dict[str, Task]:
    suite = load_suite("rsi-core")
    return {t: suite.get(t) for t in TASK_IDS}


@pytest.fixture
def world(tmp_path: Path, core_tasks: dict[str, Task]) -> Iterator[World]:
    """Always-right simulated solve answers (p = 1), helpful improve edits only."""
    config = SimulatedConfig(p_min=1.0, p_max=1.0, improve_weights={"helpful": 1.0})
    store = Store(tmp_path / "run.sqlite")
    broker = Broker(SimulatedModel(sim_tasks(core_tasks.values()), config), store)
    yield World(broker, store, core_tasks, tmp_path)
    store.close()


def make_agent(root: Path, code: str, *, name: str = "hostile",
               mutable: str = '["agent.py", "prompts/*"]') -> Path:
    """An agent directory whose agent.py is ``code`` (dedented)."""
    root.mkdir(parents=True)
    (root / "agent.toml").write_text(f'schema_version = 1\nname = "{name}"\nentry = "agent"\n'
                                     f"mutable = {mutable}\n")
    (root / "agent.py").write_text(textwrap.dedent(code))
    return root
