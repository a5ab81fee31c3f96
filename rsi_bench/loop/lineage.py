"""Every generation's agent tree, in a git repository: one commit per generation, parented on
the commit of the generation it was made from, so ``git diff`` and ``git log`` show every
self-modification and the whole lineage.

Layout: ``agents/gNNNN/`` holds generation N's files (what containers mount: the same walk,
``rsi_bench.agents.tree``, decides what is committed and what is mounted); the commits live
in ``agents/.git`` under ``refs/generations/gNNNN``. Commits are written in-process as loose
objects, byte-identical to what ``git add -A``, ``write-tree`` and ``commit-tree`` would make.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

from rsi_bench.agents.tree import AgentFile, agent_files
from rsi_bench.errors import RsiBenchError

IDENTITY = {"GIT_AUTHOR_NAME": "rsi-bench", "GIT_AUTHOR_EMAIL": "rsi-bench@localhost",
            "GIT_COMMITTER_NAME": "rsi-bench", "GIT_COMMITTER_EMAIL": "rsi-bench@localhost",
            # fixed dates: the same run produces the same commit ids
            "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
            "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000"}
SIGNATURE = b"rsi-bench <rsi-bench@localhost> 946684800 +0000"  # IDENTITY as git writes it
SHA_RE = re.compile(rb"[0-9a-f]{40}\n?")


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
        """Commit generation's directory as a tree; return the commit id. Raises AgentError
        for an entry an agent cannot hold (see ``rsi_bench.agents.tree``): what is committed
        is exactly what a container mounts."""
        files = agent_files(self.path(generation))
        tree = self._write_tree([(tuple(f.path.split("/")), f) for f in files])
        if tree is None:
            tree = self._write_object(b"tree", b"")
        text = b"tree " + tree.hex().encode() + b"\n"
        if parent is not None:
            text += b"parent " + self.ref(parent).encode() + b"\n"
        body = message.encode()
        if body and not body.endswith(b"\n"):
            body += b"\n"  # as commit-tree -m
        text += b"author " + SIGNATURE + b"\ncommitter " + SIGNATURE + b"\n\n" + body
        sha = self._write_object(b"commit", text).hex()
        self._write_file(self._ref_path(generation), sha.encode() + b"\n", 0o644)
        return sha

    def _write_tree(self, files: list[tuple[tuple[str, ...], AgentFile]]) -> bytes | None:
        """Write the tree of ``files`` (path parts relative to this tree) as ``git add -A``
        would; None when there is no file."""
        entries, subdirs = [], {}
        for parts, f in files:
            if len(parts) == 1:
                with open(f.source, "rb") as data:
                    blob = self._write_object(b"blob", data.read())
                entries.append((parts[0].encode(), b"100755" if f.executable else b"100644",
                                blob))
            else:
                subdirs.setdefault(parts[0], []).append((parts[1:], f))
        for name, inner in subdirs.items():
            sub = self._write_tree(inner)
            if sub is not None:
                entries.append((name.encode() + b"/", b"40000", sub))
        if not entries:
            return None
        entries.sort()  # git's order: a directory sorts as if its name ended in "/"
        return self._write_object(b"tree", b"".join(
            mode + b" " + name.rstrip(b"/") + b"\0" + sha for name, mode, sha in entries))

    def _write_object(self, kind: bytes, data: bytes) -> bytes:
        """Store a loose object unless it exists; return its binary sha1."""
        raw = kind + b" " + str(len(data)).encode() + b"\0" + data
        digest = hashlib.sha1(raw).digest()
        hexsha = digest.hex()
        path = self.root / ".git" / "objects" / hexsha[:2] / hexsha[2:]
        if not path.exists():
            self._write_file(path, zlib.compress(raw, 1), 0o444)
        return digest

    def _write_file(self, path: Path, data: bytes, mode: int) -> None:
        """Write path atomically: a temporary file in its directory, then a rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _ref_path(self, generation: int) -> Path:
        return self.root / ".git" / "refs" / "generations" / gen_name(generation)

    def ref(self, generation: int) -> str:
        """Generation's commit id: the loose ref file, else (packed refs) ``git rev-parse``."""
        with contextlib.suppress(FileNotFoundError):
            text = self._ref_path(generation).read_bytes()
            if SHA_RE.fullmatch(text):
                return text.decode().strip()
        return self._git("rev-parse", f"refs/generations/{gen_name(generation)}")

    def diff(self, parent: int, child: int) -> str:
        return self._git("diff", f"refs/generations/{gen_name(parent)}",
                         f"refs/generations/{gen_name(child)}")
