"""The ``model_calls`` table: every call the broker handled, answered, refused or failed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rsi_bench.store import Store

SCHEMA_VERSION = 2  # of the JSONL export, one call per line (2: the binding and cache key)


@dataclass(frozen=True)
class CallRecord:
    role: str
    model: str
    request_hash: str
    request: dict[str, Any]  # {"model", "messages", "params"[, "draw", "agent_seed"]}, redacted
    status: str  # ok | refused | error
    generation: int | None = None
    task_id: str | None = None
    completion: dict[str, Any] | None = None  # Completion.to_dict(), already redacted
    error_type: str | None = None
    error_message: str | None = None
    cache_hit: bool = False
    created_at: float = field(default_factory=time.time)
    id: int | None = None
    sample: int | None = None
    split: str | None = None
    cache_key: str | None = None  # request hash + who asked (``binding_key``)


def record_call(store: Store, call: CallRecord) -> int:
    """Insert and commit one call; return its row id.

    The usage and cost columns say what the call spent: zero for a cache hit, whose
    ``completion_json`` still holds the answer exactly as the agent received it.
    """
    c = call.completion or {}
    usage = {} if call.cache_hit else c.get("usage", {})
    cost = 0.0 if call.cache_hit and call.completion else c.get("cost_usd")
    with store.write() as db:
        cur = db.execute(
            """INSERT INTO model_calls (created_at, role, generation, task_id, model,
                   request_hash, request_json, status, error_type, error_message,
                   completion_json, model_id, input_tokens, output_tokens, cache_read_tokens,
                   cache_write_tokens, cost_usd, latency_s, cache_hit, sample, split,
                   cache_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (call.created_at, call.role, call.generation, call.task_id, call.model,
             call.request_hash, _dumps(call.request), call.status, call.error_type,
             call.error_message, _dumps(call.completion) if call.completion else None,
             c.get("model_id"), usage.get("input_tokens", 0), usage.get("output_tokens", 0),
             usage.get("cache_read_tokens", 0), usage.get("cache_write_tokens", 0),
             cost, c.get("latency_s"), int(call.cache_hit), call.sample, call.split,
             call.cache_key))
        return int(cur.lastrowid or 0)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _from_row(row: Any) -> CallRecord:
    return CallRecord(
        role=row["role"], model=row["model"], request_hash=row["request_hash"],
        request=json.loads(row["request_json"]), status=row["status"],
        generation=row["generation"], task_id=row["task_id"],
        completion=json.loads(row["completion_json"]) if row["completion_json"] else None,
        error_type=row["error_type"], error_message=row["error_message"],
        cache_hit=bool(row["cache_hit"]), created_at=row["created_at"], id=row["id"],
        sample=row["sample"], split=row["split"], cache_key=row["cache_key"])


def iter_calls(store: Store, status: str | None = None) -> Iterator[CallRecord]:
    query = "SELECT * FROM model_calls"
    args: tuple[Any, ...] = ()
    if status is not None:
        query += " WHERE status = ?"
        args = (status,)
    for row in store.read().execute(query + " ORDER BY id", args):
        yield _from_row(row)


def find_answer(store: Store, cache_key: str) -> dict[str, Any] | None:
    """The first successful, non-cached answer recorded under a cache key: only ever an answer
    given to the same binding (see ``rsi_bench.models.base.binding_key``)."""
    row = store.read().execute(
        "SELECT completion_json FROM model_calls WHERE cache_key = ? AND status = 'ok' "
        "ORDER BY cache_hit, id LIMIT 1", (cache_key,)).fetchone()
    return json.loads(row[0]) if row else None


def export_jsonl(store: Store) -> Iterator[str]:
    """One JSON line per successful call: what ``replay`` needs, and what a bundle ships."""
    for call in iter_calls(store, status="ok"):
        yield json.dumps({"schema_version": SCHEMA_VERSION, "request_hash": call.request_hash,
                          "model": call.model, "request": call.request,
                          "completion": call.completion, "role": call.role,
                          "task_id": call.task_id, "generation": call.generation,
                          "sample": call.sample, "split": call.split,
                          "cache_key": call.cache_key},
                         sort_keys=True, ensure_ascii=False)


def usage_by_role(store: Store) -> dict[tuple[str, str | None], dict[str, float]]:
    """Totals per (role, split) over answered calls: the budget ledger a resumed run starts
    from."""
    out: dict[tuple[str, str | None], dict[str, float]] = {}
    rows = store.read().execute(
        """SELECT role, split, COUNT(*) AS calls, SUM(input_tokens + output_tokens
                  + cache_read_tokens + cache_write_tokens) AS tokens,
                  SUM(COALESCE(cost_usd, 0)) AS usd
           FROM model_calls WHERE status = 'ok' AND cache_hit = 0 GROUP BY role, split""")
    for row in rows:
        out[(row["role"], row["split"])] = {"calls": row["calls"], "tokens": row["tokens"] or 0,
                                            "usd": row["usd"] or 0.0}
    return out
