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

A reference that is a unified diff (a repo task's) gets diff variants instead (``diff_variants``):
``no_change``, the diff's context alone (it applies and changes nothing, so the task's
FAIL_TO_PASS tests fail: validation proves the unpatched repository fails them), and
``partial``, the diff without its last hunk (when it has more than one; it can survive).
"""

from __future__ import annotations

import ast
import re
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
    if is_diff(reference):
        return diff_variants(reference)
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


HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@(.*)$")


def is_diff(text: str) -> bool:
    lines = text.lstrip("\n").splitlines()
    return any(a.startswith("--- ") and b.startswith("+++ ")
               for a, b in zip(lines, lines[1:], strict=False))


def _file_patches(diff: str) -> list[list[str]]:
    """The diff's file patches, each its lines from the ``---`` header on (text before the
    first header is dropped)."""
    lines = diff.splitlines()
    starts = [i for i, (a, b) in enumerate(zip(lines, lines[1:], strict=False))
              if a.startswith("--- ") and b.startswith("+++ ")]
    return [lines[i:j] for i, j in zip(starts, starts[1:] + [len(lines)], strict=True)]


def _no_change(patch: list[str]) -> list[str]:
    """A file patch with every change turned back into context (new and deleted files go)."""
    if patch[0] == "--- /dev/null" or patch[1] == "+++ /dev/null":
        return []
    out, dropped = patch[:2], False
    for line in patch[2:]:
        match = HUNK.match(line)
        if match:
            start, count = match.group(1), match.group(2) or "1"
            out.append(f"@@ -{start},{count} +{start},{count} @@{match.group(3)}")
        elif line.startswith("+"):
            dropped = True
            continue
        elif line.startswith("\\"):
            if dropped:
                continue
            out.append(line)
        else:
            out.append(" " + line[1:] if line.startswith("-") else line)
        dropped = False
    return out


def diff_variants(reference: str) -> tuple[str, ...]:
    """Wrong diffs for a repo task (see the module docstring); never empty."""
    patches = _file_patches(reference)
    variants: list[str] = []
    unchanged = [line for patch in patches for line in _no_change(patch)]
    if unchanged:
        variants.append("\n".join(unchanged) + "\n")
    hunks = [(p, i) for p, patch in enumerate(patches) for i, line in enumerate(patch)
             if HUNK.match(line)]
    if len(hunks) > 1:
        p, i = hunks[-1]
        kept = patches[:p] + ([patches[p][:i]] if any(q == p for q, _ in hunks[:-1]) else [])
        variants.append("\n".join(line for patch in kept for line in patch) + "\n")
    return tuple(v for v in variants if v.strip() != reference.strip()) or (
        "--- a/nothing\n+++ b/nothing\n",)
