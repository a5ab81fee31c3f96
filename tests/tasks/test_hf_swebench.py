"""SWE-bench Lite/Verified through the hf: loader, offline: fixture rows in the dataset's
published schema (every column a string, FAIL_TO_PASS and PASS_TO_PASS JSON-encoded lists),
written to disk here as parquet, loaded through `datasets`, and judged in a fixture environment
image built here from the judge image, as SWE-bench's harness tags an instance's image."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxes import DOCKER_RUNTIMES, require_backend

from rsi_bench.agents.container import _task_json
from rsi_bench.errors import SandboxUnavailable, SuiteError, TaskFormatError
from rsi_bench.infra import host_cause
from rsi_bench.judge import Judge
from rsi_bench.judge.judge import JudgeError, JudgeStartError
from rsi_bench.sandbox.image import ENV_RUNNER_FILES, judge_image, runner_sha256
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.repo_tasks import spec
from rsi_bench.tasks.validate import as_expected, validation_jobs

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


# ---------------------------------------------------------------- judged in its environment


def git_repository(root: Path) -> None:
    """The fixture repository at /testbed as SWE-bench's images have it: a git checkout (its
    .git is not copied into the job), here with symlinks the copy must keep or leave out."""
    for rel, text in REPO_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "mini" / "alias.py").symlink_to("text.py")  # inside the repository: kept
    (root / "docs").mkdir()
    (root / "docs" / "passwd").symlink_to("/etc/passwd")  # absolute: left out
    (root / "docs" / "gone").symlink_to("missing.txt")  # dangling: left out
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root.parent),
           "GIT_CONFIG_NOSYSTEM": "1"}
    who = ["-c", "user.name=fixture", "-c", "user.email=fixture@localhost"]
    for cmd in (["init", "-q"], ["add", "-A"], [*who, "commit", "-qm", "base"]):
        subprocess.run(["git", *cmd], cwd=root, env=env, check=True, capture_output=True)
    # as in SWE-bench's images: a clone reset to the base commit, whose object store still
    # holds the later history (here the fix), which must never reach the agent
    fixed = (root / "mini" / "text.py").read_text().replace(
        "def whisper(word):\n    return word.upper()",
        "def whisper(word):\n    return word.lower()")
    (root / "mini" / "text.py").write_text(fixed)
    for cmd in ([*who, "commit", "-qam", "the fix"], ["reset", "-q", "--hard", "HEAD~1"]):
        subprocess.run(["git", *cmd], cwd=root, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def environment_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fixture instance image, FROM the local judge image (python3 and pytest; no registry),
    tagged as SWE-bench's harness tags one; removed at the end."""
    require_backend("docker")
    import docker

    client = docker.from_env()
    context = tmp_path_factory.mktemp("environment")
    git_repository(context / "testbed")
    (context / "Dockerfile").write_text(f"FROM {judge_image()}\nCOPY testbed /testbed\n")
    image, _logs = client.images.build(path=str(context), tag=FIXTURE_IMAGE, rm=True,
                                       forcerm=True, network_mode="none", pull=False)
    try:
        yield str(image.id)
    finally:
        client.images.remove(FIXTURE_IMAGE, force=True)
        client.close()


@pytest.fixture(scope="module", params=DOCKER_RUNTIMES)
def env_judge(request: pytest.FixtureRequest, environment_image: str) -> Iterator[Judge]:
    require_backend(request.param)
    with Judge(request.param, workers=1, run_label="test-hf-swebench") as judge:
        yield judge


@pytest.fixture(scope="module")
def instance(lite: Path) -> Any:
    (task,) = load_suite(f"hf:{lite}?layout=swebench&python=/usr/bin/python3")
    return task


WRONG = PATCH.replace("word.lower()", "word.title()")
TOUCHES_TESTS = TEST_PATCH.replace("'a'", "'A'")


@pytest.mark.docker
def test_an_instance_is_judged_in_its_environment_image(env_judge: Judge, instance: Any,
                                                        environment_image: str) -> None:
    fixed = env_judge.judge(instance, instance.reference)
    assert (fixed.status, fixed.detail) == ("pass", "2 tests"), fixed
    assert fixed.test_outcomes == {"tests/test_text.py::test_whisper": "passed",
                                   "tests/test_text.py::test_shout": "passed"}
    assert fixed.image_id == environment_image  # where it ran, not the judge image
    assert fixed.runner_sha256 == runner_sha256(files=ENV_RUNNER_FILES)  # the mounted runner
    for diff in ("", WRONG):
        verdict = env_judge.judge(instance, diff)
        assert verdict.status == "fail", verdict
        assert verdict.detail == ("1 of 2 tests did not pass (FAIL_TO_PASS 0/1 passed, "
                                  "PASS_TO_PASS 1/1)")
        assert verdict.test_outcomes == {"tests/test_text.py::test_whisper": "failed",
                                         "tests/test_text.py::test_shout": "passed"}
    touching = env_judge.judge(instance, TOUCHES_TESTS)
    assert (touching.status, touching.tests) == ("invalid", ()), touching
    assert "a test file" in touching.detail
    jobs = validation_jobs([instance])  # what `tasks validate` judges: reference, unpatched
    assert sorted(job.key for job in jobs) == [0, 6, 7]
    assert all(as_expected(v) for v in env_judge.judge_many(jobs))


@pytest.mark.docker
def test_a_missing_environment_image_is_infra_not_a_verdict(env_judge: Judge,
                                                             lite: Path) -> None:
    import docker

    absent = write_parquet(lite.with_name("absent.parquet"), [swebench_row("fixture__absent-1")])
    (task,) = load_suite(f"hf:{absent}?layout=swebench&python=/usr/bin/python3")
    image = "sweb.eval.x86_64.fixture__absent-1:latest"
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(image)
    with pytest.raises(JudgeStartError) as raised:
        env_judge.judge(task, task.reference)
    message = str(raised.value)
    assert isinstance(raised.value, SandboxUnavailable) and "\n" not in message
    assert f"judging fixture__absent-1: the environment image {image} is missing" in message
    assert "SWE-bench's harness" in message and "docker pull" in message
    assert (host_cause(raised.value) or "").startswith("sandbox did not start: ")
    # the judge goes on: the next instance is judged as before
    assert env_judge.judge(load_suite(f"hf:{lite}?layout=swebench&python=/usr/bin/python3")
                           .tasks[0], PATCH).status == "pass"


def test_other_backends_refuse_environment_images(instance: Any) -> None:
    with Judge("local", workers=1, run_label="test-hf-swebench") as judge, \
            pytest.raises(JudgeError, match="only the docker sandbox"):
        judge.judge(instance, instance.reference)


# ------------------------------------------------- the agent's copy, out of the same image

FIXING_AGENT = """
import difflib, json, os
from pathlib import Path

def solve(task_view, model):
    root = Path(task_view.repo_path)
    seen = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    print("SEEN " + json.dumps(seen))
    old = (root / "mini" / "text.py").read_text()
    new = old.replace("def whisper(word):\\n    return word.upper()",
                      "def whisper(word):\\n    return word.lower()")
    (root / "mini" / "text.py").write_text(new)
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        "a/mini/text.py", "b/mini/text.py"))


def improve(workspace, feedback, model):
    pass
"""


@pytest.mark.docker
def test_the_agent_works_on_the_repository_read_out_of_its_environment_image(
        env_judge: Judge, instance: Any, environment_image: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import docker

    from rsi_bench.agents import checkout
    from rsi_bench.agents.pool import SolvePool
    from rsi_bench.broker import Broker
    from rsi_bench.models.simulated import SimulatedModel
    from rsi_bench.store import Store

    monkeypatch.setenv("RSI_BENCH_CACHE", str(tmp_path / "cache"))
    checkout._recent.clear()
    assert instance.view().files == ()  # the task itself carries no files
    view = checkout.agent_view(instance)
    files = dict(view.files)
    assert files == {**REPO_FILES}  # the text at the base commit, every regular file
    assert not any(p.startswith(".git") or "/.git" in p for p in files)
    assert "word.lower()" not in json.dumps(files) and "test_whisper" not in json.dumps(files)
    # the control: the image's repository does hold the git directory the copy leaves out
    container = docker.from_env().containers.create(environment_image, command=["true"])
    try:
        stream, _ = container.get_archive("/testbed")
        names = tarfile.open(fileobj=io.BytesIO(b"".join(stream))).getnames()
    finally:
        container.remove(force=True)
    assert "testbed/.git/ORIG_HEAD" in names and "testbed/mini/alias.py" in names
    assert [p.name for p in (tmp_path / "cache" / "checkouts").iterdir()] and \
        checkout.agent_view(instance) == view  # cached per image id

    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "agent.toml").write_text('schema_version = 1\nname = "fixer"\nentry = "agent"\n'
                                      'mutable = ["agent.py"]\n')
    (agent / "agent.py").write_text(FIXING_AGENT)
    with Store(tmp_path / "run.sqlite") as store, \
            SolvePool(agent, broker=Broker(SimulatedModel(), store), generation=0,
                      run_label="test-hf-swebench") as pool:
        outcome = pool.solve(view)
    assert outcome.status == "ok", outcome.detail + outcome.output_tail
    [line] = [x for x in outcome.output_tail.splitlines() if x.startswith("SEEN ")]
    assert json.loads(line[5:]) == sorted(REPO_FILES)
    verdict = env_judge.judge(instance, outcome.solution or "")
    assert (verdict.status, verdict.detail) == ("pass", "2 tests"), verdict
