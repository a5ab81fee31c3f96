"""Every rsi-core and HumanEval task validates itself, and known-wrong programs do not pass.

Verdicts come from the real judge in a real sandbox: both references of every rsi-core task
(the idiomatic one uses stdlib helpers, generators and subclassed exceptions), every HumanEval
reference and every known-wrong program are judged once per module. ``run_in_process`` remains
only to record which calls the hidden tests make (to check that the visible examples are among
them); it never decides a verdict.
"""

from __future__ import annotations

import ast
import copy
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sandboxes import require_backend

from rsi_bench.judge import Job, Judge, Verdict
from rsi_bench.tasks import Task, TaskView, load_suite
from rsi_bench.tasks.validate import CHECKS, validation_jobs

WRONG = Path(__file__).resolve().parent.parent / "data" / "wrong_solutions.jsonl"
KINDS = {"off-by-one", "wrong-type", "empty-body", "exception", "syntax-error",
         "missing-entry-point"}
PLAIN = (type(None), bool, int, float, str, bytes, list, tuple, dict, set, frozenset)

CORE = load_suite("rsi-core")
HUMANEVAL = load_suite("humaneval")


class NotPlainData(AssertionError):
    """The test passed to, or got from, the candidate something the judge cannot carry."""


def check_plain(value: Any, where: str) -> None:
    if not isinstance(value, PLAIN):
        raise NotPlainData(f"{where}: {type(value).__name__} is not plain data")
    if isinstance(value, dict):
        for key, item in value.items():
            check_plain(key, where)
            check_plain(item, where)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_plain(item, where)


def run_in_process(task: Task, solution: str, calls: list | None = None) -> str:
    """'pass', 'fail', 'error' or 'invalid', with the judge's meanings."""
    try:
        code = compile(solution, "<solution>", "exec")
    except (SyntaxError, ValueError):
        return "invalid"
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        exec(code, namespace)
    except Exception:
        return "error"
    function = namespace.get(task.entry_point)
    if not callable(function):
        return "invalid"
    raised: list[BaseException] = []

    def candidate(*args: Any) -> Any:
        check_plain(args, f"{task.id}: argument")
        if calls is not None:
            calls.append(args)
        try:
            result = function(*copy.deepcopy(args))
        except Exception as exc:
            raised.append(exc)
            raise
        check_plain(result, f"{task.id}: return value")
        return copy.deepcopy(result)

    tests: dict[str, Any] = {"__name__": "__tests__"}
    exec(task.prompt, tests)
    tests[task.entry_point] = candidate  # as the judge binds it
    exec(task.tests, tests)
    random.seed(0)
    try:
        tests["check"](candidate)
    except NotPlainData:
        raise
    except Exception as exc:
        return "error" if raised and raised[-1] is exc else "fail"
    return "pass"


@pytest.fixture(scope="module")
def judged() -> dict[tuple[str, str], Verdict]:
    """(task id, what was checked) -> verdict, for every validation job and wrong solution."""
    require_backend("docker")
    jobs = validation_jobs([*CORE, *HUMANEVAL])
    wrong = _wrong_solutions()
    jobs += [Job(_task(item["task_id"]), item["solution"], 100 + i) for i, item in enumerate(wrong)]
    with Judge("docker", workers=2, timeout=20.0, run_label="rsi-core-tests") as judge:
        verdicts = judge.judge_many(jobs)
    names = {**CHECKS, **{100 + i: f"wrong {i}" for i in range(len(wrong))}}
    return {(v.task_id, names[v.key]): v for v in verdicts}


@pytest.mark.docker
@pytest.mark.parametrize("task", CORE.tasks, ids=lambda task: task.id)
@pytest.mark.parametrize("check", list(CHECKS.values()))
def test_both_references_pass_in_the_judge(task: Task, check: str,
                                           judged: dict[tuple[str, str], Verdict]) -> None:
    verdict = judged[(task.id, check)]
    assert verdict.status == "pass", f"{check}: {verdict.status}: {verdict.detail}"


@pytest.mark.parametrize("task", CORE.tasks, ids=lambda task: task.id)
def test_every_rsi_core_task_has_a_different_idiomatic_reference(task: Task) -> None:
    assert task.idiomatic_reference.strip()
    assert ast.dump(ast.parse(task.idiomatic_reference)) != ast.dump(ast.parse(task.reference))


@pytest.mark.parametrize("task", CORE.tasks, ids=lambda task: task.id)
def test_examples_hold_for_the_reference_and_are_tested(task: Task) -> None:
    assert task.examples, "every rsi-core task shows at least one example"
    reference: dict[str, Any] = {}
    exec(task.reference, reference)
    for example in task.examples:
        got = eval(example.call, dict(reference))
        expected = eval(example.result, {})
        assert got == expected and type(got) is type(expected), example
    tested: list = []
    assert run_in_process(task, task.reference, calls=tested) == "pass"
    for example in task.examples:
        shown = eval(example.call, {task.entry_point: lambda *args: args})
        assert shown in tested, f"example {example.call} is not in the hidden tests"


@pytest.mark.parametrize("task", CORE.tasks, ids=lambda task: task.id)
def test_hidden_tests_have_8_to_20_asserts(task: Task) -> None:
    asserts = sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(task.tests)))
    assert 8 <= asserts <= 20


@pytest.mark.docker
@pytest.mark.parametrize("task", HUMANEVAL.tasks, ids=lambda task: task.id)
def test_humaneval_reference_passes_in_the_judge(
        task: Task, judged: dict[tuple[str, str], Verdict]) -> None:
    verdict = judged[(task.id, "reference")]
    assert verdict.status == "pass", f"{verdict.status}: {verdict.detail}"


def test_suite_is_graded() -> None:
    counts = Counter(task.difficulty for task in CORE)
    assert len(CORE) >= 44
    assert counts[1] >= 12 and counts[2] >= 14 and counts[3] >= 10, counts
    tags = Counter(tag for task in CORE for tag in task.tags)
    for tag in ("examples", "edge-cases", "self-check"):
        assert tags[tag] >= 5, (tag, tags)


def _wrong_solutions() -> list[dict[str, str]]:
    return [json.loads(line) for line in WRONG.read_text(encoding="utf-8").splitlines() if line]


def _task(task_id: str) -> Task:
    suite = CORE if task_id.startswith("rsi-core/") else HUMANEVAL
    return suite.get(task_id)


def test_wrong_solutions_file_covers_every_kind_and_both_suites() -> None:
    items = _wrong_solutions()
    assert len(items) >= 24
    for item in items:
        assert set(item) == {"task_id", "kind", "solution", "expected"}
        assert item["kind"] in KINDS
        assert item["expected"] in {"fail", "error", "invalid"}
        assert item["task_id"] in CORE or item["task_id"] in HUMANEVAL
    assert {item["kind"] for item in items} == KINDS
    assert any(item["task_id"] in CORE for item in items)
    assert any(item["task_id"] in HUMANEVAL for item in items)


@pytest.mark.docker
@pytest.mark.parametrize(
    "index, item", list(enumerate(_wrong_solutions())),
    ids=lambda value: f"{value['task_id']}-{value['kind']}" if isinstance(value, dict) else ""
)
def test_wrong_solution_does_not_pass(index: int, item: dict[str, str],
                                      judged: dict[tuple[str, str], Verdict]) -> None:
    verdict = judged[(item["task_id"], f"wrong {index}")]
    assert verdict.status == item["expected"], verdict.detail


def test_the_agent_view_carries_no_reference() -> None:
    from dataclasses import fields

    from rsi_bench.agents.container import _task_json

    assert {f.name for f in fields(TaskView)} == {"id", "prompt", "entry_point", "examples",
                                              "kind", "files"}
    from rsi_bench.tasks import load_suite

    for task in load_suite("rsi-repo"):  # files: a repo task's visible repository, nothing else
        spec = json.loads(task.tests)
        sent = json.dumps(_task_json(task.view()))
        for secret in (task.reference, spec["test_patch"], *spec["FAIL_TO_PASS"]):
            assert json.dumps(secret.strip())[1:-1] not in sent, task.id
        path, text = sorted(spec["files"].items())[0]
        assert json.dumps(text.strip())[1:-1] in sent  # the control: a visible file is found
    for task in CORE:
        sent = json.dumps(_task_json(task.view()))  # what a solve container receives
        for secret in (task.reference, task.idiomatic_reference, task.tests):
            assert json.dumps(secret.strip())[1:-1] not in sent
        assert json.dumps(task.prompt.strip())[1:-1] in sent  # the control: the prompt is found
