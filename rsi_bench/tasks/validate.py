"""Checks on tasks themselves (not on agents): every reference passes the hidden tests, and the
visible examples hold for it; for an io task, its brute force agrees with the reference on small
inputs and none of its wrong variants (the simulated model's) passes; for a repo task, the
repository as it is (an empty diff) fails each FAIL_TO_PASS test and passes the PASS_TO_PASS
ones."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace

from rsi_bench.judge import Job, Verdict
from rsi_bench.models.simulated import SimTask
from rsi_bench.tasks import io_tasks
from rsi_bench.tasks.model import Task

# Job key -> what the job checks
CHECKS = {0: "reference", 1: "examples", 2: "idiomatic reference", 3: "examples, idiomatic"}
IO_CHECKS = {4: "brute force agrees", 5: "wrong variant fails"}  # and 0, 1: io tasks only
REPO_CHECKS = {6: "unpatched fails a FAIL_TO_PASS test", 7: "unpatched passes PASS_TO_PASS"}
ALL_CHECKS = {**CHECKS, **IO_CHECKS, **REPO_CHECKS}
MUST_NOT_PASS = frozenset({5})
MUST_FAIL = frozenset({6})  # a test failed: not an error, not an invalid diff


def as_expected(verdict: Verdict) -> bool:
    """Did this validation job come out as it must (pass, or for a wrong variant, not pass)?"""
    if verdict.key in MUST_FAIL:
        return verdict.status == "fail"
    return verdict.passed != (verdict.key in MUST_NOT_PASS)


def repeatable(verdict: Verdict) -> tuple[str, str]:
    """What a repeated judging must reproduce exactly: the status, and for a pass or a fail its
    detail too (how many tests passed, which one failed). The detail of a timeout, an error or
    an oom is left out: which clock stopped a program (CPU or wall), and at which test, depends
    on the machine's load, not on the program."""
    return verdict.status, verdict.detail if verdict.status in ("pass", "fail") else ""


def disagreements(jobs: Sequence[Job], rounds: Sequence[Sequence[Verdict]]) -> list[str]:
    """One line per job whose verdicts differ between judging rounds (``rounds[r][i]`` is job
    ``i``'s verdict in round ``r``), naming the task, the check and every round's verdict."""
    lines = []
    for index, job in enumerate(jobs):
        seen = [verdicts[index] for verdicts in rounds]
        if len({repeatable(v) for v in seen}) > 1:
            each = "; ".join(f"round {r}: {v.status}: {v.detail}" for r, v in enumerate(seen, 1))
            lines.append(f"DISAGREE {job.task.id} ({ALL_CHECKS[job.key]}): {each}")
    return lines


def validation_jobs(tasks: Iterable[Task]) -> list[Job]:
    """The judge jobs that validate ``tasks``: each reference (the idiomatic one too, where the
    task has it) on the hidden tests and on the visible examples. Keys are those of CHECKS."""
    jobs = []
    for task in tasks:
        for key, solution in ((0, task.reference), (2, task.idiomatic_reference)):
            if solution:
                jobs.append(Job(task, solution, key))
                if task.examples:
                    jobs.append(Job(examples_task(task), solution, key + 1))
        if task.kind == "repo":
            jobs += unpatched_jobs(task)
        if task.kind == "io" and task.brute_force:  # public io suites publish none
            jobs.append(Job(io_tasks.cross_check_task(task), task.brute_force, 4))
        if task.kind == "io" and task.reference:
            for variant in SimTask.from_reference(task.reference, task.entry_point).wrong_variants:
                jobs.append(Job(task, variant, 5))
    return jobs


def unpatched_jobs(task: Task) -> list[Job]:
    """The repository with no change: one job per FAIL_TO_PASS test, which must fail alone,
    and one for all the PASS_TO_PASS tests, which must pass."""
    doc = json.loads(task.tests)
    jobs = []
    for test in doc["FAIL_TO_PASS"]:
        alone = json.dumps({**doc, "FAIL_TO_PASS": [test], "PASS_TO_PASS": []}, sort_keys=True)
        jobs.append(Job(replace(task, tests=alone), "", 6))
    if doc["PASS_TO_PASS"]:
        kept = json.dumps({**doc, "FAIL_TO_PASS": doc["PASS_TO_PASS"], "PASS_TO_PASS": []},
                          sort_keys=True)
        jobs.append(Job(replace(task, tests=kept), "", 7))
    return jobs


def examples_task(task: Task) -> Task:
    """The same task with tests made of its visible examples only.

    Each example's ``call`` names the entry point, which the judge binds to the solution, so
    judging the reference on this task checks that every example the agent is shown is true.
    """
    if task.kind == "io":
        return io_tasks.examples_task(task)
    lines = ["def check(candidate):"]
    for example in task.examples:
        lines.append(f"    assert ({example.call}) == ({example.result}), {example.call!r}")
    if len(lines) == 1:
        lines.append("    pass")
    return replace(task, id=task.id, tests="\n".join(lines) + "\n")
