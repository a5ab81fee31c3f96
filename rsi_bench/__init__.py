"""rsi-bench: a benchmark for recursive self-improvement of coding agents.

The package is the grader. It never imports agent code: agents are data until a sandbox runs them.
"""

__version__ = "0.1.0"
