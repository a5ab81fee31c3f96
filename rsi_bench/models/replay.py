"""``replay``: answer from calls recorded in an earlier run, never from a live model.

The recording is a run directory (its ``run.sqlite``), a store file, or a JSONL export (one
object per line with ``request_hash``, ``model`` and ``completion``; see
``rsi_bench.store.model_calls.export_jsonl``). A request is looked up by its canonical hash
(``rsi_bench.models.base.request_hash``: model spec + messages + params, sorted-key JSON), so
the recorded completion comes back byte for byte. A request that was not recorded raises
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
    request_hash,
    summarize,
    validate_messages,
)


def _load_sqlite(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT request_hash, model, completion_json FROM model_calls "
                              "WHERE status = 'ok' ORDER BY cache_hit, id").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise ModelError(f"replay: {path} is not a run store with model calls ({exc})") from None
    return [(h, m, json.loads(c)) for h, m, c in rows]


def _load_jsonl(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append((row["request_hash"], row["model"], row["completion"]))
        except (json.JSONDecodeError, KeyError, TypeError):
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
        models = sorted({m for _, m, _ in rows})
        if model is None:
            if len(models) > 1:
                raise ModelError(f"replay: {source} holds calls to several models "
                                 f"({', '.join(models)}); choose one with model=")
            model = models[0] if models else "unknown"
        self.name = model
        self.source = source
        self._answers: dict[str, dict[str, Any]] = {}
        for digest, m, completion in rows:
            if m == model:
                self._answers.setdefault(digest, completion)

    def __len__(self) -> int:
        return len(self._answers)

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        return self.complete_in_context(messages, CallContext("unknown"), **params)

    def complete_in_context(self, messages: Sequence[Message], context: CallContext,
                            **params: Any) -> Completion:
        """Look up the request as the broker hashed it: with its draw, when it had one."""
        checked = validate_messages(list(messages))
        digest = request_hash(self.name, checked, params, context.draw)
        answer = self._answers.get(digest)
        if answer is None:
            raise ReplayMiss(digest, summarize(checked), str(self.source))
        return Completion.from_dict(answer)
