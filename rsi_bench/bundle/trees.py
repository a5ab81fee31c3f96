"""A bundled agent's files: read from the lineage's commits (never through ``git archive``,
which a ``.gitattributes`` could steer), hashed, and compared file by file.

What the lineage commits is what containers mounted (``rsi_bench.agents.tree``), so a bundle's
final agent is written from the selected generation's commit, and ``verify`` compares every
file of ``final-agent/`` with that commit: an added, missing or changed file is named.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from rsi_bench.errors import InputError

REGULAR_MODES = {b"100644": False, b"100755": True}


class Blob(NamedTuple):
    data: bytes
    executable: bool = False


def agent_hash(files: Mapping[str, Blob]) -> str:
    """SHA-256 over every file (relative path and content), in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0" + files[path].data + b"\0")
    return digest.hexdigest()


def disk_files(root: Path) -> dict[str, Blob]:
    """Every regular file under ``root``: nothing is skipped, so nothing added goes unseen."""
    out: dict[str, Blob] = {}
    if not root.is_dir():
        return out
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                out[path.relative_to(root).as_posix()] = Blob(
                    path.read_bytes(), bool(path.stat().st_mode & 0o100))
    return out


def commit_files(repo: Path, ref: str) -> dict[str, Blob]:
    """The files of commit ``ref`` in ``repo``; InputError for an entry that is not a regular
    file (a symlink or submodule could not have been mounted)."""
    listing = _git(repo, "ls-tree", "-r", "-z", "--full-tree", ref)
    entries: list[tuple[str, str, bool]] = []
    for record in filter(None, listing.split(b"\0")):
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, sha = meta.split(b" ")
        path = raw_path.decode("utf-8", "surrogateescape")
        if kind != b"blob" or mode not in REGULAR_MODES:
            raise InputError(f"{ref}: {path} is not a regular file (mode {mode.decode()})")
        entries.append((path, sha.decode(), REGULAR_MODES[mode]))
    batch = _git(repo, "cat-file", "--batch",
                 input="".join(f"{sha}\n" for _, sha, _ in entries).encode())
    out: dict[str, Blob] = {}
    for (path, _sha, executable), data in zip(entries, _blobs(batch, len(entries)),
                                              strict=True):
        out[path] = Blob(data, executable)
    return out


def _blobs(batch: bytes, count: int) -> Iterator[bytes]:
    at = 0
    for _ in range(count):
        end = batch.index(b"\n", at)
        size = int(batch[at:end].split(b" ")[2])
        yield batch[end + 1:end + 1 + size]
        at = end + 1 + size + 1  # the content, then a newline


def _git(repo: Path, *args: str, input: bytes | None = None) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], input=input, capture_output=True)
    if done.returncode != 0:
        raise InputError(f"git {' '.join(args[:2])} in {repo} failed: "
                         f"{done.stderr.decode(errors='replace').strip()[:200]}")
    return done.stdout


def write_files(files: Mapping[str, Blob], dest: Path) -> None:
    dest.mkdir(parents=True)
    for path, blob in sorted(files.items()):
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob.data)
        os.chmod(target, 0o755 if blob.executable else 0o644)


def compare(want: Mapping[str, Blob], got: Mapping[str, Blob], what: str) -> Iterator[str]:
    """One line per file that differs between ``want`` (``what``) and ``got``."""
    for path in sorted(set(want) | set(got)):
        if path not in got:
            yield f"{path}: missing (it is in {what})"
        elif path not in want:
            yield f"{path}: not in {what} (an added file)"
        elif want[path].data != got[path].data:
            yield f"{path}: differs from {what}"
