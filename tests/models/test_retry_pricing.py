"""The retry policy and the price table, on their own."""

from __future__ import annotations

import email.utils
import random
import time

import pytest

from rsi_bench.models.base import Usage
from rsi_bench.models.pricing import price_for
from rsi_bench.models.retry import Decision, RetryPolicy, parse_retry_after


def test_backoff_is_exponential_capped_and_reproducible_with_a_seed() -> None:
    a = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.5, rng=random.Random(3))
    b = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.5, rng=random.Random(3))
    delays = [a.delay(n, None) for n in range(1, 7)]
    assert delays == [b.delay(n, None) for n in range(1, 7)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(5.0, 2 ** (n - 1))
        assert ceiling * 0.5 <= d <= ceiling


def test_retry_after_is_honoured_exactly_and_capped() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    assert policy.delay(1, 2.5) == 2.5
    assert policy.delay(1, 500.0) == 10.0


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= (parse_retry_after({"retry-after": date}) or 0) <= 31
    assert parse_retry_after({}) is None


def test_run_stops_on_a_non_retryable_error() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise ValueError("bad")

    policy = RetryPolicy(sleep=lambda s: None)
    with pytest.raises(ValueError):
        policy.run(call, lambda exc: Decision(False))
    assert len(calls) == 1
    with pytest.raises(ValueError):
        policy.run(call, lambda exc: Decision(True))
    assert len(calls) == 1 + policy.max_attempts


def test_prices_dated_names_and_overrides() -> None:
    sonnet = price_for("anthropic/claude-sonnet-4-5-20250929")
    assert sonnet is not None and (sonnet.cache_read, sonnet.cache_write) == (0.3, 3.75)
    assert price_for("openai/gpt-4o-mini-2024-07-18") == price_for("openai/gpt-4o-mini")
    assert price_for("openai/gpt-99") is None
    custom = price_for("openai/gpt-99", {"openai/gpt-99": {"input": 1, "output": 2}})
    assert custom is not None and custom.cost(Usage(1_000_000, 1_000_000)) == 3.0
    with pytest.raises(ValueError, match="unknown field"):
        price_for("x", {"x": {"input": 1, "output": 1, "bogus": 1}})
