"""``agent.toml``: what an agent directory declares about itself.

The host reads it (never the agent's code) to know which module to import in the container and
which files the agent says it may change; the audit holds each child to its parent's
declaration, so a child cannot widen its own licence unnoticed.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsi_bench.errors import RsiBenchError

MANIFEST = "agent.toml"
SCHEMA_VERSION = 1
FIELDS = ("schema_version", "name", "entry", "mutable", "description")


class AgentError(RsiBenchError):
    """An agent directory is unusable (the message names the file and the field)."""


@dataclass(frozen=True)
class AgentManifest:
    """``mutable`` holds globs relative to the agent directory, matched with ``fnmatch``
    (``*`` also matches ``/``), e.g. ``["agent.py", "prompts/*"]``."""

    name: str
    entry: str
    mutable: tuple[str, ...]
    description: str = ""
    schema_version: int = SCHEMA_VERSION

    def is_mutable(self, relative_path: str) -> bool:
        return any(fnmatch.fnmatchcase(relative_path, glob) for glob in self.mutable)

    def entry_files(self) -> tuple[str, str]:
        """Where the entry module may live: ``a/b.py`` or ``a/b/__init__.py``."""
        base = self.entry.replace(".", "/")
        return f"{base}.py", f"{base}/__init__.py"


def load_manifest(agent_dir: str | Path) -> AgentManifest:
    """Parse and check ``<agent_dir>/agent.toml``; raise AgentError naming file and field."""
    agent_dir = Path(agent_dir)
    path = agent_dir / MANIFEST
    if not agent_dir.is_dir():
        raise AgentError(f"{agent_dir}: not a directory (an agent is a directory with "
                         f"{MANIFEST})")
    if path.is_symlink() or not path.is_file():
        raise AgentError(f"{agent_dir}: no {MANIFEST} (an agent directory needs one)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AgentError(f"{path}: not valid TOML: {exc}") from None

    def fail(field: str, problem: str) -> AgentError:
        return AgentError(f"{path}: field {field!r} {problem}")

    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise fail(unknown[0], f"is not known (known: {', '.join(FIELDS)})")
    version = data.get("schema_version")
    if version is None:
        raise fail("schema_version", f"is missing (use {SCHEMA_VERSION})")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise fail("schema_version", f"is {version!r}; this rsi-bench reads {SCHEMA_VERSION}")
    name = _string(data, "name", fail)
    entry = _string(data, "entry", fail)
    if not all(part.isidentifier() for part in entry.split(".")):
        raise fail("entry", f"must be a module name such as 'agent', not {entry!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise fail("description", "must be a string")
    manifest = AgentManifest(name, entry, _globs(data.get("mutable"), fail), description)
    if not any((agent_dir / f).is_file() for f in manifest.entry_files()):
        raise fail("entry", f"names module {entry!r}, but there is no "
                   f"{' or '.join(manifest.entry_files())} in {agent_dir}")
    return manifest


def _string(data: dict[str, Any], field: str, fail: Any) -> str:
    value = data.get(field)
    if value is None:
        raise fail(field, "is missing")
    if not isinstance(value, str) or not value.strip():
        raise fail(field, "must be a non-empty string")
    return value


def _globs(value: Any, fail: Any) -> tuple[str, ...]:
    if value is None:
        raise fail("mutable", "is missing (a list of globs, e.g. [\"agent.py\", \"prompts/*\"])")
    if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
        raise fail("mutable", "must be a list of non-empty strings")
    for glob in value:
        if glob.startswith("/") or ".." in glob.split("/"):
            raise fail("mutable", f"holds {glob!r}; globs are relative to the agent directory")
    return tuple(value)
