"""Every generation's agent tree, in a git repository: one commit per generation, parented on
the commit of the generation it was made from, so ``git diff`` and ``git log`` show every
self-modification and the whole lineage.

Layout: ``agents/gNNNN/`` holds generation N's files (what containers mount); the commits live
in ``agents/.git`` under ``refs/generations/gNNNN``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rsi_bench.errors import RsiBenchError

IDENTITY = {"GIT_AUTHOR_NAME": "rsi-bench", "GIT_AUTHOR_EMAIL": "rsi-bench@localhost",
            "GIT_COMMITTER_NAME": "rsi-bench", "GIT_COMMITTER_EMAIL": "rsi-bench@localhost",
            # fixed dates: the same run produces the same commit ids
            "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
            "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000"}


def gen_name(generation: int) -> str:
    return f"g{generation:04d}"


class Lineage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()  # git runs with -C elsewhere: relative paths would break
        if shutil.which("git") is None:
            raise RsiBenchError("git is needed to record agent lineage: install git")
        root.mkdir(parents=True, exist_ok=True)
        if not (root / ".git").exists():
            self._git("init", "-q")

    def _git(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
             ) -> str:
        done = subprocess.run(["git", "-C", str(cwd or self.root), *args], capture_output=True,
                              text=True, env={**os.environ, **IDENTITY, **(env or {})})
        if done.returncode != 0:
            raise RsiBenchError(f"git {' '.join(args[:2])} failed: {done.stderr.strip()[:300]}")
        return done.stdout.strip()

    def path(self, generation: int) -> Path:
        return self.root / gen_name(generation)

    def commit(self, generation: int, parent: int | None, message: str) -> str:
        """Commit generation's directory as a tree; return the commit id."""
        tree_dir = self.path(generation)
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), "GIT_WORK_TREE": str(tree_dir),
                   "GIT_DIR": str(self.root / ".git")}
            self._git("add", "-A", ".", env=env, cwd=tree_dir)
            tree = self._git("write-tree", env=env, cwd=tree_dir)
        args = ["commit-tree", tree, "-m", message]
        if parent is not None:
            args += ["-p", self.ref(parent)]
        sha = self._git(*args)
        self._git("update-ref", f"refs/generations/{gen_name(generation)}", sha)
        return sha

    def ref(self, generation: int) -> str:
        return self._git("rev-parse", f"refs/generations/{gen_name(generation)}")

    def diff(self, parent: int, child: int) -> str:
        return self._git("diff", f"refs/generations/{gen_name(parent)}",
                         f"refs/generations/{gen_name(child)}")
