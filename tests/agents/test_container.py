"""The seed agent in real Docker containers with the simulated model behind a real broker: its
solution passes the judge, its improve rewrites its own files (improver included), and a child
improves itself in turn."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from agent_world import RUN_LABEL, SEED, World
from sandboxes import require_backend

from rsi_bench.agents import (
    audit,
    diff_text,
    load_manifest,
    run_check,
    run_improve,
    run_solve,
    validate_child,
)
from rsi_bench.agents.tarback import Caps, unpack_workspace
from rsi_bench.broker import Broker
from rsi_bench.judge import Judge
from rsi_bench.models.base import Completion, Message, Usage
from rsi_bench.store import Store

docker = pytest.mark.docker


@pytest.fixture
def needs_docker() -> None:
    require_backend("docker")


def calls(store: Store) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store.read().execute(
        "SELECT role, task_id, generation, request_json FROM model_calls ORDER BY id")]


@docker
def test_seed_agent_solves_a_task_the_judge_passes(world: World, needs_docker: None) -> None:
    task = world.task("chunk")
    outcome = run_solve(SEED, task.view(), broker=world.broker, generation=0,
                        run_label=RUN_LABEL)
    assert (outcome.status, outcome.model_calls, outcome.events) == ("ok", 1, ())
    assert outcome.solution and "def chunk(" in outcome.solution
    with Judge("docker", workers=1) as judge:
        assert judge.judge(task, outcome.solution).status == "pass"
    [(role, task_id, generation, request)] = calls(world.store)
    assert (role, task_id, generation) == ("solve", task.id, 0)
    prompt = json.loads(request)["messages"][0]["content"]
    assert task.prompt.strip() in prompt  # the task prompt, and no examples (room to improve)
    assert task.examples[0].call not in prompt and "{prompt}" not in prompt


@docker
def test_check_imports_the_entry_module(tmp_path: Path, needs_docker: None) -> None:
    assert run_check(SEED, run_label=RUN_LABEL).status == "ok"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "agent.toml").write_text((SEED / "agent.toml").read_text())
    (broken / "agent.py").write_text("def solve(task_view, model):\n    return ''\n")
    outcome = run_check(broken, run_label=RUN_LABEL)
    assert outcome.status == "invalid" and "no callable improve" in outcome.detail


@docker
def test_simulated_improve_rewrites_files_and_the_child_validates(
        world: World, needs_docker: None) -> None:
    child = world.tmp / "gen1"
    feedback = [{"task_id": "rsi-core/chunk", "status": "fail", "detail": "line 3"}]
    outcome = run_improve(SEED, child, feedback, broker=world.broker, generation=1,
                          run_label=RUN_LABEL)
    assert (outcome.status, outcome.model_calls) == ("ok", 1), outcome
    diff = diff_text(SEED, child)
    assert diff.startswith("--- a/") and "\n+" in diff
    findings = audit(SEED, child, load_manifest(SEED))
    assert [f for f in findings if f.kind == "changed"]
    assert not [f for f in findings if f.kind != "changed"]
    [(role, task_id, generation, request)] = calls(world.store)
    assert (role, task_id, generation) == ("improve", None, 1)
    shown = json.loads(request)["messages"][0]["content"]
    assert "FILE: agent.py" in shown and "def improve(" in shown and "rsi-core/chunk: fail" in shown
    ok, reason = validate_child(child, smoke_task_view=world.task("median").view(),
                                broker=world.broker, generation=1, run_label=RUN_LABEL)
    assert (ok, reason) == (True, "ok")


class ScriptedImprover:
    """Answers improve requests in the FILE: format, rewriting the improver itself. Each
    generation's improve prompt says which generation wrote it, so the test can see that the
    child's own (rewritten) improve ran."""

    name = "scripted"
    free = True

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        prompt = messages[0]["content"]
        # the marker shows twice per level: in the filled template and in the file listing
        level = prompt.count("(rewritten by its parent)") // 2
        improve_md = (SEED / "prompts" / "improve.md").read_text() + (
            "\n(rewritten by its parent)\n" * (level + 1))
        agent_py = (SEED / "agent.py").read_text().replace(
            "def improve(workspace, feedback, model):\n",
            f"def improve(workspace, feedback, model):\n    print('improver v{level + 1}')\n")
        text = (f"Generation {level + 1}.\n\nFILE: prompts/improve.md\n```markdown\n"
                f"{improve_md}```\n\nFILE: agent.py\n```python\n{agent_py}```\n")
        return Completion(text, "end_turn", Usage(1, 1), 0.0, 0.0, "scripted/test")


@docker
def test_the_improver_is_itself_improved(tmp_path: Path, needs_docker: None) -> None:
    with Store(tmp_path / "run.sqlite") as store:
        broker = Broker(ScriptedImprover(), store)  # type: ignore[arg-type]
        first, second = tmp_path / "gen1", tmp_path / "gen2"
        assert run_improve(SEED, first, [], broker=broker, generation=1,
                           run_label=RUN_LABEL).status == "ok"
        assert "print('improver v1')" in (first / "agent.py").read_text()
        assert "+    print('improver v1')" in diff_text(SEED, first)
        outcome = run_improve(first, second, [], broker=broker, generation=2,
                              run_label=RUN_LABEL)
        assert outcome.status == "ok" and "improver v1" in outcome.output_tail  # gen 1's code ran
        assert (second / "prompts" / "improve.md").read_text().count(
            "(rewritten by its parent)") == 2
        assert "print('improver v2')" in (second / "agent.py").read_text()


def tar_of(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in entries:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    return info


def test_unpack_refuses_what_could_escape(tmp_path: Path) -> None:
    data = tar_of([
        (entry("./agent.toml"), b"ok"), (entry("./prompts", tarfile.DIRTYPE), b""),
        (entry("./prompts/a.md"), b"a"), (entry("/etc/passwd"), b"x"),
        (entry("../escape"), b"x"), (entry("./link", tarfile.SYMTYPE, "/etc/passwd"), b""),
        (entry("./hard", tarfile.LNKTYPE, "agent.toml"), b""),
        (entry("./dev", tarfile.CHRTYPE), b""), (entry("./fifo", tarfile.FIFOTYPE), b""),
        (entry("./big"), b"x" * 2048),
    ] + [(entry(f"./many/{i}"), b"") for i in range(10)])
    dest = tmp_path / "child"
    dest.mkdir()
    refused = unpack_workspace(data, dest, Caps(files=8, file_bytes=1024))
    reasons = {f.path: f.detail for f in refused}
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "agent.toml", "many", "many/0", "many/1", "many/2", "many/3", "many/4", "many/5", "prompts",
        "prompts/a.md"]
    assert reasons["/etc/passwd"] == reasons["../escape"] == "path escapes the workspace"
    assert reasons["link"] == "symlink refused" and reasons["hard"] == "hard link refused"
    assert reasons["dev"] == "device file refused" and reasons["fifo"] == "fifo refused"
    assert "over the 1024-byte cap" in reasons["big"] and reasons["many/6"] == "more than 8 files"
    assert not (tmp_path / "escape").exists()
    assert unpack_workspace(b"not a tar" * 100, tmp_path / "other")[0].path == ""
