"""Agent tests: a real Broker and store in tmp_path, with the simulated model (labelled as such
in every answer) or a scripted one, and agents written into tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_world import TASK_IDS, World

from rsi_bench.broker import Broker
from rsi_bench.models.simulated import SimulatedConfig, SimulatedModel, sim_tasks
from rsi_bench.store import Store
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.model import Task


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
