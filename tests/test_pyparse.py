"""Parsing from many threads at once (an experiment's runs are threads of one process). The
race the lock closes (cpython issue 106905) needs a collection with finalizers inside the C
conversion, which no test here can arrange on demand; this checks the lock changes no tree."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor

from rsi_bench import pyparse
from rsi_bench.tasks import load_suite


def test_parsing_through_the_lock_from_threads_gives_the_same_trees() -> None:
    sources = [t.reference for t in load_suite("rsi-core").tasks] * 20
    with ThreadPoolExecutor(8) as pool:
        trees = list(pool.map(pyparse.parse, sources))
    assert [ast.dump(t) for t in trees] == [ast.dump(ast.parse(s)) for s in sources]
