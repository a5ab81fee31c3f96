"""The plain-data codec between the solution process and the test driver."""

from __future__ import annotations

import math

import pytest

from rsi_bench.judge.runner import NotPlainData, decode, encode

VALUES = [
    None, True, False, 0, -7, 2**53, -(2**80), 1.5, -0.0, math.inf, -math.inf, 1e-300, "",
    "héllo\n", b"\x00\xff", [1, [2, [3]]], (1, (2,)), (), {"a": 1, (1, 2): [3]}, {1, 2},
    frozenset({"x"}), complex(1, -2), {"nested": [(1, {2.5}), {"k": None}]},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_round_trip_keeps_value_and_exact_type(value: object) -> None:
    back = decode(encode(value))
    assert back == value and type(back) is type(value)


def test_nan_round_trips() -> None:
    assert math.isnan(decode(encode(math.nan)))  # type: ignore[arg-type]


def test_tuple_and_list_stay_distinct() -> None:
    assert decode(encode((0, 1))) == (0, 1) and decode(encode([0, 1])) == [0, 1]
    assert decode(encode((0, 1))) != [0, 1]


class LyingInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class LyingStr(str):
    pass


@pytest.mark.parametrize("value", [LyingInt(3), [LyingStr("a")], {"k": object()}, print,
                                   iter([1]), range(3)], ids=repr)
def test_anything_but_exact_builtins_is_refused(value: object) -> None:
    with pytest.raises(NotPlainData):
        encode(value)


def test_deep_nesting_is_refused() -> None:
    value: list[object] = []
    for _ in range(200):
        value = [value]
    with pytest.raises(NotPlainData):
        encode(value)
