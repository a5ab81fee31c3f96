"""Run results as tables and statistics: load runs, analyse them, export them.

``load_run`` is light to import (pandas is imported when a run is loaded); the analysis and the
exporters are imported on first use.
"""

from __future__ import annotations

from rsi_bench.results.load import RunData, load_run

__all__ = ["RunData", "load_run"]
