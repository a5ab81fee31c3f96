"""`rsi-bench plan`: the experiment file, the planned MDE, the smallest design and the cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rsi_bench.cli import cli
from rsi_bench.errors import InputError
from rsi_bench.experiment.cli import compute_plan, split_counts
from rsi_bench.experiment.spec import load_spec

SPEC = """
[experiment]
suite = "rsi-core"
model = "simulated"
generations = 2
conditions = {conditions}
seeds = [0, 1]
[plan]
target_effect = 0.30
usd_per_call = 0.01
seconds_per_solve = 6
parallel_runs = 2
"""


def spec_file(tmp_path: Path, conditions: str = '["self", "noop"]') -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(SPEC.format(conditions=conditions))
    return path


def test_plan_prints_mde_smallest_design_and_cost(tmp_path: Path) -> None:
    path = spec_file(tmp_path)
    out = CliRunner().invoke(cli, ["plan", str(path), "--replications", "200"])
    assert out.exit_code == 0, out.output
    claim, n_claim, n_solved = split_counts(load_spec(path))
    assert f"plan: {n_claim} {claim} tasks, 2 seed(s)" in out.output
    assert "noise floor from 2 noop seed(s)" in out.output
    assert "smallest design detecting 30.0 points" in out.output or "more tasks" in out.output
    # calls: 2 conditions x 2 seeds x (3 generations x solved tasks) + 2 self improves
    calls = 2 * 2 * 3 * n_solved + 2 * 2
    assert f"{calls:,} model calls, cost ${calls * 0.01:,.2f}" in out.output
    hours = 3 * n_solved * 6 / 2 / 3600  # 4 runs, 2 at once: 2 waves; concurrency 2
    assert f"wall time {2 * hours:.2f} h at 2 run(s) at once" in out.output
    again = CliRunner().invoke(cli, ["plan", str(path), "--replications", "200"])
    assert again.output == out.output  # seeded: the same plan every time


def test_the_noise_floor_of_noop_controls_raises_the_mde(tmp_path: Path) -> None:
    with_noop = compute_plan(load_spec(spec_file(tmp_path)), replications=200)
    assert with_noop.controls == 2 and with_noop.mde >= with_noop.mde_no_floor
    without = compute_plan(load_spec(spec_file(tmp_path, '["self", "fixed"]')),
                           replications=200)
    assert without.controls == 0 and without.mde == without.mde_no_floor


@pytest.mark.parametrize(("text", "says"), [
    ("[experiment]\nsuite = 'rsi-core'\nbogus = 1\n", "unknown key(s) bogus"),
    ("[experiment]\nconditions = ['nowhere']\n", "neither self, noop, fixed nor an agent"),
    ("[experiment]\nseeds = [1, 1]\n", "seeds must be distinct"),
    ("[experiment]\nimprover = 'self'\n", "unknown key(s) improver"),
])
def test_bad_experiment_files_are_one_clear_error(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=says.replace("(", r"\(").replace(")", r"\)")):
        load_spec(path)


def test_an_agent_directory_is_its_own_condition(tmp_path: Path) -> None:
    agent = tmp_path / "my-agent"
    agent.mkdir()
    (agent / "agent.toml").write_text("name = 'x'\n")
    spec = load_spec(spec_file(tmp_path, '["self", "my-agent"]'))
    mine = spec.conditions[1]
    assert (mine.name, mine.improver, mine.agent) == ("my-agent", "self", str(agent.resolve()))
    assert spec.run_config(mine, 1).agent == str(agent.resolve())


def test_run_options_keep_their_normalised_form(tmp_path: Path) -> None:
    path = tmp_path / "rt.toml"
    path.write_text("[experiment]\nsandbox = 'docker:runsc'\nlimit = 4\n")
    spec = load_spec(path)
    config = spec.run_config(spec.conditions[0], 3)
    assert (config.backend, config.limit, config.seed, config.improver) == \
        ("docker:runsc", 4, 3, "self")


def test_the_ground_truth_experiment_file_loads_and_plans() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "ground-truth.toml"
    spec = load_spec(path)
    assert [c.name for c in spec.conditions] == ["self", "noop", "fixed"]
    assert spec.seeds == (0, 1, 2) and spec.base.model == "simulated"
    assert spec.base.suite == "rsi-core" and spec.base.sandbox == "docker"
    planned = compute_plan(spec, replications=200)
    assert (planned.claim_split, planned.n_tasks, planned.controls) == ("heldout", 22, 3)
    assert planned.mde >= planned.mde_no_floor > 0.2
