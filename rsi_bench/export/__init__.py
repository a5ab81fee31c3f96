"""Exports of a run into other tools' formats (``rsi-bench export ...``).

Exporters only read a run: they open its store read-only and never import agent code.
"""
