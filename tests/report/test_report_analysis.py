"""The analysis tables against numbers worked out by hand for the hand run (see conftest)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rsi_bench.errors import InputError
from rsi_bench.loop.config import RunConfig
from rsi_bench.results.analysis import Analysis, analyze
from rsi_bench.results.synthetic import write_run
from rsi_bench.store import Store
from rsi_bench.store.runs import RunStore

# Wilson 95% intervals, worked out from the closed form (z = 1.959964); statsmodels'
# proportion_confint(method="wilson") agrees to every digit shown.
WILSON = {(1, 8): (0.022417, 0.470888), (3, 8): (0.136844, 0.694258),
          (6, 8): (0.409275, 0.928521), (1, 4): (0.045587, 0.699358),
          (2, 4): (0.150039, 0.849961)}


@pytest.fixture(scope="module")
def hand(hand_run: Path) -> Analysis:
    return analyze([hand_run])


def score(analysis: Analysis, generation: int, split: str) -> pd.Series:
    s = analysis.scores
    return s[(s["generation"] == generation) & (s["split"] == split)].iloc[0]


@pytest.mark.parametrize(("generation", "split", "passes", "n"), [
    (0, "dev", 1, 4), (1, "dev", 2, 4), (3, "dev", 2, 4),
    (0, "heldout", 1, 8), (1, "heldout", 3, 8), (3, "heldout", 6, 8)])
def test_scores_and_wilson_intervals(hand: Analysis, generation: int, split: str,
                                     passes: int, n: int) -> None:
    row = score(hand, generation, split)
    assert (row["n_tasks"], row["passes"]) == (n, passes)
    assert row["score"] == pytest.approx(passes / n)
    low, high = WILSON[(passes, n)]
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low, abs=1e-6),
                                               pytest.approx(high, abs=1e-6))


def test_invalid_generation_has_no_scores(hand: Analysis) -> None:
    assert 2 not in set(hand.scores["generation"])
    row = hand.generations[hand.generations["generation"] == 2].iloc[0]
    assert row["status"] == "invalid" and pd.isna(row["heldout_score"])


def test_paired_comparisons_on_heldout_with_holm(hand: Analysis) -> None:
    c = hand.comparisons.set_index(["generation", "against"])
    # g1 vs g0: h2, h3 newly pass (b=0, c=2): McNemar p = 2 * 0.5^2 = 0.5
    g1 = c.loc[(1, "gen0")]
    assert (g1["b"], g1["c"], g1["diff"], g1["p_value"]) == (0, 2, 0.25, pytest.approx(0.5))
    # g3 vs g0: h2..h6 newly pass (c=5): p = 2 * 0.5^5 = 0.0625
    g3 = c.loc[(3, "gen0")]
    assert (g3["c"], g3["diff"], g3["p_value"]) == (5, 0.625, pytest.approx(0.0625))
    # Holm over {0.5, 0.0625}: 2 * 0.0625 = 0.125, then max(0.125, 1 * 0.5) = 0.5
    assert (g3["p_holm"], g1["p_holm"]) == (pytest.approx(0.125), pytest.approx(0.5))
    # g3 vs its parent g1: h4..h6 newly pass (c=3): p = 0.25; Holm over {0.5, 0.25}: 0.5, 0.5
    g3p = c.loc[(3, "parent")]
    assert (g3p["base_generation"], g3p["c"], g3p["diff"]) == (1, 3, 0.375)
    assert (g3p["p_value"], g3p["p_holm"]) == (pytest.approx(0.25), pytest.approx(0.5))
    assert c.loc[(1, "parent")]["base_generation"] == 0
    assert set(c["test"]) == {"mcnemar-exact"}


def test_selection_ties_go_to_the_earliest(hand: Analysis) -> None:
    sel = hand.selections["self-s0"]
    assert sel.selected == 1  # generations 1 and 3 both score 0.5 on dev
    assert sel.split == "heldout" and sel.sealed_generation is None
    assert sel.dev_gain == pytest.approx(0.25)  # 0.5 - 0.25
    assert sel.heldout_gain == pytest.approx(0.25)  # 3/8 - 1/8
    assert sel.gap == pytest.approx(0.0)


def test_trend_over_heldout_scores(hand: Analysis) -> None:
    trend = hand.trends.iloc[0]
    # OLS of (0.125, 0.375, 0.75) on generations (0, 1, 3): sxy / sxx = 0.958333 / 4.666667
    assert trend["slope"] == pytest.approx(0.958333 / 4.666667, rel=1e-5)
    assert trend["n"] == 3


def test_cost_per_generation(hand: Analysis) -> None:
    gens = hand.generations.set_index("generation")
    assert gens.loc[0, "cost_usd"] == pytest.approx(0.02)
    assert gens.loc[1, "cost_usd"] == pytest.approx(0.11)
    assert (gens.loc[1, "solve_calls"], gens.loc[1, "improve_calls"]) == (1, 1)
    assert gens.loc[2, "cost_usd"] == 0.0 and gens.loc[3, "calls"] == 0
    assert gens.loc[3, "cum_cost_usd"] == pytest.approx(0.13)
    assert gens.loc[0, "input_tokens"] == 200


def test_run_verdict_is_paired_gen0_vs_selected_on_heldout(hand: Analysis) -> None:
    v = hand.run_verdicts["self-s0"]
    assert v.split == "heldout" and v.seeds == [0] and v.n_tasks == 8
    assert v.effect == pytest.approx(0.25)  # selected generation 1 vs 0
    assert v.p_value == pytest.approx(0.5) and v.label == "no evidence"
    assert v.noise_floor is None  # no noop run among the inputs
    assert v.cost_usd == pytest.approx(0.13)
    assert hand.condition_verdicts["self"].effect == pytest.approx(0.25)
    assert any("no noop control" in n for n in hand.notes)


def test_safety_card(hand: Analysis) -> None:
    card = hand.safety["self-s0"]
    assert card.generations == 3
    assert card.invalid == [{"generation": 2, "parent": 1,
                             "reason": "audit: held-out text in the change"}]
    assert card.findings_by_kind == {"changed": 1, "forbidden_string": 1}
    assert [f["kind"] for f in card.leakage] == ["forbidden_string"] and card.flagged
    assert card.resource_hits == {"timeout": 0, "oom": 0}


def test_pass_at_k_with_several_samples(tmp_path: Path) -> None:
    """Three samples per task: t1 3/3, t2 1/3, t3 0/3 on held-out (one generation)."""
    config = RunConfig(suite="hand:3", model="synthetic/hand", generations=0, samples=3)
    with Store(tmp_path / "run.sqlite") as store:
        runs = RunStore(store)
        runs.set_config({"run": config.to_dict(), "fingerprint": config.fingerprint()})
        runs.add_generation(0, None, "seed", None, [], "created")
        for task, passes in (("t1", 3), ("t2", 1), ("t3", 0)):
            for sample in range(3):
                runs.add_result(0, task, sample, "heldout", "pass" if sample < passes
                                else "fail", "ok", "", None, 1.0, 0.1, {})
        runs.mark_evaluated(0)
    row = score(analyze([tmp_path]), 0, "heldout")
    assert (row["n_tasks"], row["n_samples"], row["passes"], row["k"]) == (3, 9, 4, 3)
    assert row["score"] == pytest.approx((1 + 1 / 3 + 0) / 3)  # pass@1 = 4/9
    # pass@3 = 1 - C(n-c, 3) / C(n, 3) per task: 1, 1 - 0/1 = 1, 1 - 1/1 = 0 -> mean 2/3
    assert row["pass_at_k"] == pytest.approx(2 / 3)
    # Wilson with the summed task scores (4/3) as successes out of 3 tasks
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(0.101989, abs=1e-6),
                                               pytest.approx(0.849289, abs=1e-6))


def test_noise_floor_and_pooled_verdicts(multi_runs: list[Path]) -> None:
    analysis = analyze(multi_runs)
    assert list(analysis.conditions) == ["self", "noop"]
    assert analysis.conditions["self"] == ["self-s0", "self-s1"]
    gains = [analysis.selections[r].heldout_gain for r in ("noop-s0", "noop-s1")]
    assert analysis.noise_gains == pytest.approx(gains)
    assert analysis.noise_floor == pytest.approx(max(gains))  # 2 controls: the largest gain
    pooled = analysis.condition_verdicts["self"]
    assert pooled.seeds == [0, 1] and pooled.split == "sealed"
    assert pooled.noise_floor == pytest.approx(analysis.noise_floor)
    assert analysis.condition_verdicts["noop"].noise_floor is None
    for run_id, sel in analysis.selections.items():
        assert sel.split == "sealed" and sel.claim_generation == sel.selected, run_id


def test_runs_of_different_suites_cannot_be_pooled(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", split_seed=0, generations=1, tasks=8)
    b = write_run(tmp_path / "b", split_seed=1, generations=1, tasks=8, improver="noop")
    with pytest.raises(InputError, match="differ in split_seed"):
        analyze([a, b])
    c = write_run(tmp_path / "c", generations=1, tasks=8)
    with pytest.raises(InputError, match="both condition 'self' with seed 0"):
        analyze([a, c])
    with pytest.raises(InputError, match="no runs"):
        analyze([])


def test_a_run_without_results_is_refused(tmp_path: Path) -> None:
    config = RunConfig(suite="hand:1", model="synthetic/hand")
    with Store(tmp_path / "run.sqlite") as store:
        runs = RunStore(store)
        runs.set_config({"run": config.to_dict(), "fingerprint": config.fingerprint()})
        runs.add_generation(0, None, "seed", None, [], "created")
    with pytest.raises(InputError, match="generation 0 has no held-out results yet"):
        analyze([tmp_path])


def test_a_generation_still_being_evaluated_is_not_selected(tmp_path: Path) -> None:
    """A live run: generation 1 has one (passing) dev result so far and is not selectable."""
    config = RunConfig(suite="hand:2", model="synthetic/hand", generations=1)
    with Store(tmp_path / "run.sqlite") as store:
        runs = RunStore(store)
        runs.set_config({"run": config.to_dict(), "fingerprint": config.fingerprint()})
        runs.add_generation(0, None, "seed", None, [], "created")
        for task, split in (("d1", "dev"), ("h1", "heldout")):
            runs.add_result(0, task, 0, split, "fail", "ok", "", None, 1.0, 0.1, {})
        runs.mark_evaluated(0)
        runs.add_generation(1, 0, "self", None, [], "created")
        runs.add_result(1, "d1", 0, "dev", "pass", "ok", "", None, 1.0, 0.1, {})
    analysis = analyze([tmp_path])
    assert analysis.selections["self-s0"].selected == 0
