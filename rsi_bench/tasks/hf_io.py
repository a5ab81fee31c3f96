"""io suites from public datasets, read in their published schemas: ``layout=livecodebench``
(``livecodebench/code_generation_lite``) and ``layout=codecontests`` (``deepmind/code_contests``).

Each row becomes a task of kind ``io`` (tasks/io_tasks.py) whose cases are the row's visible tests
followed by its hidden ones, judged as the dataset's own evaluation judges them:

- LiveCodeBench: the public and the private test cases, every one run (as its runner does); the
  output is right when, after stripping, it has as many lines as the expected one and each line
  is equal to the expected line or, read as whitespace-separated decimal numbers, equal to it
  number by number (LiveCodeBench's own rule, written here as the task's checker program).
  6 s per test (LiveCodeBench's default timeout). Problems whose tests call a function
  (LeetCode's ``functional`` test type) are not stdin/stdout tasks and are left out; the suite's
  description counts them. The private tests are stored as base64 of zlib of a pickled JSON
  string: the pickle is read by an unpickler that refuses every global, so a row can hold
  strings and numbers only and never runs code on the host.
- CodeContests: public, private and generated tests; the row's time limit (seconds) and memory
  limit, clamped to what io tasks allow (20 s, 64-2048 MB); outputs compared token by token
  (``checker=`` overrides it). The reference is the row's first Python 3 solution, if any.
  Problems that read or write named files instead of standard streams are left out.

Neither dataset has a brute force, so validation's cross-check has nothing to run for them.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from rsi_bench.errors import TaskFormatError
from rsi_bench.tasks.io_tasks import CHECKERS, ENTRY_POINT
from rsi_bench.tasks.model import Example, Task

IO_LAYOUTS = ("livecodebench", "codecontests")
LCB_TIME_LIMIT_S = 6.0
LCB_MEMORY_MB = 1024
PYTHON3 = 3  # CodeContests' Language enum: UNKNOWN, PYTHON (2), CPP, PYTHON3, JAVA
_GRADES = {"easy": 1, "medium": 2, "hard": 3}
STDIO = "Read the input from standard input and write the answer to standard output."

# LiveCodeBench's comparison of a program's output with the expected one (its grade_stdio):
# runs in the judge runner, never in the program's process.
LCB_CHECKER = '''
from decimal import Decimal, InvalidOperation


def _lines(text):
    return [line.strip() for line in text.strip().split("\\n")]


def _numbers(line):
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def check(input, output, expected):
    got, want = _lines(output), _lines(expected)
    if len(got) != len(want):
        return False
    for a, b in zip(got, want):
        if a == b:
            continue
        x, y = _numbers(a), _numbers(b)
        if x is None or y is None or x != y:
            return False
    return True
'''


def rows_to_io_tasks(rows: Sequence[Mapping[str, Any]], layout: str, *, where: str,
                     checker: str | None = None) -> tuple[list[Task], str]:
    """Tasks from ``rows``, and a note on the rows left out (empty if none)."""
    if checker is not None and checker not in CHECKERS[:3]:
        raise TaskFormatError(f"{where}: checker {checker!r}: must be one of "
                              f"{', '.join(CHECKERS[:3])}")
    build = _livecodebench if layout == "livecodebench" else _codecontests
    tasks, left_out = [], 0
    for index, row in enumerate(rows):
        task = build(row, f"{where}: row {index}", checker, where)
        if task is None:
            left_out += 1
        else:
            tasks.append(task)
    reason = ("call a function (LeetCode), not stdin/stdout" if layout == "livecodebench"
              else "read or write named files, not stdin/stdout")
    note = f"{left_out} of {len(rows)} rows left out: they {reason}" if left_out else ""
    return tasks, note


def _livecodebench(row: Mapping[str, Any], where: str, checker: str | None,
                   source: str) -> Task | None:
    public = _cases(_json(_field(row, "public_test_cases", where), "public_test_cases", where),
                    "public_test_cases", where)
    private = _cases(_private(_field(row, "private_test_cases", where), where),
                     "private_test_cases", where)
    if any(kind != "stdin" for kind, _i, _o in public + private):
        return None
    if not private and not public:
        raise TaskFormatError(f"{where}: field 'private_test_cases': no test cases")
    title = str(row.get("question_title") or "").strip()
    text = str(_field(row, "question_content", where)).strip()
    prompt = (f"{title}\n\n" if title else "") + f"{text}\n\n{STDIO}\n"
    spec = _spec(public + private, LCB_TIME_LIMIT_S, LCB_MEMORY_MB, checker or "program",
                 "" if checker else LCB_CHECKER)
    grade = _GRADES.get(str(row.get("difficulty") or "").lower())
    task_id = f"LiveCodeBench/{_slug(str(_field(row, 'question_id', where)))}"
    return _task(task_id, prompt, spec, public, "", grade, source)


def _codecontests(row: Mapping[str, Any], where: str, checker: str | None,
                  source: str) -> Task | None:
    if str(row.get("input_file") or "").strip() or str(row.get("output_file") or "").strip():
        return None
    public = _columns(_field(row, "public_tests", where), "public_tests", where)
    hidden = (_columns(row.get("private_tests") or {}, "private_tests", where)
              + _columns(row.get("generated_tests") or {}, "generated_tests", where))
    if not public and not hidden:
        raise TaskFormatError(f"{where}: no tests in public_tests, private_tests or "
                              "generated_tests")
    limit = row.get("time_limit") or {}
    seconds = float(limit.get("seconds") or 0) + float(limit.get("nanos") or 0) / 1e9 \
        if isinstance(limit, Mapping) else 0.0
    memory = int(row.get("memory_limit_bytes") or 0) // 2**20
    spec = _spec(public + hidden, min(20.0, seconds) if seconds > 0 else 2.0,
                 min(2048, max(64, memory)) if memory else 256, checker or "tokens", "")
    solutions = row.get("solutions") or {}
    reference = ""
    if isinstance(solutions, Mapping):
        for language, code in zip(solutions.get("language") or [],
                                  solutions.get("solution") or [], strict=False):
            if language == PYTHON3 and isinstance(code, str) and code.strip():
                reference = code
                break
    grade = row.get("difficulty")
    task_id = f"CodeContests/{_slug(str(_field(row, 'name', where)))}"
    prompt = f"{str(_field(row, 'description', where)).strip()}\n\n{STDIO}\n"
    return _task(task_id, prompt, spec, public, reference,
                 grade if grade in (1, 2, 3) else None, source)


def _task(task_id: str, prompt: str, spec: dict, public: list, reference: str,
          grade: int | None, source: str) -> Task:
    limits = (f"\nLimits: {spec['time_limit_s']:g} s of CPU time per test, "
              f"{spec['memory_mb']} MB of memory.\n")
    return Task(id=task_id, prompt=prompt + limits, entry_point=ENTRY_POINT,
                tests=json.dumps(spec, sort_keys=True, ensure_ascii=False), reference=reference,
                examples=tuple(Example(call=i, result=o) for _k, i, o in public),
                source=source, difficulty=grade, kind="io")


def _spec(cases: list, time_limit: float, memory_mb: int, checker: str, program: str) -> dict:
    return {"checker": checker, "tolerance": 1e-6, "checker_program": program,
            "time_limit_s": time_limit, "memory_mb": memory_mb,
            "cases": [{"input": i, "output": o} for _k, i, o in cases],
            "generator": "", "generated": [], "small_size": 1}


def _field(row: Mapping[str, Any], name: str, where: str) -> Any:
    value = row.get(name)
    if value is None:
        raise TaskFormatError(f"{where}: column '{name}': missing "
                              f"(columns: {', '.join(map(str, row))})")
    return value


def _json(text: Any, name: str, where: str) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFormatError(f"{where}: column '{name}': not JSON: {exc.msg}") from None


class _DataOnly(pickle.Unpickler):
    """Strings, numbers, lists and dicts only: a pickle naming any global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _private(value: Any, where: str) -> Any:
    """LiveCodeBench's private tests: JSON, or base64 of zlib of a pickled JSON string."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        raw = zlib.decompress(base64.b64decode(value.encode("ascii"), validate=True))
        inner = _DataOnly(io.BytesIO(raw)).load()
    except Exception as exc:  # noqa: BLE001 - one line naming the column
        raise TaskFormatError(f"{where}: column 'private_test_cases': neither JSON nor "
                              f"base64/zlib/pickle of JSON ({type(exc).__name__}: {exc})") from None
    return _json(inner, "private_test_cases", where)


def _cases(value: Any, name: str, where: str) -> list[tuple[str, str, str]]:
    """(testtype, input, output) from LiveCodeBench's list of test-case objects."""
    if not isinstance(value, list) or not all(
            isinstance(c, Mapping) and isinstance(c.get("input"), str)
            and isinstance(c.get("output"), str) for c in value):
        raise TaskFormatError(f"{where}: column '{name}': must be a list of "
                              "{input, output, testtype} objects")
    return [(str(c.get("testtype", "stdin")), c["input"], c["output"]) for c in value]


def _columns(value: Any, name: str, where: str) -> list[tuple[str, str, str]]:
    """(stdin, input, output) from CodeContests' {input: [...], output: [...]}."""
    if not isinstance(value, Mapping):
        raise TaskFormatError(f"{where}: column '{name}': must be {{input: [...], output: [...]}}")
    inputs, outputs = list(value.get("input") or []), list(value.get("output") or [])
    if len(inputs) != len(outputs) or not all(isinstance(x, str) for x in inputs + outputs):
        raise TaskFormatError(f"{where}: column '{name}': input and output must be lists of "
                              "strings of the same length")
    return [("stdin", i, o) for i, o in zip(inputs, outputs, strict=True)]


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_")
    if not slug:
        raise TaskFormatError(f"task id {text!r}: nothing usable in it")
    return slug

