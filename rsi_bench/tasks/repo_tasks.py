"""Tasks of kind ``repo``: a small repository, a problem statement, and hidden pytest tests
(SWE-bench's shape and field names). The TOML format is tasks/README.md, "repo tasks".

The hidden part becomes one JSON document in ``Task.tests``, read by ``judge/repo_job.py``:

    {"files": {path: text}, "test_patch": diff, "FAIL_TO_PASS": [node id],
     "PASS_TO_PASS": [node id], "base_commit": str, "time_limit_s": float}

``Task.reference`` is the reference diff; ``Task.prompt`` is the problem statement followed by
the repository's files (what an agent sees; never the test_patch).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from rsi_bench.errors import TaskFormatError
from rsi_bench.judge.repo_diff import DiffError, parse, safe_path
from rsi_bench.tasks.model import Task

REQUIRED = ("schema_version", "kind", "problem_statement", "files", "FAIL_TO_PASS",
            "PASS_TO_PASS", "test_patch", "reference")
OPTIONAL = ("base_commit", "difficulty", "tags", "time_limit_s")
TIME_LIMIT_S = 30.0  # CPU seconds of the whole pytest run; its wall clock is 4 x this + 10 s


def files_hash(files: Mapping[str, str]) -> str:
    """A content hash standing in for a commit: the sorted paths and their texts."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    return digest.hexdigest()[:40]


def render(statement: str, files: Mapping[str, str]) -> str:
    parts = [statement.rstrip("\n"), "", "Repository files:"]
    for path in sorted(files):
        parts += ["", f"--- {path}", files[path].rstrip("\n")]
    return "\n".join(parts) + "\n"


def repo_task_from_mapping(data: Mapping[str, Any], *, task_id: str, where: str, source: str,
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
    for key in ("problem_statement", "test_patch", "reference"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(key, "must be a non-empty string")
    files = data["files"]
    if not isinstance(files, dict) or not files or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise fail("files", "must be a table of path = text")
    for path in files:
        try:
            safe_path(path)
        except DiffError as exc:
            raise fail("files", str(exc)) from None
    for key in ("test_patch", "reference"):
        try:
            parse(data[key])
        except DiffError as exc:
            raise fail(key, f"not a unified diff: {exc}") from None
    for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
        ids = data[key]
        if not isinstance(ids, list) or not all(isinstance(i, str) and "::" in i for i in ids):
            raise fail(key, "must be a list of pytest node ids (path::test)")
    if not data["FAIL_TO_PASS"]:
        raise fail("FAIL_TO_PASS", "must name at least one test")
    difficulty = data.get("difficulty")
    if difficulty is not None and difficulty not in (1, 2, 3):
        raise fail("difficulty", "must be 1 (easy), 2 (medium) or 3 (hard)")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not set(tags) <= known_tags:
        raise fail("tags", f"must be a list of known tags ({', '.join(sorted(known_tags))})")
    limit = data.get("time_limit_s", TIME_LIMIT_S)
    if type(limit) not in (int, float) or not 1 <= limit <= 600:
        raise fail("time_limit_s", "must be a number of seconds from 1 to 600")
    base = data.get("base_commit", files_hash(files))
    spec = {"files": dict(files), "test_patch": data["test_patch"],
            "FAIL_TO_PASS": list(data["FAIL_TO_PASS"]), "PASS_TO_PASS": list(data["PASS_TO_PASS"]),
            "base_commit": base, "time_limit_s": float(limit)}
    return Task(id=task_id, prompt=render(data["problem_statement"], files), entry_point="",
                tests=json.dumps(spec, sort_keys=True, ensure_ascii=False),
                reference=data["reference"], source=source, difficulty=difficulty,
                tags=tuple(tags), kind="repo")


def spec(task: Task) -> dict[str, Any]:
    """The hidden part of a repo task, as the judge reads it."""
    return json.loads(task.tests)
