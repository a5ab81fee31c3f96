"""SWE-bench rows (``princeton-nlp/SWE-bench_Lite``, ``princeton-nlp/SWE-bench_Verified``) as
repo tasks: ``hf:<dataset>?layout=swebench``.

The dataset's schema: ``instance_id``, ``repo``, ``base_commit``, ``patch`` (the reference fix),
``test_patch``, ``problem_statement``, ``hints_text``, ``created_at``, ``version``,
``FAIL_TO_PASS`` and ``PASS_TO_PASS`` (JSON-encoded lists of test ids, as strings) and
``environment_setup_commit``; Verified adds ``difficulty`` (an estimate of the time a fix
takes). A row becomes a repo task:

- ``id``: the instance id; ``reference``: the patch;
- ``prompt``: the problem statement, the repository's name and the base commit. The
  repository's files are not in the dataset, so they are not in the prompt (the agent's
  writable copy is read out of the environment image: ``rsi_bench/agents/checkout.py``);
  ``hints_text`` is left out, as in SWE-bench's standard setting;
- the hidden JSON (``Task.tests``): ``test_patch``, ``FAIL_TO_PASS``, ``PASS_TO_PASS``,
  ``base_commit``, ``time_limit_s`` and ``environment``: the instance's environment image and
  the repository's path inside it (no ``files``: the judge copies the repository out of the
  image, see ``rsi_bench/judge/repo_env.py``).

SWE-bench's harness tags an instance's image ``sweb.eval.<arch>.<instance id, lower case>``
(``TestSpec.instance_image_key``), with the repository at ``/testbed`` and the tests' Python in
the conda environment ``testbed``; its Docker Hub mirrors are ``swebench/sweb.eval.x86_64.<id>``
with ``__`` written ``_1776_``. ``image=`` replaces the default tag: a template where
``{instance_id}`` is the lower-cased id and ``{hub_id}`` the same with ``__`` as ``_1776_``;
``python=`` names the interpreter in the image that runs the judge's runner and pytest.

The judge runs tests by pytest node id (``path::test``). Instances whose test ids are not node
ids (Django's and SymPy's own test runners) cannot be judged that way; they are left out and
the suite's description counts them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rsi_bench.errors import TaskFormatError
from rsi_bench.judge.repo_diff import DiffError, parse
from rsi_bench.tasks.model import Task

LAYOUT = "swebench"
IMAGE = "sweb.eval.x86_64.{instance_id}:latest"
REPO_DIR = "/testbed"
PYTHON = "/opt/miniconda3/envs/testbed/bin/python"
TIME_LIMIT_S = 300.0  # CPU seconds of the pytest run (its wall clock is 4 x this + 10 s)
COLUMNS = ("instance_id", "repo", "base_commit", "patch", "test_patch", "problem_statement",
           "FAIL_TO_PASS", "PASS_TO_PASS")
# SWE-bench Verified's annotation of how long a fix takes, as the project's 1-3 grades
DIFFICULTY = {"<15 min fix": 1, "15 min - 1 hour": 2, "1-4 hours": 3, ">4 hours": 3}


def image_name(template: str, instance_id: str) -> str:
    """The environment image of ``instance_id`` from an ``image=`` template."""
    low = instance_id.lower()
    try:
        return template.format(instance_id=low, hub_id=low.replace("__", "_1776_"))
    except (KeyError, IndexError, ValueError) as exc:
        raise TaskFormatError(f"image={template!r}: not a template of {{instance_id}} or "
                              f"{{hub_id}} ({type(exc).__name__}: {exc})") from None


def render(statement: str, repo: str, base_commit: str) -> str:
    return (f"{statement.rstrip()}\n\nRepository: {repo}, at commit {base_commit}. Its files are "
            "not included here; answer with a unified diff against that commit.\n")


def rows_to_swebench_tasks(rows: Sequence[Mapping[str, Any]], *, where: str,
                           image: str | None = None,
                           python: str | None = None) -> tuple[list[Task], str]:
    """Tasks from SWE-bench rows, and a note on the rows left out (empty if none)."""
    tasks, left_out = [], 0
    for index, row in enumerate(rows):
        task = _task(row, f"{where}: row {index}", image or IMAGE, python or PYTHON, where)
        if task is None:
            left_out += 1
        else:
            tasks.append(task)
    note = (f"{left_out} of {len(rows)} rows left out: their tests are not pytest node ids"
            if left_out else "")
    return tasks, note


def _task(row: Mapping[str, Any], where: str, image: str, python: str,
          source: str) -> Task | None:
    values = {}
    for name in COLUMNS:
        value = row.get(name)
        if value is None:
            raise TaskFormatError(f"{where}: column '{name}': missing "
                                  f"(columns: {', '.join(map(str, row))})")
        if not isinstance(value, str):
            raise TaskFormatError(f"{where}: column '{name}': must be a string, not "
                                  f"{type(value).__name__}")
        values[name] = value
    instance_id = values["instance_id"].strip()
    where = f"{where} ({instance_id})"
    if not instance_id:
        raise TaskFormatError(f"{where}: column 'instance_id': empty")
    for name in ("problem_statement", "patch", "test_patch", "repo", "base_commit"):
        if not values[name].strip():
            raise TaskFormatError(f"{where}: column '{name}': empty")
    for name in ("patch", "test_patch"):
        try:
            parse(values[name])
        except DiffError as exc:
            raise TaskFormatError(f"{where}: column '{name}': not a unified diff: {exc}"
                                  ) from None
    ids = {name: _test_ids(values[name], name, where) for name in ("FAIL_TO_PASS",
                                                                    "PASS_TO_PASS")}
    if not ids["FAIL_TO_PASS"]:
        raise TaskFormatError(f"{where}: column 'FAIL_TO_PASS': names no test")
    if not all("::" in node for node in ids["FAIL_TO_PASS"] + ids["PASS_TO_PASS"]):
        return None
    spec = {"test_patch": values["test_patch"], **ids, "base_commit": values["base_commit"],
            "time_limit_s": TIME_LIMIT_S,
            "environment": {"image": image_name(image, instance_id), "repo": REPO_DIR,
                            "python": python}}
    return Task(id=instance_id, prompt=render(values["problem_statement"], values["repo"],
                                              values["base_commit"]),
                entry_point="", tests=json.dumps(spec, sort_keys=True, ensure_ascii=False),
                reference=values["patch"], source=source,
                difficulty=DIFFICULTY.get(str(row.get("difficulty") or "")), kind="repo")


def _test_ids(text: str, name: str, where: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskFormatError(f"{where}: column '{name}': not a JSON list of test ids: "
                              f"{exc.msg} at character {exc.pos}") from None
    if not isinstance(value, list) or not all(isinstance(i, str) and i for i in value):
        raise TaskFormatError(f"{where}: column '{name}': must be a JSON list of test ids "
                              f"(strings), not {text[:60]!r}")
    return list(dict.fromkeys(value))
