"""The data codec between the solution process and the test driver."""

from __future__ import annotations

import collections
import datetime
import enum
import json
import math
import os
import sys
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

import numpy
import pytest

from rsi_bench.judge.codec import (
    MAX_DEPTH,
    MAX_FRAME,
    Malformed,
    NotPlainData,
    decode,
    encode,
)
from rsi_bench.judge.frames import recv_msg, send_msg

Point = collections.namedtuple("Point", "x y")


class Pair(NamedTuple):
    a: int
    b: str


UTC, PLUS2 = datetime.UTC, datetime.timezone(datetime.timedelta(hours=2))
VALUES = [
    None, True, False, 0, -7, 2**53, -(2**80), 10**5000, -(10**9000) + 1, 1.5, -0.0, math.inf,
    -math.inf, 1e-300, "", "héllo\n", b"\x00\xff", bytearray(b"ab\x00"), [1, [2, [3]]],
    (1, (2,)), (), {"a": 1, (1, 2): [3]}, {1, 2}, frozenset({"x"}), complex(1, -2),
    complex(math.inf, -0.0), {"nested": [(1, {2.5}), {"k": None}]},
    list(range(1000)), [2**70] * 40, [0.5, -0.0, math.inf] * 20, ["s"] * 50, [True, None] * 30,
    list(range(50)) + [1.0], [[1, 2]] * 40,
    collections.Counter("mississippi"), collections.OrderedDict([("b", 1), ("a", 2)]),
    collections.defaultdict(list, {"k": [1]}), collections.defaultdict(None, {1: 2}),
    collections.deque([1, 2, 3]), collections.deque([1, 2], maxlen=5),
    Point(1, 2), Pair(3, "x"), Decimal("1.10"), Decimal("-Infinity"), Fraction(-3, 4),
    Fraction(10**400, 3), range(3), range(10, -5, -3), datetime.date(2024, 2, 29),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6), datetime.datetime(2024, 1, 2, tzinfo=UTC),
    datetime.datetime(2024, 1, 2, 3, tzinfo=PLUS2, fold=1), datetime.time(23, 59, 1, 5),
    datetime.time(1, tzinfo=PLUS2), datetime.timedelta(days=-1, seconds=5, microseconds=7),
    {"k": 1}.keys(), {"k": 1}.items(),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip_keeps_value_and_exact_type(value: object) -> None:
    back = decode(encode(value))
    assert back == value
    if hasattr(type(value), "_fields"):  # a namedtuple class of the same name, made here
        assert (type(back).__name__, back._fields) == (type(value).__name__, value._fields)
    else:
        assert type(back) is type(value)
    if isinstance(value, (list, tuple)):
        assert [type(x) for x in back] == [type(x) for x in value]  # type: ignore[union-attr]


def test_types_inside_containers_are_exact() -> None:
    back = decode(encode({"d": collections.defaultdict(int, {1: 2}), "q": collections.deque([1],
                                                                                        maxlen=2)}))
    assert back["d"].default_factory is int and back["q"].maxlen == 2
    assert type(decode(encode([Point(1, 2)]))[0]).__name__ == "Point"
    assert decode(encode(Point(1, 2)))._fields == ("x", "y")
    ordered = decode(encode(collections.OrderedDict([("b", 1), ("a", 2)])))
    assert list(ordered) == ["b", "a"]
    assert decode(encode({"k": 1}.values())).__class__ is type({}.values())
    assert list(decode(encode({"k": 1, "j": 2}.values()))) == [1, 2]


def test_float_bits_survive() -> None:
    assert math.isnan(decode(encode(math.nan)))  # type: ignore[arg-type]
    back = decode(encode([math.nan, -0.0] * 40))
    assert math.isnan(back[0]) and math.copysign(1, back[1]) == -1
    assert math.copysign(1, decode(encode(-0.0))) == -1


def test_big_ints_ignore_the_str_digit_limit() -> None:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)
    try:
        big = 7**20000  # about 16,900 digits
        assert decode(encode(big)) == big and decode(encode([-big] * 40)) == [-big] * 40
    finally:
        sys.set_int_max_str_digits(old)


class Colour(enum.Enum):
    RED = 1
    BLUE = "b"


class Level(enum.IntEnum):
    LOW = 3


def test_enum_members_cross_as_their_values() -> None:
    assert decode(encode([Colour.RED, Colour.BLUE, Level.LOW])) == [1, "b", 3]
    assert type(decode(encode(Level.LOW))) is int


@pytest.mark.parametrize("name", ["bool", "int64", "int32", "uint8", "float64", "float32",
                                  "complex128"])
def test_numpy_scalars_cross_as_the_same_numpy_type(name: str) -> None:
    """Rebuilt exactly where the runner can import numpy: ``np.True_ is True`` is False in one
    interpreter, and must stay so (a test's ``is True`` fails a solution returning np.bool_)."""
    value = numpy.dtype(name).type(1)
    back = decode(encode(value))
    assert type(back) is type(value) and back == value == 1
    if name == "bool":
        assert back is not True


def test_numpy_scalars_cross_as_python_numbers_without_numpy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rsi_bench.judge import codec

    monkeypatch.setattr(codec, "_NUMPY", [None])
    assert type(decode(encode(numpy.float64(1.5)))) is float
    assert decode(encode(numpy.bool_(True))) is True


def test_numpy_arrays_and_odd_dtypes_are_refused() -> None:
    with pytest.raises(NotPlainData, match="numpy.ndarray"):
        encode(numpy.arange(3))
    with pytest.raises(NotPlainData, match="numpy.str_"):
        encode(numpy.str_("x"))


def test_a_forged_numpy_tag_is_malformed() -> None:
    from rsi_bench.judge.codec import Malformed

    for body in (["object", 1], ["int64", "1"], ["float64", [1]]):
        with pytest.raises(Malformed):
            decode(({"np": body}, []))


def test_tuple_and_list_stay_distinct() -> None:
    assert decode(encode((0, 1))) == (0, 1) and decode(encode([0, 1])) == [0, 1]
    assert decode(encode((0, 1))) != [0, 1]


class LyingInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


class LyingStr(str):
    pass


class LyingList(list):
    pass


@pytest.mark.parametrize("value, name", [
    (LyingInt(3), "LyingInt"), ([LyingStr("a")], "LyingStr"), ({"k": object()}, "object"),
    (print, "builtin_function_or_method"), (iter([1]), "list_iterator"),
    (LyingList(range(40)), "LyingList"), ([1] * 40 + [LyingInt(1)], "LyingInt"),
    ([1.0] * 40 + [LyingInt(1)], "LyingInt"),
    (collections.defaultdict(lambda: 0), "function"),
    (datetime.datetime(2024, 1, 1, tzinfo=datetime.tzinfo()), "tzinfo"),
], ids=lambda v: repr(v)[:30])
def test_anything_else_is_refused_naming_its_type(value: object, name: str) -> None:
    """Without a peer (callables and iterators are handles only inside a call)."""
    with pytest.raises(NotPlainData, match=name) as info:
        encode(value)
    assert "\n" not in str(info.value)


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    value: list[object] = []
    for _ in range(MAX_DEPTH - 5):
        value = [value]
    assert decode(encode(value)) == value  # deep, but within the limit
    for _ in range(10):
        value = [value]
    with pytest.raises(NotPlainData, match="nested deeper"):
        encode(value)


@pytest.mark.parametrize("tree", [
    {"pickle": "x"}, {"i": 5}, {"f": "1e999"}, {"nt": ["Bad Name", ["a"], [1]]},
    {"t": [1], "d": []}, {"defaultdict": ["eval", []]}, {"b": "0"}, {"mine": 1}, {"fn": [1, ""]},
], ids=repr)
def test_decode_builds_only_what_the_table_names(tree: object) -> None:
    with pytest.raises(Malformed):
        decode((tree, []))


def test_frames_carry_blobs_and_check_their_lengths() -> None:
    r, w = os.pipe()
    try:
        tree, blobs = encode([b"x" * 10, list(range(100))])
        send_msg(w, {"op": "ret", "v": tree}, blobs)
        msg, got = recv_msg(r)
        assert decode((msg["v"], got)) == [b"x" * 10, list(range(100))]
        head = json.dumps({"op": "ret", "bl": [5]}).encode()
        os.write(w, len(head).to_bytes(8, "big") + len(head).to_bytes(4, "big") + head)
        with pytest.raises(Malformed):
            recv_msg(r)
    finally:
        os.close(r)
        os.close(w)


def test_a_large_list_crosses_as_one_blob() -> None:
    value = list(range(8_000_000))
    tree, blobs = encode(value)
    assert tree == {"aq": 0} and len(blobs[0]) == 8 * len(value)
    assert decode((tree, blobs)) == value


def test_a_value_over_the_frame_limit_is_a_clear_error_before_anything_is_written() -> None:
    r, w = os.pipe()
    try:
        tree, blobs = encode(bytes(MAX_FRAME + 1))
        with pytest.raises(NotPlainData, match="MiB boundary limit"):
            send_msg(w, {"op": "ret", "v": tree}, blobs)
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 1)
    finally:
        os.close(r)
        os.close(w)
