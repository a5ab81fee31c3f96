"""Tasks of kind ``io``: a program reads standard input and writes standard output.

The TOML format (tasks/README.md, "io tasks") is checked here, and the hidden part of the task
becomes one JSON document in ``Task.tests``, read by the judge runner (``judge/io_job.py``):

    {"checker": "exact" | "tokens" | "float" | "program", "tolerance": float,
     "checker_program": src, "time_limit_s": float, "memory_mb": int,
     "cases": [{"input", "output"}], "generator": src, "generated": [{"seed", "size"}],
     "small_size": int}

``cases`` are the visible examples followed by the hidden tests; ``generated`` tests are made in
the runner by ``generate(random.Random(seed), size)``, their expected output being the
reference's (validation checks the reference against the brute force on small generated inputs).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from rsi_bench import pyparse
from rsi_bench.errors import TaskFormatError
from rsi_bench.tasks.model import Example, Task

CHECKERS = ("exact", "tokens", "float", "program")
REQUIRED = ("schema_version", "kind", "prompt", "reference", "brute_force", "tests",
            "time_limit_s")
OPTIONAL = ("difficulty", "tags", "examples", "memory_mb", "checker", "tolerance",
            "checker_program", "generator", "generated", "small_size")
ENTRY_POINT = "main"
CROSS_CHECKS = 30  # small generated inputs the brute force must agree on


def io_task_from_mapping(data: Mapping[str, Any], *, task_id: str, where: str, source: str,
                         known_tags: frozenset[str]) -> Task:
    def fail(field: str, problem: str) -> TaskFormatError:
        return TaskFormatError(f"{where}: field '{field}': {problem}")

    for key in data:
        if key not in REQUIRED and key not in OPTIONAL:
            raise fail(key, "unknown field (known: " + ", ".join(REQUIRED + OPTIONAL) + ")")
    for key in REQUIRED:
        if key not in data:
            raise fail(key, "missing")
    if data["schema_version"] != 1 or type(data["schema_version"]) is not int:
        raise fail("schema_version", "must be the integer 1")
    programs = {}
    for key in ("prompt", "reference", "brute_force", "generator", "checker_program"):
        if key in data:
            if not isinstance(data[key], str) or not data[key].strip():
                raise fail(key, "must be a non-empty string")
            programs[key] = data[key]
    for key, wanted in (("reference", ENTRY_POINT), ("brute_force", None),
                        ("generator", "generate"), ("checker_program", "check")):
        if key in programs:
            _require(programs[key], wanted, key, fail)

    checker = data.get("checker", "tokens")
    if checker not in CHECKERS:
        raise fail("checker", f"must be one of {', '.join(CHECKERS)}")
    if (checker == "program") != ("checker_program" in programs):
        raise fail("checker_program", "required exactly when checker = 'program'")
    tolerance = data.get("tolerance", 1e-6)
    if not isinstance(tolerance, int | float) or not 0 <= tolerance < 1:
        raise fail("tolerance", "must be a number in [0, 1)")
    time_limit = data["time_limit_s"]
    if not isinstance(time_limit, int | float) or not 0 < time_limit <= 20:
        raise fail("time_limit_s", "must be a number of seconds in (0, 20]")
    memory = data.get("memory_mb", 256)
    if type(memory) is not int or not 64 <= memory <= 2048:
        raise fail("memory_mb", "must be an integer from 64 to 2048")
    difficulty = data.get("difficulty")
    if difficulty is not None and difficulty not in (1, 2, 3):
        raise fail("difficulty", "must be 1 (easy), 2 (medium) or 3 (hard)")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not set(tags) <= known_tags:
        raise fail("tags", f"must be a list of known tags ({', '.join(sorted(known_tags))})")

    examples = _pairs(data.get("examples", []), "examples", fail)
    hidden = _pairs(data["tests"], "tests", fail)
    if not hidden:
        raise fail("tests", "must hold at least one [[tests]] table")
    generated = data.get("generated", [])
    if generated and "generator" not in programs:
        raise fail("generated", "needs a generator")
    if not isinstance(generated, list) or not all(
            isinstance(g, dict) and set(g) == {"seed", "size"}
            and all(type(v) is int for v in g.values()) for g in generated):
        raise fail("generated", "must be a list of {seed = int, size = int}")
    small = data.get("small_size", 6)
    if type(small) is not int or small < 1:
        raise fail("small_size", "must be a positive integer")

    spec = {"checker": checker, "tolerance": float(tolerance),
            "checker_program": programs.get("checker_program", ""),
            "time_limit_s": float(time_limit), "memory_mb": memory,
            "cases": [{"input": e.input, "output": e.output} for e in examples + hidden],
            "generator": programs.get("generator", ""), "generated": generated,
            "small_size": small}
    limits = f"\nLimits: {time_limit:g} s of CPU time per test, {memory} MB of memory.\n"
    return Task(id=task_id, prompt=programs["prompt"].rstrip("\n") + "\n" + limits,
                entry_point=ENTRY_POINT,
                tests=json.dumps(spec, sort_keys=True, ensure_ascii=False),
                reference=programs["reference"], examples=tuple(examples), source=source,
                difficulty=difficulty, tags=tuple(tags), kind="io",
                brute_force=programs["brute_force"])


def _pairs(raw: Any, field: str, fail: Any) -> tuple[Example, ...]:
    if not isinstance(raw, list):
        raise fail(field, f"must be an array of tables ([[{field}]])")
    pairs = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"input", "output"} or not all(
                isinstance(v, str) for v in item.values()):
            raise fail(f"{field}[{index}]", "must be a table of two strings, input and output")
        pairs.append(Example(call=item["input"], result=item["output"]))
    return tuple(pairs)


def _require(source: str, function: str | None, field: str, fail: Any) -> None:
    try:
        tree = pyparse.parse(source)
        compile(source, field, "exec")
    except (SyntaxError, ValueError) as exc:
        raise fail(field, f"does not compile: {exc}") from None
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if function is not None and function not in names:
        raise fail(field, f"does not define {function}() at top level")


def spec(task: Task) -> dict[str, Any]:
    """The hidden part of an io task, as the runner reads it."""
    return json.loads(task.tests)


def with_spec(task: Task, **changes: Any) -> Task:
    """The same task with some of its hidden spec replaced (for validation's variants)."""
    return replace(task, tests=json.dumps({**spec(task), **changes}, sort_keys=True,
                                          ensure_ascii=False))


def examples_task(task: Task) -> Task:
    """Only the visible examples, as tests: the reference must get each one right."""
    cases = [{"input": e.input, "output": e.output} for e in task.examples]
    return with_spec(task, cases=cases, generated=[])


def cross_check_task(task: Task) -> Task:
    """The hidden cases and small generated inputs, with a generous time limit: the brute
    force judged on it must agree with the reference (whose output the generated tests expect)."""
    doc = spec(task)
    small = [{"seed": 1_000_003 + i, "size": doc["small_size"]}
             for i in range(CROSS_CHECKS if doc["generator"] else 0)]
    return with_spec(task, generated=small, time_limit_s=max(doc["time_limit_s"], 10.0))
