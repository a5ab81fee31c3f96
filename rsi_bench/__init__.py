"""rsi-bench: a benchmark for recursive self-improvement of coding agents.

The package is the grader. It never imports agent code: agents are data until a sandbox runs them.
"""

__version__ = "0.1.0"

from rsi_bench.results.load import load_run as load_run  # noqa: E402  (pandas loads lazily)
