"""The broker: the one way from an agent to a model.

Per call, in this order: validate the request; fix its sampling (``sampling.py``: the loop's
seed or draw, which nothing in a container can override); answer from the cache if *the same
caller* (role, task, split, generation, sample: ``binding_key``) made the same request before,
in this run or a resumed one; else reserve the role's budget (a refusal is recorded and
raised); wait for a concurrency slot; call the model; commit the call to the store; only then
return the answer. Failures are recorded too. API keys are redacted from every request, answer
and error that is recorded or raised.

Why the cache is keyed by the caller, and what its timing still tells. Keyed by the request
alone, the cache answered an ``improve`` that rebuilt a held-out ``solve`` request with that
solve's answer, and "was this asked before" could be read from the reply or its speed. Keyed
by the binding the host gave the socket, a hit is only ever the caller's own earlier answer:
the same agent code (a generation's tree is fixed), the same task view and the same
generation and sample, i.e. an earlier attempt of this very call (a run killed and resumed, or
a child's smoke solve before its evaluation). A hit is answered at once, so an agent can still
tell that such an attempt happened, but it learns nothing it was not given itself: no other
role, task, split, generation or sample can be reached or probed. So hits are not delayed to
the original latency (which would make every resume as slow as the first attempt). What is
shared between callers, and so observable in timing, is the concurrency limit (waiting for a
slot shows that other calls are in flight) and the role's budget (a refusal shows that it is
spent); the README lists these as residual channels.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rsi_bench.broker.budget import (
    Budget,
    Ledger,
    Spent,
    account,
    estimate_input_tokens,
    split_solve_budget,
    worst_case_usd,
)
from rsi_bench.broker.limits import SocketLimits
from rsi_bench.broker.sampling import Sampling
from rsi_bench.models.base import (
    BadRequest,
    BudgetExceeded,
    CallContext,
    Completion,
    ContextualModel,
    Message,
    Model,
    ModelError,
    binding_key,
    request_hash,
    validate_messages,
)
from rsi_bench.models.pricing import FREE, Price, price_for
from rsi_bench.models.secrets import Redactor
from rsi_bench.store import Store
from rsi_bench.store.model_calls import CallRecord, find_answer, record_call, usage_by_role
from rsi_bench.store.runs import RunStore

ROLES = ("solve", "improve")
DEFAULT_MAX_TOKENS = 4096


@dataclass(frozen=True)
class BrokerAnswer:
    """For the host only: ``cache_hit`` never reaches an agent (see ``replies.py``)."""

    completion: Completion
    cache_hit: bool
    call_id: int


@dataclass(frozen=True)
class _Key:
    digest: str  # the request's hash (what the model is sent): replay's fallback
    cache_key: str  # the digest and who asked: what the cache is keyed by


class Broker:
    def __init__(self, model: Model, store: Store, budgets: Mapping[str, Budget] | None = None,
                 *, concurrency: int = 4, cache: bool = True,
                 prices: Mapping[str, Price | Mapping[str, Any]] | None = None,
                 sampling: Sampling | None = None, splits: Mapping[str, str] | None = None,
                 socket_limits: SocketLimits | None = None,
                 dev_share: float | None = None) -> None:
        """``sampling``: the loop's seeding (none: the agent's params are sent as they are);
        ``splits``: task id -> split, so the cache tells splits apart; ``socket_limits``: for
        every socket serving this broker (default: ``SocketLimits.from_env()``);
        ``dev_share``: keep the solve budget in two accounts, this share of it for dev solves
        and the rest for hidden ones (``rsi_bench.broker.budget``; none: one account)."""
        self.model = model
        self.store = store
        self.cache = cache
        self.sampling, self.splits = sampling, dict(splits or {})
        self.socket_limits = socket_limits or SocketLimits.from_env()
        self.budgets = dict(budgets or {})
        unknown = set(self.budgets) - set(ROLES)
        if unknown:
            raise ModelError(f"budgets for unknown role(s) {sorted(unknown)}; roles: {ROLES}")
        self.price = self._price(prices)
        self.partitioned = dev_share is not None
        accounts = (split_solve_budget(self.budgets, dev_share) if dev_share is not None
                    else self.budgets)
        previous: dict[str, Spent] = {}  # a resumed run keeps what it spent
        for (role, split), used in usage_by_role(store).items():
            s = previous.setdefault(account(role, split, self.partitioned), Spent())
            s.calls += int(used["calls"])
            s.tokens += int(used["tokens"])
            s.usd += float(used["usd"])
        self.ledger = Ledger(accounts, previous)
        self.redactor = Redactor(getattr(model, "secrets", lambda: [])())
        self._slots = threading.BoundedSemaphore(concurrency)
        self._answers: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _price(self, overrides: Mapping[str, Price | Mapping[str, Any]] | None) -> Price:
        if getattr(self.model, "free", False) or self.model.name.split("/")[0] in (
                "simulated", "local"):
            return FREE
        price = price_for(self.model.name, overrides)
        if price is not None:
            return price
        if any(b.usd is not None for b in self.budgets.values()):
            raise ModelError(f"no price is known for {self.model.name}, so a USD budget cannot "
                             "be enforced: add its price to the price overrides")
        return FREE

    def _max_tokens(self, params: Mapping[str, Any]) -> int:
        value = params.get("max_tokens", getattr(self.model, "max_tokens", DEFAULT_MAX_TOKENS))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest("params.max_tokens must be a positive integer")
        return value

    def _lock_for(self, digest: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(digest, threading.Lock())

    def _record(self, context: CallContext, key: _Key, request: dict[str, Any], status: str,
                completion: dict[str, Any] | None = None, error: Exception | None = None,
                cache_hit: bool = False) -> int:
        return record_call(self.store, CallRecord(
            role=context.role, model=self.model.name, request_hash=key.digest,
            request=self.redactor.deep(request), status=status,
            generation=context.generation, task_id=context.task_id, completion=completion,
            error_type=type(error).__name__ if error else None,
            error_message=self.redactor.text(str(error)) if error else None,
            cache_hit=cache_hit, sample=context.sample, split=context.split,
            cache_key=key.cache_key))

    def record_event(self, kind: str, context: CallContext | None, **detail: Any) -> None:
        """An event for the host (a refused frame or connection, a broker failure), with the
        binding it happened on."""
        if context is not None:
            detail.update(role=context.role, task_id=context.task_id, sample=context.sample,
                          split=context.split or self.splits.get(context.task_id or ""))
        RunStore(self.store).event(kind, context.generation if context else None, **detail)

    def complete(self, role: str, messages: Sequence[Message], params: Mapping[str, Any],
                 *, task_id: str | None = None, generation: int | None = None,
                 sample: int = 0, draw: str | None = None,
                 split: str | None = None) -> BrokerAnswer:
        """``draw``: see ``CallContext``; part of the cache key and of the recorded request,
        never of what the model is sent. ``split`` defaults to the task's in ``splits``."""
        if role not in ROLES:
            raise BadRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        checked = validate_messages(list(messages))
        split = split or (self.splits.get(task_id) if task_id is not None else None)
        context = CallContext(role, task_id, generation, sample, draw, split)
        sent, asked = dict(params), None
        if self.sampling is not None:
            sent, draw, asked = self.sampling.apply(params, context)
            context = CallContext(role, task_id, generation, sample, draw, split)
        digest = request_hash(self.model.name, checked, sent, draw)
        key = _Key(digest, binding_key(digest, context))
        request: dict[str, Any] = {"model": self.model.name, "messages": checked,
                                   "params": sent}
        if draw is not None:
            request["draw"] = draw
        if asked is not None:  # the agent's own seed, which only mixed into the loop's
            request["agent_seed"] = asked
        # one request at a time per key, so a duplicate waits and becomes a cache hit
        with self._lock_for(key.cache_key) if self.cache else _NoLock():
            cached = self._cached(key.cache_key) if self.cache else None
            if cached is not None:
                call_id = self._record(context, key, request, "ok", cached, cache_hit=True)
                return BrokerAnswer(Completion.from_dict(cached), True, call_id)
            return self._call(context, key, request, checked, sent)

    def _cached(self, cache_key: str) -> dict[str, Any] | None:
        found = self._answers.get(cache_key)
        if found is None:
            found = find_answer(self.store, cache_key)
            if found is not None:
                self._answers[cache_key] = found
        return found

    def _call(self, context: CallContext, key: _Key, request: dict[str, Any],
              messages: list[Message], params: dict[str, Any]) -> BrokerAnswer:
        chars = sum(len(m["content"]) for m in messages)
        tokens = estimate_input_tokens(chars) + self._max_tokens(params)
        usd = worst_case_usd(self.price, estimate_input_tokens(chars), self._max_tokens(params))
        try:
            reservation = self.ledger.reserve(
                account(context.role, context.split, self.partitioned), tokens, usd)
        except BudgetExceeded as exc:
            self._record(context, key, request, "refused", error=exc)
            raise
        try:
            with self._slots:
                if isinstance(self.model, ContextualModel):
                    completion = self.model.complete_in_context(messages, context, **params)
                else:
                    completion = self.model.complete(messages, **params)
        except Exception as exc:
            self.ledger.settle(reservation, 0, 0.0)
            error = exc if isinstance(exc, ModelError) else ModelError(
                f"{type(exc).__name__}: {exc}")
            self._record(context, key, request, "error", error=error)
            raise self._redacted(error) from None
        answer = self.redactor.deep(completion.to_dict())
        self.ledger.settle(reservation, completion.usage.total_tokens,
                           completion.cost_usd or 0.0)
        call_id = self._record(context, key, request, "ok", answer)
        if self.cache:
            self._answers[key.cache_key] = answer
        return BrokerAnswer(Completion.from_dict(answer), False, call_id)

    def _redacted(self, error: ModelError) -> ModelError:
        """The same error type and attributes, its message with any key masked. Not
        ``copy.copy``: that calls ``__init__`` again, which fails for errors whose constructor
        takes more than a message (``ReplayMiss``)."""
        safe = type(error).__new__(type(error))
        safe.__dict__.update(error.__dict__)
        safe.args = (self.redactor.text(str(error)),)
        return safe


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
