"""Runs to report on: a tiny hand-written run whose every number is known, and synthetic runs.

The hand run (4 dev and 8 held-out tasks, one sample each) is written through the real store
and has a real git lineage:

    generation  parent  status     dev (d1..d4)  held-out (h1..h8)
    0           -       evaluated  1 0 0 0       1 0 0 0 0 0 0 0
    1           0       evaluated  1 1 0 0       1 1 1 0 0 0 0 0
    2           1       invalid    (an audit finding: held-out text in the change)
    3           1       evaluated  1 0 1 0       1 1 1 1 1 1 0 0

Generations 1 and 3 tie on dev (0.5): the earliest, 1, is selected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rsi_bench.loop.config import RunConfig
from rsi_bench.loop.lineage import Lineage
from rsi_bench.results.synthetic import write_runs
from rsi_bench.store import Store
from rsi_bench.store.model_calls import CallRecord, record_call
from rsi_bench.store.runs import RunStore

DEV = {0: "1000", 1: "1100", 3: "1010"}
HELDOUT = {0: "10000000", 1: "11100000", 3: "11111100"}
PARENTS = {1: 0, 2: 1, 3: 1}
FILES = {0: "x\n", 1: "y\n", 3: "z\n"}
# (generation, role, cost): generation 0 solves twice, 1 improves and solves once
CALLS = [(0, "solve", 0.01), (0, "solve", 0.01), (1, "improve", 0.10), (1, "solve", 0.01)]
LEAK = {"kind": "forbidden_string", "path": "prompts/solve.md",
        "detail": "added text contains a held-out/sealed string (sha256 abc, 10 chars)"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chromium: needs headless Chromium (required when "
                            "CI=true)")


def write_hand_run(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True)
    config = RunConfig(suite="hand:12", model="synthetic/hand", generations=3, improver="self",
                       seed=0)
    lineage = Lineage(run_dir / "agents")
    with Store(run_dir / "run.sqlite") as store:
        runs = RunStore(store)
        runs.set_config({"run": config.to_dict(), "fingerprint": config.fingerprint()})
        for g in range(4):
            parent = PARENTS.get(g)
            if g == 2:
                runs.add_generation(2, 1, "self", None, [{"kind": "changed", "path": "a.txt",
                                                          "detail": "modified"}, LEAK],
                                    "invalid", "audit: held-out text in the change")
                continue
            lineage.path(g).mkdir(parents=True)
            (lineage.path(g) / "a.txt").write_text(FILES[g])
            sha = lineage.commit(g, parent, f"generation {g}")
            improve = (4.0, 10.0) if g == 3 else (None, None)  # the improve's own / model s
            runs.add_generation(g, parent, "seed" if g == 0 else "self", sha, [], "created",
                                None, *improve)
            for split, table in (("dev", DEV), ("heldout", HELDOUT)):
                for i, bit in enumerate(table[g], start=1):
                    status = "pass" if bit == "1" else "fail"
                    runs.add_result(g, f"{split[0]}{i}", 0, split, status, "ok", "", None,
                                    1.0, 0.5, {}, 0.25, 2.0)
            runs.mark_evaluated(g)
        for g, cause in ((0, "model: status 503"), (3, "sandbox did not start: x"),
                         (3, "model: no answer")):
            runs.event("infra", g, job="solve", cause=cause)
        runs.event("infra_stop", 3, job="solve", cause="model: no answer")  # not a count
        for g, role, cost in CALLS:
            record_call(store, CallRecord(
                role=role, model="synthetic/hand", request_hash=f"{g}-{role}-{cost}",
                request={}, status="ok", generation=g, task_id=None,
                completion={"cost_usd": cost, "latency_s": 0.1,
                            "usage": {"input_tokens": 100, "output_tokens": 10}}))
    return run_dir


@pytest.fixture(scope="session")
def hand_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hand_run(tmp_path_factory.mktemp("hand") / "run")


@pytest.fixture(scope="session")
def multi_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """self and noop, two seeds each: 6 generations of 40 tasks, 20% of them sealed."""
    root = tmp_path_factory.mktemp("multi")
    return write_runs(root, conditions=("self", "noop"), seeds=(0, 1), generations=6,
                      tasks=40, sealed=0.2)


@pytest.fixture(scope="session")
def multi_report(tmp_path_factory: pytest.TempPathFactory, multi_runs: list[Path]) -> Path:
    from rsi_bench.report import render

    out = tmp_path_factory.mktemp("report") / "multi"
    render(multi_runs, out, name="multi")
    return out
