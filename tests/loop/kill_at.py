"""Run the rsi-bench CLI and SIGKILL it at an exact point of its store's history, not a time.

``python kill_at.py TARGET pre|post ARGS...``: the process kills itself with SIGKILL when the
run's committed rows (results, generations, model calls: ``committed`` in test_loop.py) reach
TARGET, just after the commit that reached it (``post``) or just before the write that would
(``pre``, a job's work done but not recorded). A run that ends first exits normally.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rsi_bench import store
from rsi_bench.cli import main

TABLES = ("results", "generations", "model_calls")


def _count(db: sqlite3.Connection) -> int:
    try:
        return sum(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)
    except sqlite3.OperationalError:  # tables not there yet
        return 0


def install(target: int, mode: str) -> None:
    original = store.Store.write

    @contextmanager
    def write(self: store.Store, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        with original(self, durable=durable) as db:
            # inside the transaction (so under the store's lock), before anything is written
            if mode == "pre" and _count(db) + 1 >= target:
                os.kill(os.getpid(), signal.SIGKILL)
            yield db
            if mode == "post" and _count(db) >= target:  # the rows of this transaction count
                db.execute("COMMIT")  # then killed before anything else can commit
                os.kill(os.getpid(), signal.SIGKILL)

    store.Store.write = write  # type: ignore[method-assign]


if __name__ == "__main__":
    install(int(sys.argv[1]), sys.argv[2])
    main(sys.argv[3:])
