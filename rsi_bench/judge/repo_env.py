"""The judge runner inside a task's own environment image (a SWE-bench instance image). Stdlib
only.

A task whose hidden JSON has an ``environment`` (``{"image", "repo", "python"}``, see
``rsi_bench/tasks/hf_swebench.py``) is judged in a sandbox made from that image, not from the
judge image. The image carries no runner: the host bind-mounts its own copies of the runner's
files read-only at the place the judge image has them (``/opt/rsi-bench``), this module with
them, and starts ``python3 -I repo_env.py <the runner's options>``. This is runner.py as it is
(the same zygote, wipe and checks, the same repo job, plugin and verdict rules), with two
differences for a repo job:

- the repository is copied from the environment's path (``/testbed``) into the job's fresh
  work directory (without its ``.git``, sockets, fifos, devices, and symlinks that are
  absolute or lead outside it), instead of written from the task's ``files``; the agent's
  diff and the test_patch are then applied to that copy, exactly as for any repo task;
- the test process runs the environment's interpreter (``environment.python``: the one with
  the repository's dependencies and pytest installed), while the runner keeps the one it was
  started with (the runner needs Python 3.10 or later; the test process's interpreter needs
  only what repo_plugin.py needs, 3.7 or later, and pytest).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves this directory out

import repo_job  # type: ignore[import-not-found]  # noqa: E402 - after the path above
import runner  # type: ignore[import-not-found]  # noqa: E402

_prepare = repo_job.prepare
_test_python: list[str] = []  # the current job's interpreter, set by prepare, read by spawn


def _skipper(top: str) -> Any:
    """What the copy of ``top`` leaves out: the git directory; sockets, fifos and devices (a
    fifo would block the copy); and symlinks that are absolute, dangling or lead out of the
    repository (the job's copy is made read-only through them: they must stay inside it)."""
    top = os.path.realpath(top)

    def skipped(directory: str, names: list[str]) -> set[str]:
        left = set()
        for name in names:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                target = os.path.realpath(path)
                inside = os.path.commonpath([top, target]) == top
                if os.path.isabs(os.readlink(path)) or not inside or not os.path.exists(target):
                    left.add(name)
            elif name == ".git" or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                left.add(name)
        return left

    return skipped


def prepare(root: str, spec: dict[str, Any], diff: str) -> None:
    """The environment's repository under ``root``, then the diff and the test_patch."""
    env = spec.get("environment")
    if not isinstance(env, dict) or not isinstance(env.get("repo"), str):
        raise RuntimeError("a repo job without an environment reached an environment runner")
    if not os.path.isdir(env["repo"]):
        raise RuntimeError(f"the environment image has no repository at {env['repo']}")
    python = env.get("python") or sys.executable
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise RuntimeError(f"the environment image has no interpreter at {python}")
    _test_python[:] = [python]
    shutil.copytree(env["repo"], root, symlinks=True, ignore=_skipper(env["repo"]),
                    dirs_exist_ok=True)
    _prepare(root, {**spec, "files": {}}, diff)


class EnvironmentRunner(runner.Runner):  # type: ignore[misc]
    def _zygote_call(self, request: dict, fds: list[int] | None = None) -> dict:
        job = request.get("job")
        if request.get("op") == "spawn" and isinstance(job, dict) and job.get("kind") == "repo":
            if not _test_python:
                raise RuntimeError("a repo test process before its repository was prepared")
            request = {**request, "job": {**job, "python": _test_python.pop()}}
        return super()._zygote_call(request, fds)


repo_job.prepare = prepare
runner.Runner = EnvironmentRunner

if __name__ == "__main__":
    sys.exit(runner.main())
