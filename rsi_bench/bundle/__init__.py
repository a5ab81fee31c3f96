"""Leaderboard bundles: ``bundle`` packs runs so that ``verify`` can re-check every number."""

from rsi_bench.bundle.outcome import Report
from rsi_bench.bundle.pack import bundle
from rsi_bench.bundle.verify import verify

__all__ = ["Report", "bundle", "verify"]
