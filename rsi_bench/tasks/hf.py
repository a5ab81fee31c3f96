"""Suites from Hugging Face ``datasets``: ``hf:<dataset>[?key=value&...]``.

``<dataset>`` is a hub name, a ``save_to_disk`` directory, another local dataset directory or a
``.jsonl``/``.json``/``.parquet``/``.csv`` file. Keys: ``split`` (default ``test``, else the only
split), ``layout`` (a preset column mapping from ``LAYOUTS``), ``config`` and ``revision`` (for
the hub), and a task field name from ``FIELDS`` to map it to another column, e.g.
``hf:mbpp?layout=mbpp&prompt=text``. The io layouts (``livecodebench``, ``codecontests``) read
their datasets' own schemas (hf_io.py) and take ``checker`` instead of column names; the
``swebench`` layout reads SWE-bench's (hf_swebench.py) as repo tasks and takes ``image`` and
``python`` (the instance's environment image and its interpreter).
tasks/README.md has the details.
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from rsi_bench import pyparse
from rsi_bench.errors import SuiteError, TaskFormatError
from rsi_bench.tasks.core import task_from_mapping
from rsi_bench.tasks.hf_io import IO_LAYOUTS, rows_to_io_tasks
from rsi_bench.tasks.hf_swebench import LAYOUT as SWEBENCH
from rsi_bench.tasks.hf_swebench import rows_to_swebench_tasks
from rsi_bench.tasks.model import Suite, Task

FIELDS = ("id", "prompt", "entry_point", "tests", "solution", "reference", "test_list",
          "test_imports")
LAYOUTS: dict[str, dict[str, str]] = {
    # reference = prompt + solution; tests define check(candidate)
    "humaneval": {"id": "task_id", "prompt": "prompt", "solution": "canonical_solution",
                  "tests": "test", "entry_point": "entry_point"},
    # prompt is a description; reference is the code; tests from `test` (MBPP+) or `test_list`
    "mbpp": {"id": "task_id", "prompt": "prompt", "reference": "code", "tests": "test",
             "test_list": "test_list", "test_imports": "test_imports"},
}
ID_PREFIX = {"humaneval": "HumanEval", "mbpp": "Mbpp"}
DATA_FILES = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
_OPTIONS = ("split", "layout", "config", "revision", "checker", "image", "python")
SCHEMA_LAYOUTS = (*IO_LAYOUTS, SWEBENCH)  # read their dataset's own schema: no column options


@dataclass(frozen=True)
class HfSpec:
    dataset: str
    split: str | None = None
    layout: str = "humaneval"
    config: str | None = None
    revision: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    checker: str | None = None  # io layouts: overrides the dataset's own comparison
    image: str | None = None  # swebench: the environment image's template ({instance_id})
    python: str | None = None  # swebench: the interpreter inside that image

    def mapping(self) -> dict[str, str]:
        """Task field -> column: the layout's preset with the spec's overrides."""
        return {**LAYOUTS.get(self.layout, {}), **self.columns}


def parse_hf_spec(spec: str) -> HfSpec:
    """Parse the part of a suite name after ``hf:``."""
    dataset, _, query = spec.partition("?")
    if not dataset:
        raise SuiteError(f"hf:{spec}: no dataset name (expected hf:<dataset>[?split=...])")
    try:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=bool(query))
    except ValueError:
        raise SuiteError(f"hf:{spec}: malformed query {query!r} (expected key=value&...)") from None
    options: dict[str, str] = {}
    columns: dict[str, str] = {}
    for key, value in pairs:
        if key in _OPTIONS:
            options[key] = value
        elif key in FIELDS:
            columns[key] = value
        else:
            known = ", ".join(_OPTIONS + FIELDS)
            raise SuiteError(f"hf:{spec}: unknown option {key!r} (known: {known})")
    layout = options.get("layout", "humaneval")
    if layout not in LAYOUTS and layout not in SCHEMA_LAYOUTS:
        known = ", ".join((*LAYOUTS, *SCHEMA_LAYOUTS))
        raise SuiteError(f"hf:{spec}: unknown layout {layout!r} (known: {known})")
    if layout in SCHEMA_LAYOUTS and columns:
        raise SuiteError(f"hf:{spec}: layout {layout!r} reads its dataset's own schema; column "
                         f"options ({', '.join(columns)}) apply to function layouts only")
    if "checker" in options and layout not in IO_LAYOUTS:
        raise SuiteError(f"hf:{spec}: checker= applies to the io layouts "
                         f"({', '.join(IO_LAYOUTS)}) only")
    for key in ("image", "python"):
        if key in options and layout != SWEBENCH:
            raise SuiteError(f"hf:{spec}: {key}= applies to layout={SWEBENCH} only")
    return HfSpec(dataset, options.get("split"), layout, options.get("config"),
                  options.get("revision"), columns, options.get("checker"),
                  options.get("image"), options.get("python"))


def load_hf_suite(spec: str, *, seed: int = 0) -> Suite:
    """Load ``hf:<spec>`` as a Suite named ``hf:<spec>``, in the dataset's row order."""
    parsed = parse_hf_spec(spec)
    where = f"hf:{parsed.dataset}"
    rows = load_rows(parsed)
    if not rows:
        raise SuiteError(f"{where}: the chosen split has no rows")
    columns = list(rows[0])
    for name, col in parsed.columns.items():  # asked for explicitly, so never optional
        if col not in columns:
            raise TaskFormatError(f"{where}: column '{col}' (task field '{name}'): missing "
                                  f"(columns: {', '.join(columns)})")
    note = ""
    if parsed.layout in IO_LAYOUTS:
        tasks, note = rows_to_io_tasks(rows, parsed.layout, where=where, checker=parsed.checker)
        if not tasks:
            raise SuiteError(f"{where}: no stdin/stdout task in the chosen split ({note})")
    elif parsed.layout == SWEBENCH:
        tasks, note = rows_to_swebench_tasks(rows, where=where, image=parsed.image,
                                             python=parsed.python)
        if not tasks:
            raise SuiteError(f"{where}: no instance the judge can run in the chosen split "
                             f"({note})")
    else:
        tasks = rows_to_tasks(rows, parsed.mapping(), layout=parsed.layout, where=where)
    counts = Counter(task.id for task in tasks)
    duplicates = sorted(task_id for task_id, count in counts.items() if count > 1)
    if duplicates:
        raise TaskFormatError(f"{where}: duplicate task ids {duplicates[:5]}")
    return Suite(name=f"hf:{spec}", tasks=tuple(tasks), seed=seed,
                 description=f"{where} ({note})" if note else where)


def load_rows(spec: HfSpec) -> list[dict[str, Any]]:
    """The rows of the chosen split, as plain dicts."""
    try:
        import datasets
    except ImportError:
        raise SuiteError("hf: suites need the datasets package: pip install datasets") from None
    path = Path(spec.dataset).expanduser()
    where = f"hf:{spec.dataset}"
    try:
        if path.is_dir() and any((path / name).exists() for name in
                                 ("dataset_dict.json", "state.json", "dataset_info.json")):
            loaded = datasets.load_from_disk(str(path))
        elif path.is_dir():
            loaded = datasets.load_dataset(str(path), name=spec.config, split=spec.split)
        elif path.is_file():
            builder = DATA_FILES.get(path.suffix.lower())
            if builder is None:
                raise SuiteError(f"{where}: unsupported file type (use one of "
                                 f"{', '.join(DATA_FILES)})")
            loaded = datasets.load_dataset(builder, data_files=str(path), split="train")
        elif _looks_local(spec.dataset):
            raise SuiteError(f"{where}: no such file or directory")
        else:
            loaded = _load_from_hub(datasets, spec)
    except (SuiteError, TaskFormatError):
        raise
    except Exception as exc:  # datasets raises many types; the user needs one line
        raise SuiteError(f"{where}: cannot load: {_first_line(exc)}") from None
    table = _pick_split(loaded, spec, where)
    return [dict(row) for row in table]


def rows_to_tasks(
    rows: Sequence[Mapping[str, Any]], mapping: Mapping[str, str], *, layout: str, where: str
) -> list[Task]:
    """Build and validate tasks from rows; a missing column is a TaskFormatError naming it."""
    tasks = []
    for index, values in enumerate(rows):
        row = _Row(values, mapping, f"{where}: row {index}")
        raw_id = str(row.get("id"))
        task_id = raw_id if "/" in raw_id else f"{ID_PREFIX.get(layout, layout)}/{raw_id}"
        task_where = f"{where}: row {index} ({task_id})"
        data = _task_fields(row, layout, task_where)
        tasks.append(task_from_mapping(data, task_id=task_id, where=task_where, source=where))
    return tasks


class _Row:
    """One dataset row read through the field -> column mapping."""

    def __init__(self, values: Mapping[str, Any], mapping: Mapping[str, str], where: str):
        self.values, self.mapping, self.where = values, mapping, where

    def get(self, name: str, *, required: bool = True) -> Any:
        col = self.mapping.get(name)
        value = None if col is None else self.values.get(col)
        if value is None and required:
            raise TaskFormatError(
                f"{self.where}: column '{col or name}' (task field '{name}'): missing "
                f"(columns: {', '.join(map(str, self.values))})")
        return value


def _task_fields(row: _Row, layout: str, where: str) -> dict[str, Any]:
    prompt = str(row.get("prompt"))
    if "reference" in row.mapping:
        reference = str(row.get("reference"))
    else:
        reference = prompt + str(row.get("solution"))
    test_list = row.get("test_list", required=False)
    tests = row.get("tests", required=test_list is None)
    test_code = str(tests) if tests else _join_tests(test_list)
    entry_point = row.get("entry_point", required=False)
    if entry_point is None:
        entry_point = _derive_entry_point(reference, test_code, where)
    examples = []
    if layout == "mbpp":
        prompt = _stub_from_reference(reference, str(entry_point), prompt, where)
        first = _first_example(test_list, str(entry_point))
        if first is not None:
            examples.append(first)
    imports = row.get("test_imports", required=False) or []
    if isinstance(imports, str):
        imports = [imports]
    return {"schema_version": 1, "entry_point": entry_point, "prompt": prompt,
            "reference": reference, "examples": examples,
            "tests": _as_check(test_code, str(entry_point), [str(line) for line in imports])}


def _join_tests(test_list: Any) -> str:
    if isinstance(test_list, str):
        return test_list
    return "\n".join(str(line) for line in test_list)


def _as_check(test_code: str, entry_point: str, imports: list[str]) -> str:
    """Tests as source defining check(candidate); code calling the entry point is wrapped."""
    header = "".join(f"{line}\n" for line in imports)
    try:
        tree = pyparse.parse(test_code)
    except SyntaxError:
        return header + test_code  # task_from_mapping reports it with the field name
    if any(isinstance(node, ast.FunctionDef) and node.name == "check" for node in tree.body):
        return header + test_code  # the judge binds the entry point's name to the candidate
    lines = test_code.strip().splitlines()
    if lines and all(line.startswith("assert ") for line in lines):
        body = "".join(f"    {line}\n" for line in lines)
        gap = "\n\n" if header else ""
        return f"{header}{gap}def check(candidate):\n    {entry_point} = candidate\n{body}"
    # Arbitrary module-level test code (MBPP+): run it with the entry point bound to candidate.
    return (f"{header}_TESTS = {test_code!r}\n\n\ndef check(candidate):\n"
            f"    namespace = dict(globals())\n    namespace[{entry_point!r}] = candidate\n"
            f"    exec(compile(_TESTS, '<tests>', 'exec'), namespace)\n")


def _derive_entry_point(reference: str, tests: str, where: str) -> str:
    """The function of the reference that the tests call (else its last function)."""
    try:
        defined = [node.name for node in pyparse.parse(reference).body
                   if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
        called = [node.func.id for node in ast.walk(pyparse.parse(tests))
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    except SyntaxError as exc:
        raise TaskFormatError(f"{where}: cannot derive entry_point: {exc.msg}") from None
    for name in called:
        if name in defined:
            return name
    if not defined:
        raise TaskFormatError(f"{where}: field 'reference': defines no function")
    return defined[-1]


def _stub_from_reference(reference: str, entry_point: str, description: str, where: str) -> str:
    """A prompt for description-only rows: the reference's signature and the description."""
    try:
        body = pyparse.parse(reference).body
    except SyntaxError as exc:
        raise TaskFormatError(f"{where}: field 'reference': does not compile: {exc.msg}") from None
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            text = description.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
            return f'def {entry_point}({ast.unparse(node.args)}){returns}:\n    """{text}"""\n'
    raise TaskFormatError(f"{where}: field 'reference': does not define {entry_point!r}")


def _first_example(test_list: Any, entry_point: str) -> dict[str, str] | None:
    if not test_list or isinstance(test_list, str):
        return None
    source = str(test_list[0])
    try:
        node = pyparse.parse(source).body[0]
    except (SyntaxError, IndexError):
        return None
    test = getattr(node, "test", None)
    if not (isinstance(node, ast.Assert) and isinstance(test, ast.Compare)
            and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return None
    call = ast.get_source_segment(source, test.left)
    result = ast.get_source_segment(source, test.comparators[0])
    if not call or not result or entry_point not in call:
        return None
    return {"call": call, "result": result}


def _load_from_hub(datasets: Any, spec: HfSpec) -> Any:
    try:
        return datasets.load_dataset(spec.dataset, name=spec.config, split=spec.split,
                                     revision=spec.revision)
    except Exception as exc:
        offline = any(os.environ.get(var, "").upper() in {"1", "ON", "YES", "TRUE"}
                      for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
        mode = " (offline mode is on)" if offline else ""
        raise SuiteError(
            f"hf:{spec.dataset}: cannot load it from the Hugging Face Hub{mode}: "
            f"{_first_line(exc)}. Hub datasets need network access or a local copy: pass a "
            f"directory written by save_to_disk or a .jsonl/.parquet file, e.g. "
            f"hf:./{spec.dataset.split('/')[-1]}.jsonl?layout={spec.layout}"
        ) from None


def _pick_split(loaded: Any, spec: HfSpec, where: str) -> Any:
    if not hasattr(loaded, "keys"):  # a single Dataset
        return loaded
    splits = list(loaded.keys())
    if spec.split is not None:
        if spec.split not in splits:
            raise SuiteError(f"{where}: no split {spec.split!r} (splits: {', '.join(splits)})")
        return loaded[spec.split]
    if "test" in splits:
        return loaded["test"]
    if len(splits) == 1:
        return loaded[splits[0]]
    raise SuiteError(f"{where}: several splits ({', '.join(splits)}); choose one with ?split=")


def _looks_local(name: str) -> bool:
    return (name.startswith(("/", ".", "~")) or os.sep in name.replace("/", "")
            or Path(name).suffix.lower() in DATA_FILES)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
