"""Repo tasks against hostile repository code, on every isolating backend.

Each diff below changes only source files a diff may change, and adds code that runs in the test
process (it is imported by the tests): it rewrites pytest's reports, writes forged records to the
result pipe, forges them with the key taken from the plugin's memory, ends the process early, or
writes into the repository. None may pass, and the reference judged right after it in the same
sandbox must pass (nothing survives into it). The result channel's parser is checked on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sandboxes import ISOLATING, require_backend

from rsi_bench.judge import Judge
from rsi_bench.judge.repo_job import Garbage, parse_records
from rsi_bench.tasks import load_suite

TASK = load_suite("rsi-repo").get("rsi-repo/intervals_touching")
HEADER = '''--- a/intervals/__init__.py
+++ b/intervals/__init__.py
@@ -0,0 +1,{n} @@
'''


def on_import(code: str) -> str:
    """The reference fix, plus ``code`` run when the package is imported (by the tests)."""
    lines = code.strip("\n").splitlines()
    return TASK.reference + HEADER.format(n=len(lines)) + "".join(f"+{x}\n" for x in lines)


FORGE_RECORDS = '''
import json, os, sys
for arg in sys.argv:
    if "::" in arg:
        for when in ("setup", "call", "teardown"):
            record = {"node": arg, "when": when, "outcome": "passed"}
            os.write(3, (json.dumps(record) + "\\n").encode())
os.write(3, b'{"end": 0}\\n')
os._exit(0)
'''

FORGE_WITH_KEY = '''
import gc, json, os, sys
plugin = next(o for o in gc.get_objects() if type(o).__name__ == "ResultPlugin")
for arg in sys.argv:
    if "::" in arg:
        for when in ("setup", "call", "teardown"):
            plugin._send({"node": arg, "when": when, "outcome": "passed"})
plugin._send({"end": 0})
os._exit(0)
'''

REWRITE_REPORTS = '''
import _pytest.reports
_made = _pytest.reports.TestReport.__init__
def _passed(self, *args, **kwargs):
    _made(self, *args, **kwargs)
    self.outcome = "passed"
_pytest.reports.TestReport.__init__ = _passed
'''

REWRITTEN = ("error", "outcomes were rewritten")
UNCLOSED = ("error", "ended without closing its report")
# what each one does -> (diff, the verdict's status, a phrase of its detail)
HOSTILE = {
    "rewrites every report to passed": (on_import(REWRITE_REPORTS), *REWRITTEN),
    "writes forged records to the pipe and exits 0": (
        on_import(FORGE_RECORDS), "error", "not the plugin's"),
    "forges records with the plugin's key and exits 0": (on_import(FORGE_WITH_KEY), *REWRITTEN),
    "exits at import": (on_import("import os\nos._exit(0)"), *UNCLOSED),
    "kills its own process": (
        on_import("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"), *UNCLOSED),
    "floods the result pipe": (
        on_import("import os\nos.write(3, b'x' * (3 << 20))"), "error", "over 1 MiB"),
    "rewrites a hidden test file": (on_import(  # the repository is read-only to the job uid
        "import pathlib\nfor p in pathlib.Path('tests').glob('test_*.py'):\n"
        "    p.write_text('def test_touching_merge(): pass\\ndef test_no_empty_gaps(): pass\\n')"),
        "fail", "FAIL_TO_PASS 0/2 passed"),
}
LINGER = on_import("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(3600)")


@pytest.fixture(scope="module", params=ISOLATING)
def judge(request: pytest.FixtureRequest) -> Iterator[Judge]:
    require_backend(request.param)
    with Judge(request.param, workers=1, run_label="test-repo-hostile") as j:
        yield j


def test_the_reference_passes(judge: Judge) -> None:
    verdict = judge.judge(TASK, TASK.reference)
    assert verdict.status == "pass", verdict
    assert set(verdict.test_outcomes.values()) == {"passed"}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_repository_code_does_not_pass(judge: Judge, name: str) -> None:
    diff, status, phrase = HOSTILE[name]
    verdict = judge.judge(TASK, diff)
    assert (verdict.status, phrase in verdict.detail) == (status, True), verdict
    control = judge.judge(TASK, TASK.reference)
    assert control.status == "pass", control


def test_a_process_left_holding_the_pipe_neither_holds_the_verdict_nor_survives(
        judge: Judge) -> None:
    # the fix, and a forked copy of the test process that sleeps with the result pipe open:
    # the verdict comes when the test process ends (not at the wall clock: that would be a
    # timeout), and the sleeper is killed with the rest of the uid (else the sandbox is dirty)
    verdict = judge.judge(TASK, LINGER)
    assert verdict.status == "pass", verdict
    assert judge.judge(TASK, TASK.reference).status == "pass"


# ---------------------------------------------------------------- the channel's parser


NODES = {"t.py::a", "t.py::b"}


def line(key: str = "k", **record: object) -> bytes:
    return (json.dumps({**record, "key": key}) + "\n").encode()


def test_records_parse_and_every_stray_line_is_garbage() -> None:
    good = (line(node="t.py::a", when="setup", outcome="passed")
            + line(node="t.py::a", when="call", outcome="failed") + line(end=1))
    records, end = parse_records(good, NODES, "k")
    assert end == 1 and len(records) == 3
    for bad in (
        line(key="other", node="t.py::a", when="call", outcome="passed"),  # not the job's key
        b'{"node": "t.py::a", "when": "call", "outcome": "passed"}\n',  # no key at all
        line(node="t.py::zzz", when="call", outcome="passed"),  # a test no one asked for
        line(node="t.py::a", when="call", outcome="great"),  # an outcome pytest has not
        line(node="t.py::a", when="call", outcome="passed") * 2,  # the same phase twice
        line(end=0) + line(node="t.py::a", when="call", outcome="passed"),  # after the end
        line(node="t.py::a", when="call", outcome="passed", extra=1),  # another shape
        b"not json\n",
        line(end=0)[:-3],  # cut short
    ):
        with pytest.raises(Garbage):
            parse_records(bad, NODES, "k")
