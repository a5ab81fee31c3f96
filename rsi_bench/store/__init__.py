"""The run's SQLite store: one file, WAL mode, one writer at a time, versioned schema.

Writes go through ``Store.write()``, which holds the store's writer lock and commits (or rolls
back) a transaction; when it returns, the data is on disk. Reads use a connection per thread,
which WAL lets run alongside the writer.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rsi_bench.errors import RsiBenchError
from rsi_bench.store.migrations import MIGRATIONS

MAX_SPARE_READERS = 8  # reading connections kept for the next threads (broker connections)


class StoreError(RsiBenchError):
    pass


def connect(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=30.0, isolation_level=None,
                         check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a committed call survives a power cut
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    return db


def read_only_uri(path: str | Path) -> str:
    """A URI for a read-only connection that leaves no trace on a closed run.

    ``mode=ro`` on a WAL database creates empty -wal/-shm files next to it. When there is no
    -wal file the store was closed cleanly and everything is in the main file, so it is opened
    as ``immutable`` (no locks, no side files); otherwise a writer may be live, so it is opened
    ``mode=ro``, which reads the WAL and takes read locks. Use with ``uri=True``.
    """
    path = Path(path)
    live = path.with_name(path.name + "-wal").exists()
    return path.resolve().as_uri() + ("?mode=ro" if live else "?mode=ro&immutable=1")


def migrate(db: sqlite3.Connection, path: str | Path = "") -> int:
    """Apply pending migrations; return the schema version."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            db.execute("INSERT INTO schema_version (version) VALUES (0)")
        if version > len(MIGRATIONS):
            raise StoreError(f"store {path} has schema version {version}, newer than this "
                             f"rsi-bench knows ({len(MIGRATIONS)}): upgrade rsi-bench")
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            migration(db)
            db.execute("UPDATE schema_version SET version = ?", (number,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


class _Reader:
    """A thread's reading connection. When the thread's locals are dropped (it ended), the
    connection goes back to the store for the next thread, or is closed."""

    __slots__ = ("__weakref__", "db", "release")

    def __init__(self, db: sqlite3.Connection, release: Callable[[sqlite3.Connection], None]
                 ) -> None:
        self.db, self.release = db, release

    def __del__(self) -> None:
        self.release(self.db)


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise StoreError(f"cannot create store {self.path}: {self.path.parent} "
                             "is not a directory")
        self._writer = connect(self.path)
        try:
            self.version = migrate(self._writer, self.path)
        except BaseException:
            self._writer.close()
            raise
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._spare: collections.deque[sqlite3.Connection] = collections.deque()
        self._closed = False

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction. ``durable=False`` skips the fsync: the commit still survives the
        process being killed (it is in the WAL), but a power cut may lose it, until the next
        durable commit, which syncs everything before it. For rows the run can recompute at no
        cost (never for model calls, which cost money)."""
        with self._lock:
            if not durable:
                self._writer.execute("PRAGMA synchronous=NORMAL")
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    yield self._writer
                except BaseException:
                    self._writer.execute("ROLLBACK")
                    raise
                self._writer.execute("COMMIT")
            finally:
                if not durable:
                    self._writer.execute("PRAGMA synchronous=FULL")

    def read(self) -> sqlite3.Connection:
        """This thread's reading connection. When the thread ends (the broker answers every
        agent connection in a thread of its own) it is kept for the next thread, up to
        ``MAX_SPARE_READERS``, or closed; all are closed with the store."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            try:
                db = self._spare.pop()
            except IndexError:
                db = connect(self.path)
            reader = self._local.reader = _Reader(db, self._release)
            with self._lock:
                self._readers.add(reader)
        return reader.db

    def _release(self, db: sqlite3.Connection) -> None:
        # no lock here: this runs wherever a thread's locals are dropped; deque ops are atomic
        if self._closed or db.in_transaction or len(self._spare) >= MAX_SPARE_READERS:
            db.close()
        else:
            self._spare.append(db)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for reader in list(self._readers):
                reader.db.close()
            self._readers.clear()
            while self._spare:
                self._spare.pop().close()
            self._writer.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
