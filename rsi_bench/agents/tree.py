"""What an agent is, byte for byte: the one definition of the files that are recorded, mounted
and hashed.

Every boundary uses it. The improve's tar-back refuses a path outside it (``path_refusal``);
the lineage commits exactly ``agent_files(dir)``; containers mount a copy made by the same walk
(``copy_agent``); a bundle's final agent is the commit's own files. So the bytes an agent
container sees are the bytes of its generation's commit, and nothing rides along unrecorded:
no ``.git`` directory (git never records one), no bytecode cache (Python could run it in place
of its source), no symlink or special file, no empty directory (git records none), and no name
that git, a diff or another filesystem would read differently (``.gitattributes``, names that
are not UTF-8 or hold control characters, two names that differ only in case).
"""

from __future__ import annotations

import os
import shutil
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rsi_bench.agents.manifest import AgentError

MAX_DEPTH = 16  # directories deep; the lineage writes trees recursively
MAX_PATH_BYTES = 512
MAX_NAME_BYTES = 255
CACHE_DIR = "__pycache__"
CACHE_SUFFIXES = (".pyc", ".pyo")


def is_cache(parts: tuple[str, ...] | list[str]) -> bool:
    """A bytecode cache: never mounted, never recorded."""
    return CACHE_DIR in parts or parts[-1].endswith(CACHE_SUFFIXES)


def _name_refusal(name: str) -> str | None:
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not valid UTF-8"
    if name in ("", "."):
        return "the path has an empty or '.' component"
    if name == "..":
        return "path escapes the workspace"
    if len(raw) > MAX_NAME_BYTES:
        return f"a name longer than {MAX_NAME_BYTES} bytes"
    if any(c == "\\" or unicodedata.category(c)[0] == "C" or unicodedata.category(c) in (
            "Zl", "Zp") for c in name):
        return "the name holds a control, format or backslash character"
    folded = name.casefold().rstrip(". ")  # as git's own checks and NTFS read it
    if folded.startswith(".git") or folded == "git~1":
        return "git metadata (.git, .gitattributes, ...) is not recorded in the lineage"
    return None


def path_refusal(rel: str) -> str | None:
    """Why the relative POSIX path ``rel`` cannot be part of an agent, or None."""
    if rel.startswith("/"):
        return "path escapes the workspace"
    parts = rel.split("/")
    if ".." in parts:
        return "path escapes the workspace"
    for name in parts:
        reason = _name_refusal(name)
        if reason is not None:
            return reason
    if is_cache(parts):
        return "a bytecode cache is not recorded in the lineage (Python could run it instead " \
               "of its source)"
    if len(parts) > MAX_DEPTH:
        return f"more than {MAX_DEPTH} directories deep"
    if len(rel.encode("utf-8")) > MAX_PATH_BYTES:
        return f"a path longer than {MAX_PATH_BYTES} bytes"
    return None


class Collisions:
    """Paths seen so far, by the key a case-insensitive, normalising filesystem would use: two
    spellings of one key would be one file on another machine (and in a bundle unpacked there)."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def add(self, rel: str) -> str | None:
        """Record ``rel`` and its parent directories; the reason it collides, or None."""
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            key = unicodedata.normalize("NFC", prefix).casefold()
            other = self._seen.setdefault(key, prefix)
            if other != prefix:
                return f"differs from {other!r} only in case or Unicode normalisation"
        return None


@dataclass(frozen=True)
class AgentFile:
    path: str  # relative POSIX path
    source: Path
    executable: bool


def agent_files(root: str | Path) -> list[AgentFile]:
    """The agent at ``root``, file by file, sorted by path; bytecode caches are skipped.
    Raises AgentError naming the first entry that cannot be recorded."""
    root = Path(root)
    found: list[AgentFile] = []
    collisions = Collisions()

    def walk(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
        for entry in entries:
            rel = prefix + entry.name
            if is_cache(rel.split("/")):
                continue
            why = path_refusal(rel) or collisions.add(rel)
            mode = entry.stat(follow_symlinks=False).st_mode
            if why is None and not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                why = f"{_kind(mode)} (an agent holds regular files and directories only)"
            if why is not None:
                raise AgentError(f"{root}: {rel}: {why}")
            if stat.S_ISDIR(mode):
                walk(Path(entry.path), rel + "/")
            else:
                found.append(AgentFile(rel, Path(entry.path), bool(mode & stat.S_IXUSR)))

    walk(root, "")
    return found


def _kind(mode: int) -> str:
    return ("a symlink" if stat.S_ISLNK(mode) else "a fifo" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device file"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")


def copy_agent(src: str | Path, dest: str | Path) -> list[AgentFile]:
    """Copy the agent at ``src`` into the new directory ``dest``, world-readable, keeping the
    owner's executable bit: exactly the files ``agent_files`` lists (and so the lineage
    records). Directories are created only to hold files."""
    files = agent_files(src)
    dest = Path(dest)
    dest.mkdir(mode=0o755, parents=True)
    os.chmod(dest, 0o755)
    for f in files:
        target = dest / f.path
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        shutil.copyfile(f.source, target, follow_symlinks=False)
        os.chmod(target, 0o755 if f.executable else 0o644)
    return files
