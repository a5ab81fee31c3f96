"""Broker tests share the loopback provider servers of tests/models and its no-real-provider
guard (tests/offline.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from offline import no_real_provider  # noqa: F401  (an autouse fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
