"""benchmarks/ground_truth.py: the true pass rates of agents under the simulated model."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rsi_bench.models.simulated import SimulatedModel
from rsi_bench.models.simulated_edits import apply_edits, library
from rsi_bench.paths import harness_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def truth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ground_truth",
                                                  ROOT / "benchmarks" / "ground_truth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ground_truth"] = module
    spec.loader.exec_module(module)
    return module


def edited(tmp_path: Path, *names: str) -> Path:
    """The seed agent with the simulated library's edits ``names`` applied, in order."""
    agent = tmp_path / "-".join(names or ("seed",))
    shutil.copytree(harness_dir() / "seed_agent", agent)
    edits = {e["edit"]: e for group in library("prompts/solve.md", "agent.py").values()
             for e in group}
    files = {p: (agent / p).read_text() for p in ("prompts/solve.md", "agent.py")}
    for name in names:
        files = apply_edits(files, edits[name]["edits"])
    for path, text in files.items():
        (agent / path).write_text(text)
    return agent


def test_true_rates_are_the_configured_effects(truth: ModuleType, tmp_path: Path) -> None:
    views = list(truth._views("rsi-core", None, 0, 0.0))
    model = SimulatedModel()
    by_difficulty = {1: 0.7, 2: 0.5, 3: 0.3}
    expected = [by_difficulty[task.difficulty] for _, _, task in views]
    seed, features, retry = truth.agent_truth(edited(tmp_path), views, model)
    assert seed == pytest.approx(expected) and features == [] and not retry
    examples, features, _ = truth.agent_truth(edited(tmp_path, "add_examples"), views, model)
    assert examples == pytest.approx([p + 0.10 for p in expected]) and features == ["examples"]
    # a harmful edit only removes what a helpful one added
    undone, features, _ = truth.agent_truth(
        edited(tmp_path, "add_examples", "truncate_prompt"), views, model)
    assert undone == pytest.approx(expected) and features == []
    # the retry loop: a wrong first answer that fails a visible example is asked again with the
    # error (p + 0.10); at most every wrong answer is retried
    retried, _, retry = truth.agent_truth(edited(tmp_path, "add_retry_loop"), views, model)
    assert retry
    for p, q in zip(expected, retried, strict=True):
        assert p <= q <= p + (1 - p) * (p + 0.10) + 1e-12
    assert sum(retried) > sum(expected) + 0.1 * len(expected)


def test_an_agent_with_a_cheating_edit_is_not_run(truth: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cheating"):
        truth.load_agent(edited(tmp_path, "read_hidden_tests"), "cheat")
