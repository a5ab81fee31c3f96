"""``replay``: answer from calls recorded in an earlier run, never from a live model.

The recording is a run directory (its ``run.sqlite``), a store file, or a JSONL export (one
object per line with ``request_hash``, ``model`` and ``completion``, and ``cache_key`` since
export schema 2; see ``rsi_bench.store.model_calls.export_jsonl``). A request made for a task
or a generation (every call of a loop) is looked up as the broker cached it: by its request
hash *and* who asked (``rsi_bench.models.base.binding_key``), so a replayed agent gets exactly
the answer the same call got, never one recorded for another role, task, split, generation or
sample, and a miss tells it nothing about what other calls asked. Calls recorded without a
cache key (before the broker had one), and requests with no task or generation, are looked up
by request hash alone (``request_hash``: model spec + messages + params, sorted-key JSON). The
recorded completion comes back byte for byte. A request that was not recorded raises
``ReplayMiss`` naming its hash; nothing is ever sent anywhere.

``name`` is the spec of the recorded model (so hashes match); it is read from the recording,
or given as ``model=`` when the recording holds calls to several models.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rsi_bench.models.base import (
    CallContext,
    Completion,
    Message,
    ModelError,
    ReplayMiss,
    binding_key,
    request_hash,
    summarize,
    validate_messages,
)

Recorded = tuple[str, str, dict[str, Any], str | None]  # hash, model, completion, cache key


def _load_sqlite(path: Path) -> list[Recorded]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(model_calls)")}
            key = "cache_key" if "cache_key" in columns else "NULL"
            rows = db.execute(f"SELECT request_hash, model, completion_json, {key} "
                              "FROM model_calls WHERE status = 'ok' "
                              "ORDER BY cache_hit, id").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ModelError(f"replay: {path} is not a run store with model calls ({exc})") from None
    return [(h, m, json.loads(c), k) for h, m, c, k in rows]


def _load_jsonl(path: Path) -> list[Recorded]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append((row["request_hash"], row["model"], row["completion"],
                        row.get("cache_key")))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise ModelError(f"replay: {path} line {number} is not a recorded call "
                             "(needs request_hash, model, completion)") from None
    return out


class ReplayModel:
    def __init__(self, path: str | Path | None = None, *, model: str | None = None,
                 **_: Any) -> None:
        if path is None or str(path) == "":
            raise ModelError("replay: say which recording to replay (a run directory, "
                             "run.sqlite or a .jsonl export), e.g. replay/runs/my-run")
        source = Path(path)
        if source.is_dir():
            source = source / "run.sqlite"
        if not source.is_file():
            raise ModelError(f"replay: recording {source} does not exist")
        rows = _load_jsonl(source) if source.suffix == ".jsonl" else _load_sqlite(source)
        models = sorted({row[1] for row in rows})
        if model is None:
            if len(models) > 1:
                raise ModelError(f"replay: {source} holds calls to several models "
                                 f"({', '.join(models)}); choose one with model=")
            model = models[0] if models else "unknown"
        self.name = model
        self.source = source
        self._by_key: dict[str, dict[str, Any]] = {}  # cache key -> first answer
        self._by_hash: dict[str, dict[str, Any]] = {}  # request hash -> first answer
        self._unkeyed: dict[str, dict[str, Any]] = {}  # the same, of calls without a key
        for digest, m, completion, key in rows:
            if m != model:
                continue
            self._by_hash.setdefault(digest, completion)
            if key is None:
                self._unkeyed.setdefault(digest, completion)
            else:
                self._by_key.setdefault(key, completion)

    def __len__(self) -> int:
        return len(self._by_hash)

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        return self.complete_in_context(messages, CallContext("unknown"), **params)

    def complete_in_context(self, messages: Sequence[Message], context: CallContext,
                            **params: Any) -> Completion:
        """Look up the request as the broker keyed it: its hash (with its draw, when it had
        one) and, for a loop's call, who asked it."""
        checked = validate_messages(list(messages))
        digest = request_hash(self.name, checked, params, context.draw)
        if context.bound:
            answer = (self._by_key.get(binding_key(digest, context))
                      or self._unkeyed.get(digest))
        else:
            answer = self._by_hash.get(digest)
        if answer is None:
            raise ReplayMiss(digest, summarize(checked), str(self.source))
        return Completion.from_dict(answer)
