"""What agent tests share: the tasks they use, the seed agent, and hostile agents written into
tmp_path (a module of its own, so tests import it by a name no other directory uses)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from rsi_bench.broker import Broker
from rsi_bench.paths import harness_dir
from rsi_bench.store import Store
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
    backend: str = "docker"  # where its agents run: docker, or docker:runsc (gVisor)

    def task(self, short: str) -> Task:
        return self.tasks[f"rsi-core/{short}"]


def make_agent(root: Path, code: str, *, name: str = "hostile",
               mutable: str = '["agent.py", "prompts/*"]') -> Path:
    """An agent directory whose agent.py is ``code`` (dedented)."""
    root.mkdir(parents=True)
    (root / "agent.toml").write_text(f'schema_version = 1\nname = "{name}"\nentry = "agent"\n'
                                     f"mutable = {mutable}\n")
    (root / "agent.py").write_text(textwrap.dedent(code))
    return root
