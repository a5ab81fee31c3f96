"""Repo tasks: the format, the view, and the rsi-repo suite judged in the docker judge (the
reference passes; the repository as it is fails every FAIL_TO_PASS test and passes every
PASS_TO_PASS one; diffs that touch what they may not are invalid). Hostile repository code, on
every isolating backend: tests/judge/test_repo_hostile.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rsi_bench.errors import TaskFormatError
from rsi_bench.judge import Job, Judge, repo_job
from rsi_bench.judge.repo_diff import DiffError, apply
from rsi_bench.models.mutations import diff_variants
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.core import task_from_mapping
from rsi_bench.tasks.repo_tasks import spec

SUITE = load_suite("rsi-repo")
TASK = SUITE.get("rsi-repo/intervals_touching")


@pytest.fixture(scope="module")
def docker_judge() -> Iterator[Judge]:
    from sandboxes import require_backend

    require_backend("docker")
    with Judge("docker", workers=2, run_label="test-repo-tasks") as j:
        yield j


def add_file(path: str, text: str) -> str:
    lines = text.splitlines()
    return (f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n"
            + "".join(f"+{line}\n" for line in lines))


def test_suite_has_repositories_of_several_modules():
    assert len(SUITE) >= 15
    for task in SUITE:
        doc = spec(task)
        assert task.kind == "repo"
        assert len([p for p in doc["files"] if not p.startswith("tests/")]) >= 3
        assert doc["FAIL_TO_PASS"] and doc["PASS_TO_PASS"]
        assert len(doc["base_commit"]) == 40


def test_view_holds_nothing_hidden():
    for task in SUITE:
        view = task.view()
        text = repr(view)
        assert view.kind == "repo"
        assert task.reference not in text
        for hidden in ("test_patch", "FAIL_TO_PASS"):
            assert hidden not in text
        doc = spec(task)
        hidden_tests = doc["test_patch"].split("+++ b/")[1].split("\n")[0]
        assert hidden_tests not in text  # the new test file's name
        for path in doc["files"]:
            assert f"--- {path}" in view.prompt  # every file of the repository is shown


def test_format_errors_name_the_field():
    data = {"schema_version": 1, "kind": "repo", "problem_statement": "x",
            "files": {"a.py": "x = 1\n"}, "FAIL_TO_PASS": ["t.py::t"], "PASS_TO_PASS": [],
            "test_patch": add_file("t.py", "def t(): pass"), "reference": add_file("b.py", "y=1")}
    task_from_mapping(data, task_id="x/a", where="a.toml", source="x")
    for field, value in (("files", {"../a.py": ""}), ("files", {"/etc/a": ""}),
                         ("FAIL_TO_PASS", ["no-node-id"]), ("FAIL_TO_PASS", []),
                         ("reference", "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n x\n"),
                         ("test_patch", "")):
        with pytest.raises(TaskFormatError, match=f"'{field}'"):
            task_from_mapping({**data, field: value}, task_id="x/a", where="a.toml", source="x")


@pytest.mark.docker
@pytest.mark.parametrize("task", SUITE.tasks, ids=lambda t: t.id)
def test_reference_passes_and_unpatched_fails_every_fail_to_pass(task, docker_judge):
    doc = spec(task)
    good = docker_judge.judge(task, task.reference)
    assert good.status == "pass", good
    assert good.test_outcomes == dict.fromkeys(doc["FAIL_TO_PASS"] + doc["PASS_TO_PASS"],
                                               "passed")
    bare = docker_judge.judge(task, "")
    assert bare.status == "fail", bare
    outcomes = bare.test_outcomes
    assert all(outcomes[t] == "failed" for t in doc["FAIL_TO_PASS"]), outcomes
    assert all(outcomes[t] == "passed" for t in doc["PASS_TO_PASS"]), outcomes
    for test in doc["FAIL_TO_PASS"] + doc["PASS_TO_PASS"]:  # the detail names no hidden test
        assert test.split("::")[-1] not in bare.detail


@pytest.mark.docker
def test_a_diff_that_does_not_apply_is_invalid(docker_judge):
    diff = "--- a/intervals/merge.py\n+++ b/intervals/merge.py\n@@ -1,1 +1,1 @@\n-nope\n+yes\n"
    assert docker_judge.judge(TASK, diff).status == "invalid"
    assert docker_judge.judge(TASK, "this is not a diff").status == "invalid"


HOSTILE = {
    "edits the hidden test file": add_file(
        "tests/test_touching.py", "def test_touching_merge(): pass\n"
        "def test_no_empty_gaps(): pass"),
    "edits a visible test": add_file("tests/test_more.py", "def test_x(): pass"),
    "adds a conftest that forces passes": add_file("conftest.py", (
        "import pytest\n@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n    out = yield\n"
        "    out.get_result().outcome = 'passed'")),
    "adds a conftest in a package": add_file("intervals/conftest.py", "x = 1"),
    "adds a pytest.ini with addopts": add_file("pytest.ini", "[pytest]\naddopts = -p no:junitxml"),
    "adds a pyproject with addopts": add_file(
        "pyproject.toml", "[tool.pytest.ini_options]\naddopts = '--deselect tests'"),
    "adds a sitecustomize": add_file("sitecustomize.py", "import os"),
    "adds a .pth file": add_file("intervals/evil.pth", "import os"),
    "writes outside with ..": add_file("../outside.py", "x = 1"),
    "writes to an absolute path": "--- /dev/null\n+++ /tmp/outside.py\n@@ -0,0 +1 @@\n+x = 1\n",
}


@pytest.mark.docker
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_diffs_are_invalid(name, docker_judge):
    result = docker_judge.judge(TASK, HOSTILE[name])
    assert result.status == "invalid", result


@pytest.mark.docker
def test_a_hostile_diff_with_the_fix_still_does_not_pass_through_the_trick(docker_judge):
    # the fix itself is allowed; a conftest riding along makes the whole diff invalid
    riding = TASK.reference + HOSTILE["adds a conftest that forces passes"]
    assert docker_judge.judge(TASK, riding).status == "invalid"
    assert docker_judge.judge(TASK, TASK.reference).status == "pass"  # the control


def test_a_diff_may_not_touch_what_the_test_patch_touches(tmp_path):
    # a hidden file outside tests/ (a fixture module): refused by name, before anything is written
    doc = {**spec(TASK), "test_patch": spec(TASK)["test_patch"] + add_file("data/cases.py", "A=1")}
    with pytest.raises(DiffError, match="a test file"):
        repo_job.prepare(str(tmp_path / "a"), doc, add_file("data/cases.py", "A = 2"))
    assert not (tmp_path / "a").exists()
    repo_job.prepare(str(tmp_path / "b"), doc, add_file("data/other.py", "B = 2"))  # the control
    assert (tmp_path / "b" / "data" / "cases.py").read_text() == "A=1\n"


def test_applier_refuses_symlinks_and_is_all_or_nothing(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(DiffError, match="symlink"):
        apply(str(tmp_path), add_file("link/x.py", "x = 1"))
    with pytest.raises(DiffError):
        apply(str(tmp_path), add_file("ok.py", "x = 1") + add_file("link/y.py", "y"))
    assert not (tmp_path / "ok.py").exists()
    apply(str(tmp_path), add_file("ok.py", "x = 1"))  # the control: a plain file is written
    assert (tmp_path / "ok.py").read_text() == "x = 1\n"


@pytest.mark.docker
def test_validate_checks_the_reference_and_the_unpatched_repository(tmp_path):
    import subprocess
    import sys

    from sandboxes import require_backend

    from rsi_bench.tasks.validate import validation_jobs

    require_backend("docker")

    def validate(suite: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rsi_bench.cli", "tasks", "validate",
                               "--suite", suite], capture_output=True, text=True, timeout=900)

    done = validate("rsi-repo")
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = len(validation_jobs(SUITE))
    assert f"{jobs}/{jobs} reference checks pass ({len(SUITE)} tasks" in done.stdout
    # a repository that already has the fix: its FAIL_TO_PASS tests pass unpatched, and the
    # reference no longer applies
    source = (Path(__file__).parents[2] / "tasks" / "rsi-repo" / "intervals_touching.toml")
    head, files = source.read_text().split("\n[files]\n")
    fixed = files.replace("start < out[-1][1]", "start <= out[-1][1]")
    assert fixed != files
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "intervals_touching.toml").write_text(head + "\n[files]\n" + fixed)
    done = validate(str(broken))
    assert done.returncode == 1
    assert "(unpatched fails a FAIL_TO_PASS test): pass" in done.stderr, done.stderr
    assert "(reference): invalid" in done.stderr, done.stderr


def test_the_local_backend_judges_a_repo_task_too():
    # the test process execs the judge's own interpreter by its full path: a bare "python3"
    # in argv[0] made Python take its prefix from another interpreter on PATH (without pytest)
    task = SUITE.get("rsi-repo/kvstore_incr")
    with Judge("local", workers=1, run_label="test-repo-local") as judge:
        right, unchanged = judge.judge_many([Job(task, task.reference),
                                             Job(task, diff_variants(task.reference)[0])])
    assert right.status == "pass", right.detail
    assert unchanged.status == "fail" and set(unchanged.test_outcomes.values()) >= {
        "passed", "failed"}, unchanged.detail
