"""USD prices per million tokens, per model, and the cost of a call.

The numbers are the providers' published standard-tier list prices as of November 2025
(Anthropic: claude.com/pricing; OpenAI: openai.com/api/pricing), not re-checked since. Not
modelled: batch and priority tiers, Anthropic's 1-hour cache writes (2x input; the backends
write 5-minute entries), long-context surcharges. Models released later are not listed: a call
to an unpriced model has ``cost_usd = None``, and a broker with a USD budget refuses to use
it. Add or correct prices with overrides, e.g. ``{"anthropic/claude-sonnet-5": {"input": 3,
"output": 15, "cache_read": 0.3, "cache_write": 3.75}}``.

Anthropic bills cache writes at 1.25x and cache reads at 0.1x the input price. OpenAI caches
automatically, charges nothing extra to write, and bills cached input at its "cached input"
price.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from rsi_bench.models.base import Usage

PRICES_AS_OF = "2025-11"


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output
                + usage.cache_read_tokens * self.cache_read
                + usage.cache_write_tokens * self.cache_write) / 1_000_000


def _anthropic(inp: float, out: float) -> Price:
    return Price(inp, out, cache_read=round(inp * 0.1, 6), cache_write=round(inp * 1.25, 6))


def _openai(inp: float, out: float, cached: float) -> Price:
    return Price(inp, out, cache_read=cached, cache_write=inp)


FREE = Price(0.0, 0.0, 0.0, 0.0)

KNOWN_PRICES: dict[str, Price] = {
    "anthropic/claude-opus-4-5": _anthropic(5.0, 25.0),
    "anthropic/claude-opus-4-1": _anthropic(15.0, 75.0),
    "anthropic/claude-opus-4-0": _anthropic(15.0, 75.0),
    "anthropic/claude-opus-4": _anthropic(15.0, 75.0),
    "anthropic/claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "anthropic/claude-sonnet-4-0": _anthropic(3.0, 15.0),
    "anthropic/claude-sonnet-4": _anthropic(3.0, 15.0),
    "anthropic/claude-3-7-sonnet": _anthropic(3.0, 15.0),
    "anthropic/claude-haiku-4-5": _anthropic(1.0, 5.0),
    "anthropic/claude-3-5-haiku": _anthropic(0.8, 4.0),
    "anthropic/claude-3-haiku": _anthropic(0.25, 1.25),
    "openai/gpt-5.1": _openai(1.25, 10.0, 0.125),
    "openai/gpt-5": _openai(1.25, 10.0, 0.125),
    "openai/gpt-5-mini": _openai(0.25, 2.0, 0.025),
    "openai/gpt-5-nano": _openai(0.05, 0.40, 0.005),
    "openai/gpt-4.1": _openai(2.0, 8.0, 0.50),
    "openai/gpt-4.1-mini": _openai(0.40, 1.60, 0.10),
    "openai/gpt-4.1-nano": _openai(0.10, 0.40, 0.025),
    "openai/gpt-4o": _openai(2.50, 10.0, 1.25),
    "openai/gpt-4o-mini": _openai(0.15, 0.60, 0.075),
    "openai/o3": _openai(2.0, 8.0, 0.50),
    "openai/o3-mini": _openai(1.10, 4.40, 0.55),
    "openai/o4-mini": _openai(1.10, 4.40, 0.275),
}

# claude-sonnet-4-5-20250929, gpt-4o-2024-08-06, claude-3-5-haiku-latest -> the undated name
_DATED = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|-latest)$")


def _as_price(value: Price | Mapping[str, Any]) -> Price:
    if isinstance(value, Price):
        return value
    names = {f.name for f in fields(Price)}
    unknown = set(value) - names
    if unknown:
        raise ValueError(f"price override: unknown field(s) {sorted(unknown)}; use {sorted(names)}")
    inp = float(value["input"])
    return Price(inp, float(value["output"]), float(value.get("cache_read", inp)),
                 float(value.get("cache_write", inp)))


def price_for(model_id: str,
              overrides: Mapping[str, Price | Mapping[str, Any]] | None = None) -> Price | None:
    """The price of ``provider/model`` (dated variants fall back to the undated name)."""
    table: dict[str, Price] = dict(KNOWN_PRICES)
    for name, value in (overrides or {}).items():
        table[name] = _as_price(value)
    candidates = [model_id, _DATED.sub("", model_id)]
    for candidate in candidates:
        if candidate in table:
            return table[candidate]
    return None


def cost(model_id: str, usage: Usage,
         overrides: Mapping[str, Price | Mapping[str, Any]] | None = None) -> float | None:
    price = price_for(model_id, overrides)
    return None if price is None else price.cost(usage)
