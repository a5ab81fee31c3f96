"""Wrong variants of a reference solution, by small deterministic AST mutations.

Each mutation changes the first place it applies to (in ``ast.walk`` order):
- ``off_by_one``: an integer constant ``n`` becomes ``n + 1``;
- ``flip_comparison``: a comparison operator becomes its negation (``<`` -> ``>=``, ``==`` ->
  ``!=``, ``in`` -> ``not in`` ...);
- ``return_none``: every ``return <value>`` in the entry point returns ``None`` instead (a bare
  ``return`` already does: it is left alone).
When none applies, the variant is a function of the same name whose body raises
``NotImplementedError``. A mutant can survive a weak test suite (the change may not matter);
a harness that needs certainly-wrong variants should judge them and drop survivors.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from rsi_bench import pyparse

_NEGATE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}


def off_by_one(tree: ast.Module, entry_point: str) -> bool:
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and type(node.value) is int):
            node.value += 1
            return True
    return False


def flip_comparison(tree: ast.Module, entry_point: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            node.ops[0] = _NEGATE[type(node.ops[0])]()
            return True
    return False


def return_none(tree: ast.Module, entry_point: str) -> bool:
    changed = False
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) and func.name == entry_point:
            for node in ast.walk(func):
                if isinstance(node, ast.Return) and node.value is not None and not (
                        isinstance(node.value, ast.Constant) and node.value.value is None):
                    node.value = ast.Constant(None)
                    changed = True
    return changed


MUTATIONS: dict[str, Callable[[ast.Module, str], bool]] = {
    "off_by_one": off_by_one,
    "flip_comparison": flip_comparison,
    "return_none": return_none,
}


def not_implemented(entry_point: str) -> str:
    return (f"def {entry_point}(*args, **kwargs):\n"
            f"    raise NotImplementedError('simulated wrong answer')\n")


def wrong_variants(reference: str, entry_point: str) -> tuple[str, ...]:
    """Distinct mutants of ``reference``, in MUTATIONS order; never empty."""
    try:
        original = ast.unparse(pyparse.parse(reference))
    except SyntaxError:
        return (not_implemented(entry_point),)
    variants: list[str] = []
    for mutate in MUTATIONS.values():
        tree = pyparse.parse(reference)
        if mutate(tree, entry_point):
            source = ast.unparse(ast.fix_missing_locations(tree)) + "\n"
            if source.strip() != original.strip() and source not in variants:
                variants.append(source)
    return tuple(variants) or (not_implemented(entry_point),)
