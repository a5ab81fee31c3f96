"""The loop gives dev solves the share of the solve budget that their solves are of the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.runner import Loop


@pytest.mark.parametrize(("sealed", "generations"), [(0.0, 3), (0.25, 3), (0.25, 0)])
def test_the_dev_share_counts_every_planned_solve(tmp_path: Path, sealed: float,
                                                  generations: int) -> None:
    loop = Loop(RunConfig(model="simulated", limit=8, generations=generations, sealed=sealed,
                          budgets={"solve": {"calls": 100}}), tmp_path / "run")
    try:
        count = {s: sum(v == s for v in loop.splits.values()) for s in ("dev", "heldout",
                                                                          "sealed")}
        rounds = generations + 1
        dev = count["dev"] * rounds
        assert loop._dev_share() == pytest.approx(
            dev / (dev + count["heldout"] * rounds + 2 * count["sealed"]))
        assert loop.broker.partitioned
        dev_calls = loop.broker.ledger.budgets["solve:dev"].calls
        hidden_calls = loop.broker.ledger.budgets["solve:hidden"].calls
        assert dev_calls is not None and hidden_calls is not None
        assert dev_calls + hidden_calls == 100 and 0 < dev_calls < 100
    finally:
        loop.close()
