"""The true effects behind an experiment on the simulated model, next to its report's verdicts.

The simulated model (``rsi_bench.models.simulated``) answers a solve request with the task's
reference with a known probability that depends only on the task's difficulty and on the
scaffold features in the request. So the true held-out pass rate of any agent it was run with is
known exactly, without sampling: this script runs each agent's own ``solve`` against a stand-in
that enumerates every answer the simulated model can give (the reference with probability p, or
each wrong variant with probability (1 - p) / V), so retries and their feedback count as they
would in the sandbox, and sums the probabilities of the branches whose answer is the
reference. Every wrong variant fails the hidden tests (``rsi-bench validate`` checks that).

For each run of an experiment directory it prints the selected generation (the report's: best
dev score, ties to the earliest), the simulated model's features of that agent, and its true
held-out pass rate against generation 0's; per condition the true effect pooled over seeds (the
mean of the seeds' true effects, the quantity the verdict estimates) beside the report's
verdict. The ground truth of a condition is the sign of that pooled true gain: it "improves",
"regresses" or "neither". Whether the verdict can see it is a matter of power, so the script
also scores the true rates afresh (``--replications`` times, one sample per task, the report's
noise floor) and prints how often ``decide`` then says each label: at a true gain well below
the MDE, "no evidence" is the verdict the truth leads to.

Only the agents of an experiment on the simulated model are run, and only on this machine's
Python: the simulated model's helpful, neutral and harmful edits, which are plain prompt and
retry code. An agent carrying one of its cheating edits is refused (the audit rejects those, so
no selected generation carries one).

    python benchmarks/ground_truth.py EXPERIMENT_DIR [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from rsi_bench.models.simulated import LABEL, SimTask, SimulatedModel, detect_features, sim_tasks
from rsi_bench.stats.verdict import LABELS, SeedPair, decide
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.splits import assign_splits

CHEATING = "simulated cheating edit"
EXAMPLE_SECONDS = 2  # an example that runs longer fails, as the solve's timeout would make it


class _Branch(Exception):
    """The enumeration reached a call it has no answer for yet."""


def _points(value: float | None) -> str:
    return "none" if value is None else f"{100 * value:.1f} points"


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise TimeoutError("example ran too long")


def load_agent(agent_dir: Path, name: str) -> ModuleType:
    source = (agent_dir / "agent.py").read_text()
    if CHEATING in source:
        raise ValueError(f"{agent_dir}: carries a cheating edit; not run here")
    spec = importlib.util.spec_from_file_location(name, agent_dir / "agent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answer(code: str) -> str:
    return f"```python\n{LABEL}\n{code.strip()}\n```\n"


class _Scripted:
    """A model that gives the answers ``prefix`` names (0: the reference, i: wrong variant i)
    and stops at the first call beyond it, noting that call's p."""

    def __init__(self, prefix: tuple[int, ...], task: SimTask, model: SimulatedModel) -> None:
        self.prefix, self.task, self.model = prefix, task, model
        self.p_next, self.made = 0.0, 0

    def complete(self, messages: list[dict[str, str]], **_: Any) -> dict[str, str]:
        index, p = self.made, self.model.probability(messages, self.task)[0]
        self.made += 1
        if index == len(self.prefix):
            self.p_next = p
            raise _Branch
        choice = self.prefix[index]
        code = self.task.reference if choice == 0 else self.task.wrong_variants[choice - 1]
        return {"text": answer(code)}


def true_pass_rate(agent: ModuleType, view: SimpleNamespace, task: SimTask,
                   model: SimulatedModel) -> float:
    """P(the agent's solve returns the reference), over every answer sequence."""
    total, v = 0.0, len(task.wrong_variants)
    stack: list[tuple[tuple[int, ...], float]] = [((), 1.0)]
    while stack:
        prefix, weight = stack.pop()
        scripted = _Scripted(prefix, task, model)
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(EXAMPLE_SECONDS * 4)
        try:
            returned = agent.solve(view, scripted)
        except _Branch:
            p = scripted.p_next
            stack.append((prefix + (0,), weight * p))
            stack.extend((prefix + (i,), weight * (1 - p) / v) for i in range(1, v + 1))
            continue
        except TimeoutError:
            returned = ""
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        total += weight * (task.reference.strip() in str(returned))
    return total


def _views(suite: str, limit: int | None, split_seed: int, sealed: float
           ) -> Iterator[tuple[str, SimpleNamespace, SimTask]]:
    loaded = load_suite(suite)
    tasks = list(loaded.tasks[:limit] if limit else loaded.tasks)
    fractions = {"dev": (1 - sealed) / 2, "heldout": (1 - sealed) / 2}
    if sealed:
        fractions["sealed"] = sealed
    splits = assign_splits([t.id for t in tasks], split_seed, fractions)
    known = sim_tasks(tasks)
    for t in tasks:
        if splits[t.id] == ("sealed" if sealed else "heldout"):
            examples = tuple(SimpleNamespace(call=e.call, result=e.result)
                             for e in t.examples)
            yield t.id, SimpleNamespace(id=t.id, prompt=t.prompt, entry_point=t.entry_point,
                                        examples=examples, kind="function"), known[t.id]


def agent_truth(agent_dir: Path, views: list[tuple[str, SimpleNamespace, SimTask]],
                model: SimulatedModel) -> tuple[list[float], list[str], bool]:
    """(true pass rate per claim-split task, features of its solve prompt, has a retry)."""
    agent = load_agent(agent_dir, f"_truth_{abs(hash(str(agent_dir)))}")
    rates = [true_pass_rate(agent, view, task, model) for _, view, task in views]
    prompt = (agent_dir / "prompts" / "solve.md").read_text()
    retry = "_solve_before_retry" in (agent_dir / "agent.py").read_text()
    features = list(detect_features([{"role": "user", "content": prompt}]))
    return rates, features, retry


def verdict_odds(pairs: list[tuple[list[float], list[float]]], floor: float | None,
                 replications: int, seed: int = 0) -> dict[str, float]:
    """How often decide() gives each label when each seed's generation 0 and selected agent
    are scored afresh at their true per-task rates (one sample), with the report's noise
    floor: the verdicts the truth leads to at this experiment's power."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(LABELS, 0)
    for _ in range(replications):
        drawn = [SeedPair(i, rng.binomial(1, base).astype(float),
                          rng.binomial(1, cand).astype(float))
                 for i, (base, cand) in enumerate(pairs)]
        counts[decide(drawn, split="heldout", noise_floor=floor).label] += 1
    return {k: v / replications for k, v in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--replications", type=int, default=1000,
                        help="fresh scorings of the true rates, for the verdict's odds [1000]")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = json.loads((args.experiment / "report" / "results.json").read_text())
    manifest = json.loads((args.experiment / "experiment.json").read_text())
    first = next(iter(report["runs"]))
    config = first["config"]
    views = list(_views(config["suite"], config.get("limit"), config.get("split_seed", 0),
                        config.get("sealed", 0.0)))
    model = SimulatedModel()
    out: dict[str, Any] = {"runs": {}, "conditions": {}}
    print(f"{len(views)} claim-split tasks; true pass rates under the simulated model\n")
    print(f"{'run':10s} {'sel':>3s} {'gen 0':>6s} {'selected':>8s} {'true gain':>9s}  "
          "selected agent carries")
    per_condition: dict[str, list[float]] = {}
    true_rates: dict[str, list[tuple[list[float], list[float]]]] = {}
    for run in report["runs"]:
        name = run["id"]
        selected = int(run["selection"]["selected"])
        run_dir = args.experiment / "runs" / name
        base_rates, _, _ = agent_truth(run_dir / "agents" / "g0000", views, model)
        rates, features, retry = agent_truth(run_dir / "agents" / f"g{selected:04d}", views,
                                             model)
        base, rate = float(np.mean(base_rates)), float(np.mean(rates))
        gain = rate - base
        true_rates.setdefault(run["condition"], []).append((base_rates, rates))
        carries = ", ".join(features + (["retry loop"] if retry else [])) or "nothing"
        print(f"{name:10s} {selected:3d} {base:6.3f} {rate:8.3f} {100 * gain:+8.1f}pt  "
              f"{carries}")
        out["runs"][name] = {"selected": selected, "base": base, "selected_rate": rate,
                             "true_gain": gain, "features": features, "retry": retry}
        per_condition.setdefault(run["condition"], []).append(gain)
    print()
    verdicts = {c["condition"]: c["verdict"] for c in report["conditions"]}
    for condition, gains in per_condition.items():
        verdict = verdicts[condition]
        pooled = sum(gains) / len(gains)
        truth = ("improves" if pooled > 1e-12 else "regresses" if pooled < -1e-12
                 else "neither")
        floor = verdict["noise_floor"]
        mde = verdict["mde"]
        print(f"{condition}: true pooled gain {100 * pooled:+.1f} points ({truth}); report: "
              f"{verdict['label']}, effect {100 * verdict['effect']:+.1f} points "
              f"(CI {100 * verdict['ci_low']:+.1f} to {100 * verdict['ci_high']:+.1f}, "
              f"p = {verdict['p_value']:.3g}, noise floor {_points(floor)}, "
              f"MDE {_points(mde)})")
        odds = verdict_odds(true_rates[condition], floor, args.replications)
        print("  at the true rates, decide() says: " + ", ".join(
            f"{label} {odds[label]:.3f}" for label in LABELS)
              + f" ({args.replications} fresh scorings, the report's noise floor)")
        out["conditions"][condition] = {"true_gain": pooled, "truth": truth,
                                        "label": verdict["label"], "odds": odds}
    out["experiment"] = manifest["name"]
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
