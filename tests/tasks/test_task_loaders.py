"""Built-in suites load offline, with unique ids and a stable content hash; select()."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsi_bench.errors import SuiteError
from rsi_bench.paths import tasks_dir
from rsi_bench.tasks import known_suites, load_suite, select
from rsi_bench.tasks.core import KNOWN_TAGS

MINI = """schema_version = 1
entry_point = "inc"
prompt = '''
def inc(x: int) -> int:
    \"\"\"Return x + 1.\"\"\"
'''
reference = '''
def inc(x: int) -> int:
    return x + 1
'''
tests = '''
def check(candidate):
    assert candidate(1) == 2
'''
"""


def test_humaneval_has_164_tasks_in_dataset_order() -> None:
    suite = load_suite("humaneval")
    assert suite.name == "humaneval"
    assert [task.id for task in suite] == [f"HumanEval/{i}" for i in range(164)]
    for task in suite:
        assert task.source == "humaneval"
        assert task.examples == ()
        assert task.reference.startswith(task.prompt)
        assert f"def {task.entry_point}" in task.prompt
        assert "def check(candidate)" in task.tests


def test_rsi_core_tasks() -> None:
    suite = load_suite("rsi-core")
    ids = [task.id for task in suite]
    assert len(ids) >= 44
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    stems = {path.stem for path in (tasks_dir() / "rsi-core").glob("*.toml")}
    assert {task_id.removeprefix("rsi-core/") for task_id in ids} == stems
    for task in suite:
        assert task.source == "rsi-core"
        assert task.difficulty in (1, 2, 3)
        assert task.tags and set(task.tags) <= KNOWN_TAGS
        assert task.view().examples == task.examples


@pytest.mark.parametrize("name", ["humaneval", "rsi-core"])
def test_content_hash_is_stable_across_loads(name: str) -> None:
    first, second = load_suite(name), load_suite(name)
    assert first.content_hash() == second.content_hash()
    assert len(first.content_hash()) == 64


def test_seed_is_recorded() -> None:
    assert load_suite("rsi-core", seed=5).seed == 5


def test_a_directory_path_loads_like_the_builtin_name() -> None:
    by_path = load_suite(str(tasks_dir() / "rsi-core"))
    assert by_path.content_hash() == load_suite("rsi-core").content_hash()


def test_tasks_dir_override_adds_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "inc.toml").write_text(MINI, encoding="utf-8")
    monkeypatch.setenv("RSI_BENCH_TASKS_DIR", str(tmp_path))
    assert known_suites() == ["humaneval", "mini"]
    suite = load_suite("mini")
    assert [task.id for task in suite] == ["mini/inc"]
    assert suite.tasks[0].difficulty is None and suite.tasks[0].tags == ()


def test_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(SuiteError) as info:
        load_suite("no-such-suite")
    message = str(info.value)
    assert "'no-such-suite'" in message
    for name in ("humaneval", "rsi-core", "hf:"):
        assert name in message
    assert "\n" not in message


def test_select_keeps_suite_order_and_drops_duplicates() -> None:
    suite = load_suite("rsi-core")
    picked = select(suite, ["rsi-core/to_base", "rsi-core/chunk", "rsi-core/to_base"])
    assert [task.id for task in picked] == ["rsi-core/chunk", "rsi-core/to_base"]
    assert picked.name == suite.name and picked.seed == suite.seed
    (task,) = select(suite, ["rsi-core/chunk"])
    assert task is suite.get("rsi-core/chunk")
    assert len(select(suite, [])) == 0


def test_select_names_unknown_ids() -> None:
    suite = load_suite("humaneval")
    with pytest.raises(SuiteError) as info:
        select(suite, ["HumanEval/0", "HumanEval/999", "rsi-core/chunk"])
    message = str(info.value)
    assert "'HumanEval/999'" in message and "'rsi-core/chunk'" in message
    assert "'HumanEval/0'" not in message
