"""Leaderboard bundles: ``bundle`` packs runs so that ``verify`` can re-check every number."""

from rsi_bench.bundle.pack import bundle
from rsi_bench.bundle.verify import Report, verify

__all__ = ["Report", "bundle", "verify"]
