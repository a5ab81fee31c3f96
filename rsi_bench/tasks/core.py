"""Load a directory of TOML task files (the format of tasks/README.md) into a Suite.

Every problem is reported as a TaskFormatError whose message starts with the file and names the
field, so a task author can fix it without reading this module.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rsi_bench import pyparse
from rsi_bench.errors import SuiteError, TaskFormatError
from rsi_bench.tasks.model import SCHEMA_VERSION, Example, Suite, Task

KNOWN_TAGS = frozenset(
    {"examples", "edge-cases", "self-check", "spec-detail", "algorithm", "parsing", "numeric"}
)
REQUIRED = ("schema_version", "entry_point", "prompt", "reference", "tests")
OPTIONAL = ("idiomatic_reference", "difficulty", "tags", "examples", "kind")
_STEM = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def load_toml_suite(
    directory: str | Path, *, name: str | None = None, seed: int = 0, source: str | None = None
) -> Suite:
    """Load every ``*.toml`` in ``directory``; ids are ``<name>/<file stem>``, ordered by id."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SuiteError(f"{_display(directory)}: not a directory of task files")
    name = name or directory.name
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise SuiteError(f"{_display(directory)}: no task files (*.toml)")
    tasks = [load_task_file(path, suite_name=name, source=source or name) for path in files]
    tasks.sort(key=lambda task: task.id)
    return Suite(name=name, tasks=tuple(tasks), seed=seed, description=f"TOML tasks from {name}")


def load_task_file(path: str | Path, *, suite_name: str, source: str | None = None) -> Task:
    """Parse and validate one task file."""
    path = Path(path)
    where = _display(path)
    if not _STEM.match(path.stem):
        raise TaskFormatError(f"{where}: file name must be snake_case ([a-z0-9_], .toml)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TaskFormatError(f"{where}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskFormatError(f"{where}: cannot read: {exc}") from None
    return task_from_mapping(
        data, task_id=f"{suite_name}/{path.stem}", where=where, source=source or suite_name
    )


def task_from_mapping(
    data: Mapping[str, Any], *, task_id: str, where: str, source: str
) -> Task:
    """Validate a parsed task table and build the Task (``where`` prefixes every message)."""

    def fail(field: str, problem: str) -> TaskFormatError:
        return TaskFormatError(f"{where}: field '{field}': {problem}")

    if data.get("kind", "function") == "io":
        from rsi_bench.tasks.io_tasks import io_task_from_mapping

        return io_task_from_mapping(data, task_id=task_id, where=where, source=source,
                                    known_tags=KNOWN_TAGS)
    if data.get("kind", "function") == "repo":
        from rsi_bench.tasks.repo_tasks import repo_task_from_mapping

        return repo_task_from_mapping(data, task_id=task_id, where=where, source=source,
                                      known_tags=KNOWN_TAGS)
    if data.get("kind", "function") != "function":
        raise fail("kind", "must be 'function', 'io' or 'repo'")
    for key in data:
        if key not in REQUIRED and key not in OPTIONAL:
            raise fail(key, "unknown field (known: " + ", ".join(REQUIRED + OPTIONAL) + ")")
    for key in REQUIRED:
        if key not in data:
            raise fail(key, "missing")

    version = data["schema_version"]
    if type(version) is not int:
        raise fail("schema_version", "must be an integer")
    if version != SCHEMA_VERSION:
        raise fail("schema_version", f"unsupported version {version} (expected {SCHEMA_VERSION})")

    strings = {}
    for key in ("entry_point", "prompt", "reference", "tests"):
        value = data[key]
        if not isinstance(value, str):
            raise fail(key, "must be a string")
        if not value.strip():
            raise fail(key, "must not be empty")
        strings[key] = value
    entry_point = strings["entry_point"]
    if not entry_point.isidentifier():
        raise fail("entry_point", f"{entry_point!r} is not a Python identifier")

    idiomatic = data.get("idiomatic_reference")
    if idiomatic is not None:
        if not isinstance(idiomatic, str):
            raise fail("idiomatic_reference", "must be a string")
        if not idiomatic.strip():
            raise fail("idiomatic_reference", "must not be empty")
        strings["idiomatic_reference"] = idiomatic

    for key in ("prompt", "reference", "idiomatic_reference", "tests"):
        if key not in strings:
            continue
        tree = _parse(strings[key], fail, key)
        wanted = "check" if key == "tests" else entry_point
        if wanted not in _top_level_functions(tree):
            what = "tests do not" if key == "tests" else f"{key} does not"
            kind = "'check(candidate)'" if key == "tests" else f"entry_point {entry_point!r}"
            raise fail(key, f"{what} define {kind} at top level")

    difficulty = data.get("difficulty")
    if difficulty is not None and (type(difficulty) is not int or difficulty not in (1, 2, 3)):
        raise fail("difficulty", "must be 1 (easy), 2 (medium) or 3 (hard)")

    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise fail("tags", "must be a list of strings")
    unknown = sorted(set(tags) - KNOWN_TAGS)
    if unknown:
        raise fail("tags", f"unknown tag(s) {unknown} (known: {', '.join(sorted(KNOWN_TAGS))})")

    examples = _examples(data.get("examples", []), fail)
    return Task(
        id=task_id,
        prompt=strings["prompt"],
        entry_point=entry_point,
        tests=strings["tests"],
        reference=strings["reference"],
        idiomatic_reference=strings.get("idiomatic_reference", ""),
        examples=examples,
        source=source,
        difficulty=difficulty,
        tags=tuple(tags),
    )


def _examples(raw: Any, fail: Any) -> tuple[Example, ...]:
    if not isinstance(raw, list):
        raise fail("examples", "must be an array of tables ([[examples]])")
    examples = []
    for index, item in enumerate(raw):
        field = f"examples[{index}]"
        if not isinstance(item, dict):
            raise fail(field, "must be a table with 'call' and 'result'")
        extra = sorted(set(item) - {"call", "result"})
        if extra:
            raise fail(field, f"unknown key(s) {extra} (known: call, result)")
        for key in ("call", "result"):
            if key not in item:
                raise fail(f"{field}.{key}", "missing")
            if not isinstance(item[key], str):
                raise fail(f"{field}.{key}", "must be a string")
            _parse(item[key], fail, f"{field}.{key}", mode="eval")
        examples.append(Example(call=item["call"], result=item["result"]))
    return tuple(examples)


def _parse(source: str, fail: Any, field: str, mode: str = "exec") -> ast.AST:
    try:
        tree = pyparse.parse(source, filename=field, mode=mode)
        compile(source, field, mode)  # catches what parsing alone allows, e.g. a bare return
    except SyntaxError as exc:
        raise fail(field, f"does not compile: {exc.msg} (line {exc.lineno})") from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise fail(field, f"does not compile: {exc}") from None
    return tree


def _top_level_functions(tree: ast.AST) -> set[str]:
    body = getattr(tree, "body", [])
    return {
        node.name for node in body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _display(path: Path) -> str:
    """The path relative to the working directory when it is below it, for short messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
