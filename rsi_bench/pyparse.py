"""``ast.parse`` for the host's threads.

CPython 3.11 keeps the recursion depth of the C-to-Python AST conversion in state shared by the
whole interpreter, so two threads parsing at once can fail with ``SystemError: AST constructor
recursion depth mismatch`` (cpython issue 106905, fixed in later releases). An experiment's
runs are threads of one process and each parses its suite and the simulated model's variants,
so every parse on the host goes through this lock.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec", **kwargs: Any) -> Any:
    """``ast.parse(source, filename, mode)``: a Module for "exec", an Expression for "eval"."""
    with _LOCK:
        return ast.parse(source, filename=filename, mode=mode, **kwargs)
