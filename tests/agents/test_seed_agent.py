"""The seed agent's pure helpers (answer parsing), run on the host because they are plain
functions of text; the agent's solve and improve themselves are tested in containers."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import pytest
from agent_world import SEED

from rsi_bench.models.simulated_edits import apply_edits, library


def seed() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_agent_under_test", SEED / "agent.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_code_prefers_python_block() -> None:
    agent = seed()
    text = "Plan:\n```text\nnot code\n```\n```python\ndef f():\n    return 1\n```\n"
    assert agent.extract_code(text) == "def f():\n    return 1\n"
    assert agent.extract_code("def f(): return 2") == "def f(): return 2"


def test_file_blocks_with_long_fences() -> None:
    agent = seed()
    inner = "Use a block:\n```python\ncode\n```\n"
    answer = ("I changed two files.\n\nFILE: prompts/solve.md\n````markdown\n" + inner
              + "````\n\nFILE: `agent.py`\n```python\nX = 1\n```\n")
    assert agent.parse_answer(answer, {}) == {"prompts/solve.md": inner, "agent.py": "X = 1\n"}


def test_shown_files_parse_back() -> None:
    agent = seed()
    files = agent.read_files(SEED)
    shown = "\n".join(agent.show_file(p, t) for p, t in files.items())
    assert agent.parse_answer(shown, {}) == {p: t if t.endswith("\n") else t + "\n"
                                             for p, t in files.items()}


def test_simulated_edit_lists_apply_as_rsi_bench_documents() -> None:
    agent = seed()
    files = agent.read_files(SEED)
    for category, edits in library("prompts/solve.md", "agent.py").items():
        for edit in edits:
            answer = json.dumps({"simulated": True, "category": category, **edit})
            expected = apply_edits(files, edit["edits"])
            changed = agent.parse_answer(answer, files)
            assert {**files, **changed} == expected, edit["edit"]


@pytest.mark.docker
def test_repo_task_the_seed_agent_returns_the_diff_block_and_it_judges() -> None:
    from sandboxes import require_backend

    from rsi_bench.judge import Judge
    from rsi_bench.tasks import load_suite

    require_backend("docker")

    task = load_suite("rsi-repo").get("rsi-repo/intervals_touching")
    seen = []

    class Model:
        def complete(self, messages):
            seen.append(messages[0]["content"])
            return {"text": f"Here is the fix.\n```diff\n{task.reference}```\n"}

    diff = seed().solve(task.view(), Model())
    assert diff == task.reference
    assert "intervals/merge.py" in seen[0] and "unified diff" in seen[0]
    with Judge("docker", workers=1, timeout=60, run_label="test-seed-repo") as judge:
        assert judge.judge(task, diff).status == "pass"
