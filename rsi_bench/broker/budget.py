"""Budgets per role, checked before a call by reserving its worst case.

A call reserves, before it is sent: one call, its input tokens (estimated as characters / 3,
which over-counts for English and code) plus its ``max_tokens``, and the USD price of that
many tokens. If any limit of the role would be exceeded the call is refused. When the answer
arrives the reservation is replaced by the real usage and cost. So a budget is never
exceeded, even with calls in flight concurrently, at the price of refusing a call that might
have fit. A failed call keeps its call count and spends no tokens or dollars.

The ledger keeps *accounts*. Every role is one, except that a loop's ``solve`` budget is split
into two: one for dev solves and one for hidden (held-out and sealed) solves, in proportion to
the solves each will run (``split_solve_budget``). A dev solve can only be refused by what dev
solves spent, so what held-out solves spend (which a refusal or a ``max_tokens`` probe could
otherwise reveal) never reaches the only solves whose results the loop feeds back.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from rsi_bench.models.base import BudgetExceeded
from rsi_bench.models.pricing import Price


@dataclass(frozen=True)
class Budget:
    """Limits for one role; ``None`` means unlimited."""

    tokens: int | None = None
    usd: float | None = None
    calls: int | None = None


@dataclass
class Spent:
    calls: int = 0
    tokens: int = 0
    usd: float = 0.0


@dataclass(frozen=True)
class Reservation:
    role: str
    tokens: int
    usd: float
    id: int = field(default=0)


HIDDEN_SPLITS = ("heldout", "sealed")
SOLVE_ACCOUNTS = ("solve:dev", "solve:hidden")


def account(role: str, split: str | None, partitioned: bool) -> str:
    """The account a call is charged to (see the module's docstring)."""
    if role != "solve" or not partitioned:
        return role
    return "solve:hidden" if split in HIDDEN_SPLITS else "solve:dev"


def split_solve_budget(budgets: Mapping[str, Budget], dev_share: float) -> dict[str, Budget]:
    """The accounts for ``budgets``, the solve budget split ``dev_share`` : ``1 - dev_share``.
    Whole numbers (calls, tokens) are rounded down for dev and the rest goes to hidden, so the
    two never add up to more than the role's budget."""
    if not 0 <= dev_share <= 1:
        raise ValueError(f"dev_share must be in [0, 1], not {dev_share}")
    out = {role: b for role, b in budgets.items() if role != "solve"}
    solve = budgets.get("solve", Budget())

    def part(limit: float | None, whole: bool) -> tuple[float | None, float | None]:
        if limit is None:
            return None, None
        dev = math.floor(limit * dev_share) if whole else limit * dev_share
        return dev, limit - dev

    calls, tokens, usd = part(solve.calls, True), part(solve.tokens, True), part(solve.usd, False)
    for i, name in enumerate(SOLVE_ACCOUNTS):
        out[name] = Budget(
            tokens=None if tokens[i] is None else int(tokens[i]),  # type: ignore[arg-type]
            usd=usd[i],
            calls=None if calls[i] is None else int(calls[i]))  # type: ignore[arg-type]
    return out


def estimate_input_tokens(chars: int) -> int:
    return math.ceil(chars / 3)


def worst_case_usd(price: Price, input_tokens: int, output_tokens: int) -> float:
    # uncached input at the dearest input rate: a cache write costs more than a plain input
    rate = max(price.input, price.cache_write, price.cache_read)
    return (input_tokens * rate + output_tokens * price.output) / 1_000_000


class Ledger:
    def __init__(self, budgets: Mapping[str, Budget],
                 spent: Mapping[str, Spent] | None = None) -> None:
        self.budgets = dict(budgets)
        self.spent: dict[str, Spent] = {r: Spent() for r in self.budgets}
        for role, s in (spent or {}).items():
            self.spent[role] = Spent(s.calls, s.tokens, s.usd)
        self._lock = threading.Lock()
        self._next = 0

    def reserve(self, role: str, tokens: int, usd: float) -> Reservation:
        """``role``: the account (``account()``)."""
        with self._lock:
            budget = self.budgets.get(role, Budget())
            s = self.spent.setdefault(role, Spent())
            problem = None
            if budget.calls is not None and s.calls + 1 > budget.calls:
                problem = f"call budget {budget.calls} is used up"
            elif budget.tokens is not None and s.tokens + tokens > budget.tokens:
                problem = (f"token budget {budget.tokens} would be exceeded ({s.tokens} "
                           f"used or reserved, this call may use up to {tokens})")
            elif budget.usd is not None and s.usd + usd > budget.usd:
                problem = (f"USD budget ${budget.usd:.4f} would be exceeded (${s.usd:.4f} "
                           f"used or reserved, this call may cost up to ${usd:.4f})")
            if problem is not None:
                name, _, part = role.partition(":")
                whose = f"role {name!r}" + (f" ({part} solves)" if part else "")
                raise BudgetExceeded(f"budget for {whose}: {problem}; call refused")
            s.calls += 1
            s.tokens += tokens
            s.usd += usd
            self._next += 1
            return Reservation(role, tokens, usd, self._next)

    def settle(self, reservation: Reservation, tokens: int, usd: float) -> None:
        """Replace a reservation by what the call really used (0, 0 when it failed)."""
        with self._lock:
            s = self.spent[reservation.role]
            s.tokens += tokens - reservation.tokens
            s.usd += usd - reservation.usd

    def snapshot(self) -> dict[str, Spent]:
        with self._lock:
            return {r: Spent(s.calls, s.tokens, s.usd) for r, s in self.spent.items()}
