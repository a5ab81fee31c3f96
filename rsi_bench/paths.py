"""Where the project's data directories are: the repository's tasks/ and harness/."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def tasks_dir() -> Path:
    """The directory holding built-in suites (``RSI_BENCH_TASKS_DIR`` overrides)."""
    return Path(os.environ.get("RSI_BENCH_TASKS_DIR", REPO_ROOT / "tasks"))


def harness_dir() -> Path:
    """The directory holding the seed agent and the judge image recipe."""
    return Path(os.environ.get("RSI_BENCH_HARNESS_DIR", REPO_ROOT / "harness"))
