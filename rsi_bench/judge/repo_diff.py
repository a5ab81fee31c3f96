"""Unified diffs for repo tasks: parse, check paths, apply to a directory. Stdlib only (the
judge runner deploys it), never a `patch` or `git` binary: what a diff may touch is decided here.

A diff is refused (``DiffError``) when it does not parse, names a path that is absolute, holds
``..`` or a backslash or a NUL, leaves the repository through a symlink, or does not apply.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class DiffError(ValueError):
    """The diff cannot be applied: the solution is invalid, not wrong."""


@dataclass
class FilePatch:
    old: str | None  # None: a new file
    new: str | None  # None: a deleted file
    hunks: list[tuple[int, list[str]]] = field(default_factory=list)  # (old start, lines)

    @property
    def path(self) -> str:
        return self.new if self.new is not None else self.old or ""


def _name(raw: str) -> str | None:
    name = raw.split("\t", 1)[0].strip()
    if name == "/dev/null":
        return None
    if name.startswith(("a/", "b/")):
        name = name[2:]
    return safe_path(name)


def safe_path(name: str) -> str:
    """``name`` if it is a plain relative path inside the repository, else DiffError."""
    if not name or "\\" in name or "\0" in name or name.startswith("/"):
        raise DiffError(f"refused path {name!r}")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise DiffError(f"refused path {name!r}")
    return name


def parse(diff: str) -> list[FilePatch]:
    lines = diff.splitlines()
    patches: list[FilePatch] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            patch = FilePatch(_name(line[4:]), _name(lines[i + 1][4:]))
            if patch.old is None and patch.new is None:
                raise DiffError("a file patch from /dev/null to /dev/null")
            patches.append(patch)
            i += 2
            continue
        match = _HUNK.match(line)
        if match:
            if not patches:
                raise DiffError("a hunk before any file header")
            old_len = int(match.group(2) or "1")
            new_len = int(match.group(4) or "1")
            body, i = [], i + 1
            seen_old = seen_new = 0
            while i < len(lines) and (seen_old < old_len or seen_new < new_len):
                text = lines[i]
                if text.startswith("\\"):  # "\ No newline at end of file"
                    i += 1
                    continue
                tag = text[:1] or " "
                if tag not in " +-":
                    raise DiffError(f"bad hunk line {i + 1}: {text[:60]!r}")
                seen_old += tag in " -"
                seen_new += tag in " +"
                body.append(tag + text[1:])
                i += 1
            if seen_old != old_len or seen_new != new_len:
                raise DiffError(f"a hunk of {patches[-1].path} is truncated")
            patches[-1].hunks.append((int(match.group(1)), body))
            continue
        i += 1  # "diff --git", "index ...", comments between files
    if not patches and diff.strip():
        raise DiffError("no file patch in the diff")
    return patches


def _resolve(root: str, rel: str) -> str:
    """The file's path under ``root``; no component on the way may be a symlink."""
    path = root
    for part in rel.split("/"):
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise DiffError(f"refused path {rel!r}: goes through a symlink")
    return path


def _apply_hunks(old: list[str], hunks: list[tuple[int, list[str]]], name: str) -> list[str]:
    out, pos = [], 0
    for start, body in hunks:
        want = [t[1:] for t in body if t[0] in " -"]
        repl = [t[1:] for t in body if t[0] in " +"]
        at = max(start - 1, 0) if want else start
        found = next((a for a in sorted(range(pos, len(old) - len(want) + 1),
                                        key=lambda a: abs(a - at))
                      if old[a:a + len(want)] == want), None) if want else min(at, len(old))
        if found is None:
            raise DiffError(f"a hunk of {name} does not apply (at line {start})")
        out += old[pos:found] + repl
        pos = found + len(want)
    return out + old[pos:]


def apply(root: str, diff: str) -> list[str]:
    """Apply ``diff`` under ``root`` (all or nothing); the paths it touched."""
    patches = parse(diff)
    results: dict[str, str | None] = {}
    for patch in patches:
        name = patch.path
        target = _resolve(root, name)
        if patch.old is None:
            if os.path.lexists(target):
                raise DiffError(f"{name} already exists")
            old: list[str] = []
        else:
            if not os.path.isfile(target):
                raise DiffError(f"{name} does not exist")
            with open(target, encoding="utf-8") as f:
                old = f.read().splitlines()
        new = _apply_hunks(old, patch.hunks, name)
        results[name] = None if patch.new is None else "\n".join(new) + ("\n" if new else "")
        if patch.old is not None and patch.new is not None and patch.old != patch.new:
            results.setdefault(patch.old, None)
    for name, text in results.items():
        target = _resolve(root, name)
        if text is None:
            if os.path.lexists(target):
                os.unlink(target)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(text)
    return list(results)
