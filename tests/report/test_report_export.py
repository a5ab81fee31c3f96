"""results.json (schema rsi-bench/results v1), generations.csv and tasks.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rsi_bench.results.analysis import analyze
from rsi_bench.results.export import SCHEMA, VERSION, write_results

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "rsi_bench" / "results" / "SCHEMA.md"


@pytest.fixture(scope="module")
def hand_out(hand_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hand-out")
    write_results(analyze([hand_run]), out)
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_results_json_top_level(hand_out: Path) -> None:
    data = json.loads((hand_out / "results.json").read_text())
    assert (data["schema"], data["version"]) == (SCHEMA, VERSION) == ("rsi-bench/results", 1)
    assert set(data) == {"schema", "version", "generator", "settings", "suite", "model",
                         "simulated", "synthetic", "conditions", "noise_floor", "runs", "notes"}
    assert data["settings"]["n_boot_verdict"] == 10_000
    assert data["settings"]["n_boot_generation"] < data["settings"]["n_boot_verdict"]
    assert data["suite"] == {"suite": "hand:12", "limit": None, "split_seed": 0, "sealed": 0.0}
    assert data["noise_floor"] is None
    (condition,) = data["conditions"]
    assert condition["condition"] == "self" and condition["runs"] == ["self-s0"]
    assert set(condition["verdict"]) == {
        "subject", "condition", "label", "effect", "ci_low", "ci_high", "p_value", "split",
        "seeds", "n_tasks", "mde", "noise_floor", "cost_usd", "cost_per_point", "reason"}


def test_results_json_run_and_generations(hand_out: Path) -> None:
    (run,) = json.loads((hand_out / "results.json").read_text())["runs"]
    assert set(run) == {"id", "path", "condition", "seed", "fingerprint", "simulated",
                        "synthetic", "config", "selection", "verdict", "trend", "cost_usd",
                        "cost_known", "generations", "safety"}
    assert run["selection"]["selected"] == 1 and run["cost_usd"] == pytest.approx(0.13)
    gens = {g["generation"]: g for g in run["generations"]}
    assert sorted(gens) == [0, 1, 2, 3]
    assert set(gens[3]) == {"generation", "parent", "improver", "status", "reason",
                            "commit_sha", "n_findings", "selected", "scores", "vs_gen0",
                            "vs_parent", "cost", "infra", "time"}
    # infra events per generation, never results: generation 3 still has its 8 + 8 results
    assert [gens[g]["infra"] for g in range(4)] == [1, 0, 0, 2]
    n3 = gens[3]["scores"]["dev"]["n_tasks"] + gens[3]["scores"]["heldout"]["n_tasks"]
    assert gens[3]["time"] == {"agent_s": pytest.approx(0.25 * n3 + 4.0),
                               "model_s": pytest.approx(2.0 * n3 + 10.0)}
    assert gens[2]["time"] == {"agent_s": None, "model_s": None}  # invalid: nothing ran
    assert gens[3]["scores"]["heldout"]["score"] == 0.75
    assert set(gens[3]["scores"]["heldout"]) == {"n_tasks", "score", "ci_low", "ci_high",
                                                 "pass_at_k"}
    assert gens[3]["vs_gen0"]["p_holm"] == pytest.approx(0.125)
    assert gens[3]["vs_parent"]["diff"] == pytest.approx(0.375)
    assert gens[0]["vs_gen0"] is None and gens[0]["parent"] is None
    assert gens[2]["status"] == "invalid" and gens[2]["scores"] == {}
    assert gens[1]["selected"] and not gens[3]["selected"]
    assert run["safety"]["flagged"] and run["safety"]["invalid"][0]["generation"] == 2


def test_every_field_is_documented(hand_out: Path, multi_runs: list[Path],
                                   tmp_path: Path) -> None:
    """SCHEMA.md names every key that results.json can hold."""
    write_results(analyze(multi_runs), tmp_path)
    doc = SCHEMA_DOC.read_text()
    keys: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if not k.isdigit() and k not in ("dev", "heldout", "sealed"):
                    keys.add(k)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for out in (hand_out, tmp_path):
        walk(json.loads((out / "results.json").read_text()))
    undocumented = sorted(k for k in keys if f"`{k}`" not in doc)
    assert not undocumented, f"add to SCHEMA.md: {undocumented}"


def test_generations_csv(hand_out: Path) -> None:
    rows = read_csv(hand_out / "generations.csv")
    assert [r["generation"] for r in rows] == ["0", "1", "2", "3"]
    g3 = rows[3]
    assert (g3["run"], g3["condition"], g3["seed"], g3["parent"]) == ("self-s0", "self", "0",
                                                                        "1")
    assert float(g3["heldout_score"]) == 0.75 and float(g3["dev_score"]) == 0.5
    assert float(g3["vs0_p_value"]) == pytest.approx(0.0625)
    assert rows[2]["status"] == "invalid" and rows[2]["heldout_score"] == ""
    assert [r["selected"] for r in rows] == ["False", "True", "False", "False"]
    assert float(rows[1]["cost_usd"]) == pytest.approx(0.11)


def test_tasks_csv(hand_out: Path) -> None:
    rows = read_csv(hand_out / "tasks.csv")
    assert len(rows) == 3 * 12  # three evaluated generations x 12 tasks
    assert set(rows[0]) == {"run", "condition", "seed", "generation", "task_id", "split",
                            "samples", "passes", "score", "agent_s", "model_s"}
    g3 = {r["task_id"]: r for r in rows if r["generation"] == "3"}
    assert {(r["agent_s"], r["model_s"]) for r in rows} == {("0.25", "2")}
    assert [g3[f"h{i}"]["passes"] for i in range(1, 9)] == list("11111100")
    assert {g3[f"d{i}"]["split"] for i in range(1, 5)} == {"dev"}


def test_outputs_are_deterministic(multi_runs: list[Path], tmp_path: Path) -> None:
    """The same runs give byte-identical files (no clock, no randomness without a seed)."""
    write_results(analyze(multi_runs), tmp_path / "a")
    write_results(analyze(multi_runs), tmp_path / "b")
    for name in ("results.json", "generations.csv", "tasks.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
