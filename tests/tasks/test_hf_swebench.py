"""SWE-bench Lite/Verified through the hf: loader, offline: fixture rows in the dataset's
published schema (every column a string, FAIL_TO_PASS and PASS_TO_PASS JSON-encoded lists),
written to disk here as parquet, loaded through `datasets`, and judged in a fixture environment
image built here from the judge image, as SWE-bench's harness tags an instance's image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rsi_bench.agents.container import _task_json
from rsi_bench.errors import SuiteError, TaskFormatError
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.repo_tasks import spec

datasets = pytest.importorskip("datasets")

FIXTURE_ID = "fixture__mini-1"
FIXTURE_IMAGE = f"sweb.eval.x86_64.{FIXTURE_ID}:latest"
BASE = "0123456789abcdef0123456789abcdef01234567"

# the fixture repository at its base commit (what the environment image holds at /testbed)
REPO_FILES = {
    "mini/__init__.py": "",
    "mini/text.py": "def shout(word):\n    return word.upper()\n\n\n"
                    "def whisper(word):\n    return word.upper()\n",
    "tests/__init__.py": "",
    "tests/test_text.py": "from mini.text import shout\n\n\n"
                          "def test_shout():\n    assert shout('a') == 'A'\n",
}
PATCH = "\n".join([
    "diff --git a/mini/text.py b/mini/text.py",
    "index 1111111..2222222 100644",
    "--- a/mini/text.py",
    "+++ b/mini/text.py",
    "@@ -3,4 +3,4 @@ def shout(word):",
    " ",
    " ",
    " def whisper(word):",
    "-    return word.upper()",
    "+    return word.lower()",
]) + "\n"
TEST_PATCH = "\n".join([
    "diff --git a/tests/test_text.py b/tests/test_text.py",
    "index 3333333..4444444 100644",
    "--- a/tests/test_text.py",
    "+++ b/tests/test_text.py",
    "@@ -1,5 +1,9 @@",
    "-from mini.text import shout",
    "+from mini.text import shout, whisper",
    " ",
    " ",
    " def test_shout():",
    "     assert shout('a') == 'A'",
    "+",
    "+",
    "+def test_whisper():",
    "+    assert whisper('A') == 'a'",
]) + "\n"


def swebench_row(instance_id: str, **changes: Any) -> dict[str, Any]:
    """One row in SWE-bench's schema (Lite's columns, and Verified's difficulty)."""
    row = {
        "repo": "fixture/mini", "instance_id": instance_id, "base_commit": BASE,
        "patch": PATCH, "test_patch": TEST_PATCH,
        "problem_statement": "whisper() shouts.\n\n`whisper('A')` returns 'A'; it should "
                             "return 'a'.\n",
        "hints_text": "HINT: look at the return line", "created_at": "2024-01-01T00:00:00Z",
        "version": "1.0",
        "FAIL_TO_PASS": json.dumps(["tests/test_text.py::test_whisper"]),
        "PASS_TO_PASS": json.dumps(["tests/test_text.py::test_shout"]),
        "environment_setup_commit": BASE, "difficulty": "<15 min fix",
    }
    return {**row, **changes}


ROWS = [
    swebench_row(FIXTURE_ID),
    # Django's runner names tests `test_x (module.Class)`: not a pytest node id
    swebench_row("django__django-1", repo="django/django",
                 FAIL_TO_PASS=json.dumps(["test_a (admin.tests.AdminTests)"]),
                 PASS_TO_PASS="[]", difficulty="1-4 hours"),
]


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_parquet(tmp_path_factory.mktemp("swebench") / "lite.parquet", ROWS)


def test_swebench_rows_become_repo_tasks(lite: Path) -> None:
    suite = load_suite(f"hf:{lite}?layout=swebench&split=test")
    assert [t.id for t in suite] == [FIXTURE_ID]
    assert "1 of 2 rows left out: their tests are not pytest node ids" in suite.description
    (task,) = suite
    assert (task.kind, task.reference, task.difficulty) == ("repo", PATCH, 1)
    assert task.prompt.startswith(ROWS[0]["problem_statement"].rstrip())
    assert "fixture/mini" in task.prompt and BASE in task.prompt
    assert "HINT" not in task.prompt  # SWE-bench's standard setting gives no hints
    doc = spec(task)
    assert doc["FAIL_TO_PASS"] == ["tests/test_text.py::test_whisper"]  # parsed, not a string
    assert doc["PASS_TO_PASS"] == ["tests/test_text.py::test_shout"]
    assert (doc["test_patch"], doc["base_commit"]) == (TEST_PATCH, BASE)
    assert doc["environment"] == {"image": FIXTURE_IMAGE, "repo": "/testbed",
                                  "python": "/opt/miniconda3/envs/testbed/bin/python"}
    assert "files" not in doc  # the repository comes from the image
    sent = json.dumps(_task_json(task.view()))  # what the agent's container receives
    assert "whisper() shouts" in sent
    assert "test_whisper" not in sent and "word.lower()" not in sent


def test_image_and_python_options(lite: Path) -> None:
    (hub,) = load_suite(f"hf:{lite}?layout=swebench&python=/usr/bin/python3"
                        "&image=swebench/sweb.eval.x86_64.{hub_id}:v1")
    assert spec(hub)["environment"] == {"image": "swebench/sweb.eval.x86_64.fixture_1776_mini-1:v1",
                                        "repo": "/testbed", "python": "/usr/bin/python3"}
    upper = write_parquet(lite.with_name("upper.parquet"), [swebench_row("Org__Repo-7")])
    (task,) = load_suite(f"hf:{upper}?layout=swebench")
    assert task.id == "Org__Repo-7"  # the harness lower-cases the id in the image's tag
    assert spec(task)["environment"]["image"] == "sweb.eval.x86_64.org__repo-7:latest"
    with pytest.raises(SuiteError, match="image= applies to layout=swebench only"):
        load_suite(f"hf:{lite}?image=x")
    with pytest.raises(SuiteError, match="column options"):
        load_suite(f"hf:{lite}?layout=swebench&prompt=hints_text")
    with pytest.raises(TaskFormatError, match="not a template"):
        load_suite(f"hf:{lite}?layout=swebench&image=x:{{commit}}")


@pytest.mark.parametrize(("changes", "message"), [
    ({"FAIL_TO_PASS": "[\"tests/test_text.py::test_whisper\""},
     r"row 0 \(fixture__mini-1\): column 'FAIL_TO_PASS': not a JSON list of test ids"),
    ({"PASS_TO_PASS": json.dumps({"tests/test_text.py::test_shout": 1})},
     r"column 'PASS_TO_PASS': must be a JSON list of test ids"),
    ({"FAIL_TO_PASS": "[]"}, "column 'FAIL_TO_PASS': names no test"),
    ({"patch": "not a diff"}, "column 'patch': not a unified diff"),
    ({"test_patch": None}, "column 'test_patch': missing"),
])
def test_a_malformed_row_is_refused(tmp_path: Path, changes: dict, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(swebench_row(FIXTURE_ID, **changes)) + "\n")
    with pytest.raises(TaskFormatError, match=message):
        load_suite(f"hf:{path}?layout=swebench")
