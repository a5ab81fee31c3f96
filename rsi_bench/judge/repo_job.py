"""Judging a unified diff against a repository (task kind ``repo``). Stdlib only.

SWE-bench's semantics: the diff goes on a fresh copy of the repository, the hidden test_patch
goes on AFTER it (files the test_patch touches are first put back as they were, so hidden tests
overwrite whatever the diff did to them), then pytest runs the FAIL_TO_PASS and PASS_TO_PASS
node ids; the job passes when every one of them passes.

What a diff may not touch (``invalid``): paths outside the repository (``repo_diff``), test
files (``tests/``, ``test_*.py``, ``*_test.py``), and whatever changes how pytest or Python
starts: ``conftest.py``, ``pytest.ini``, ``tox.ini``, ``setup.cfg``, ``pyproject.toml``,
``sitecustomize.py``, ``usercustomize.py``, ``*.pth``. pytest runs with a configuration file
written outside the repository (``-c``), plugin autoloading off and the cache off; outcomes come
from pytest's junit XML, written outside the repository.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from typing import Any

from rsi_bench.judge.repo_diff import DiffError, apply, parse

STARTUP_NAMES = frozenset({"conftest.py", "pytest.ini", "tox.ini", "setup.cfg",
                           "pyproject.toml", "sitecustomize.py", "usercustomize.py"})


def refused(path: str) -> str:
    """Why the agent's diff may not touch ``path``, or '' when it may."""
    base = path.rsplit("/", 1)[-1]
    if base in STARTUP_NAMES or base.endswith(".pth"):
        return f"{path}: changes how pytest or Python starts"
    if path.split("/")[0] in ("tests", "test") or base.startswith("test_") \
            or base.endswith("_test.py"):
        return f"{path}: a test file"
    return ""


def write_files(root: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = os.path.join(root, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)


def prepare(root: str, spec: dict[str, Any], diff: str) -> None:
    """The repository under ``root`` with ``diff`` and then the test_patch applied."""
    write_files(root, spec["files"])
    for patch in parse(diff):
        for name in {patch.old, patch.new} - {None}:
            why = refused(str(name))
            if why:
                raise DiffError(f"refused path {why}")
    apply(root, diff)
    for patch in parse(spec["test_patch"]):  # put back what the hidden tests will overwrite
        for name in {patch.old, patch.new} - {None}:
            target = os.path.join(root, str(name))
            if str(name) in spec["files"]:
                write_files(root, {str(name): spec["files"][str(name)]})
            elif os.path.lexists(target):
                os.unlink(target)
    apply(root, spec["test_patch"])


def _junit_id(node: str) -> tuple[str, str]:
    path, _, rest = node.partition("::")
    parts = rest.split("::")
    module = path[:-3].replace("/", ".") if path.endswith(".py") else path
    return ".".join([module, *parts[:-1]]), parts[-1]


def outcomes(report: str, nodes: list[str]) -> dict[str, str]:
    """passed / failed / skipped / missing per node id, from pytest's junit XML."""
    found: dict[tuple[str, str], str] = {}
    try:
        tree = ET.parse(report)
    except (OSError, ET.ParseError):
        return dict.fromkeys(nodes, "missing")
    for case in tree.iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        tags = {child.tag for child in case}
        state = ("failed" if tags & {"failure", "error"} else
                 "skipped" if "skipped" in tags else "passed")
        found[key] = "failed" if found.get(key, state) == "failed" else state
    return {node: found.get(_junit_id(node), "missing") for node in nodes}


def run(spec: dict[str, Any], diff: str, *, python: str = "python3", timeout: float = 120.0,
        preexec: Any = None) -> dict[str, Any]:
    """Judge ``diff``: the result frame's fields (status, detail, tests)."""
    start = time.monotonic()
    nodes = list(dict.fromkeys(spec["FAIL_TO_PASS"] + spec["PASS_TO_PASS"]))
    with tempfile.TemporaryDirectory(prefix="rsi-repo-") as scratch:
        root, control = os.path.join(scratch, "repo"), os.path.join(scratch, "control")
        os.makedirs(root)
        os.makedirs(control, mode=0o700)
        try:
            prepare(root, spec, diff)
        except (DiffError, UnicodeDecodeError) as exc:
            return {"status": "invalid", "detail": f"the diff does not apply: {exc}"[:500],
                    "duration_s": round(time.monotonic() - start, 6), "tests": {}}
        ini, report = os.path.join(control, "pytest.ini"), os.path.join(control, "report.xml")
        with open(ini, "w", encoding="utf-8") as f:
            f.write(f"[pytest]\naddopts =\npythonpath = {root}\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": scratch, "LANG": "C.UTF-8",
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [python, "-I", "-m", "pytest", "-c", ini, "--rootdir", root, "-q",
               "-p", "no:cacheprovider", f"--junitxml={report}", "-o", "junit_family=xunit1",
               *nodes]
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=timeout,
                                  preexec_fn=preexec, check=False)
            tail = (proc.stdout + proc.stderr)[-4096:].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "detail": f"pytest ran over {timeout:.0f} s",
                    "duration_s": round(time.monotonic() - start, 6), "tests": {}}
        tests = outcomes(report, nodes)
    failing = [n for n in nodes if tests[n] != "passed"]
    status = "pass" if not failing else "fail"
    detail = (f"{len(nodes)} tests" if not failing else
              f"{len(failing)} of {len(nodes)} tests did not pass: " + ", ".join(failing))
    return {"status": status, "detail": detail[:500], "tests": tests, "output_tail": tail,
            "duration_s": round(time.monotonic() - start, 6), "calls": len(nodes) - len(failing)}
