"""A repo task's view carries the agent's own writable copy of the repository: the agent edits
it, runs the repository's visible tests there, and returns the diff; the judge passes it. The
copy holds the visible files only (never the test_patch) and is fresh for every solve."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from agent_world import RUN_LABEL, World, make_agent
from sandboxes import require_backend

from rsi_bench.agents import run_solve
from rsi_bench.agents.pool import SolvePool
from rsi_bench.broker import Broker
from rsi_bench.judge import Judge
from rsi_bench.judge.repo_diff import apply
from rsi_bench.judge.repo_job import write_files
from rsi_bench.models.base import Completion, Message, Usage
from rsi_bench.store import Store
from rsi_bench.tasks import load_suite

pytestmark = pytest.mark.docker

# The agent applies the task's reference by hand (the test hands it the new text of each file
# in the problem statement's place: the model is not needed to prove the plumbing), runs the
# visible tests with pytest in its copy, and returns difflib's diff plus what it saw.
AGENT = '''
import difflib, json, os, subprocess, sys
from pathlib import Path

def solve(task_view, model):
    root = Path(task_view.repo_path)
    seen = {"repo_path": task_view.repo_path, "kind": task_view.kind,
            "files": sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                            if p.is_file()),
            "owner_is_me": root.stat().st_uid == os.getuid(),
            "stale": (root / "left_by_an_earlier_solve").exists()}
    (root / "left_by_an_earlier_solve").write_text("x")
    seen["planted"] = (root / "left_by_an_earlier_solve").exists()  # the probe's control
    new = json.loads(model.complete([{"role": "user", "content": "files"}])["text"])
    diff = ""
    for path, text in sorted(new.items()):
        old = (root / path).read_text()
        (root / path).write_text(text)
        diff += "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                             "a/" + path, "b/" + path))
    seen["visible_test"] = "def test_" in (root / "tests" / "test_commands.py").read_text()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests"], cwd=root, capture_output=True, text=True, timeout=60)
    seen["pytest"] = run.returncode
    seen["pytest_tail"] = run.stdout.strip().splitlines()[-1:]
    print("SEEN " + json.dumps(seen))
    return diff


def improve(workspace, feedback, model):
    pass
'''


class Answers:
    """A model that answers every request with one fixed text."""

    name, free = "scripted", True

    def __init__(self, text: str) -> None:
        self.text = text

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        return Completion(self.text, "end_turn", Usage(1, 1), 0.0, 0.0, "scripted/test")


def patched(root: Path, files: dict[str, str], reference: str) -> dict[str, str]:
    """The files the reference diff changes, with their new text (the judge's own applier)."""
    write_files(str(root), files)
    return {path: (root / path).read_text() for path in apply(str(root), reference)}


def test_the_agent_edits_and_tests_its_own_copy_and_the_diff_passes(tmp_path: Path) -> None:
    require_backend("docker")
    task = load_suite("rsi-repo").get("rsi-repo/kvstore_incr")
    spec = json.loads(task.tests)
    view = task.view()
    assert dict(view.files) == spec["files"] and spec["test_patch"] not in json.dumps(view.files)
    new = patched(tmp_path / "patched", spec["files"], task.reference)
    assert new and all(new[p] != spec["files"].get(p) for p in new)
    agent = make_agent(tmp_path / "agent", AGENT)
    with Store(tmp_path / "run.sqlite") as store:
        broker = Broker(Answers(json.dumps(new)), store)  # type: ignore[arg-type]
        outcomes = [run_solve(agent, view, broker=broker, generation=0, run_label=RUN_LABEL)]
        with SolvePool(agent, broker=broker, generation=0, run_label=RUN_LABEL) as pool:
            # two solves in one warm container: the second must get a fresh copy
            outcomes += [pool.solve(view), pool.solve(view)]
            box = pool._workers[0].attached.sandbox
            assert box is not None  # reused, not replaced
    for outcome in outcomes:
        assert outcome.status == "ok", outcome.detail + outcome.output_tail
        [line] = [x for x in outcome.output_tail.splitlines() if x.startswith("SEEN ")]
        seen = json.loads(line[5:])
        assert seen["repo_path"] == "/scratch/repo" and seen["kind"] == "repo"
        assert seen["files"] == sorted(spec["files"])  # the visible files, nothing hidden
        assert not any("test_incr" in f for f in seen["files"])
        assert seen["owner_is_me"] and seen["planted"] and not seen["stale"]
        assert seen["pytest"] == 0, seen["pytest_tail"]  # the visible tests pass on the edit
        assert seen["visible_test"]
        assert not [e for e in outcome.events if e.kind == "hunt"]  # its own tests: no hunt
        with Judge("docker", workers=1, timeout=60, run_label=RUN_LABEL) as judge:
            assert judge.judge(task, outcome.solution or "").status == "pass"


def test_a_function_task_has_no_repository(world: World) -> None:
    task = world.task("chunk")
    assert task.view().files == () and task.view().kind == "function"
