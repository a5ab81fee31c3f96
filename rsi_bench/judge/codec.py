"""The data codec between the test driver and the solution process (stdlib only).

Deployed beside runner.py in the judge image. Both processes encode with it (and send what it
makes with frames.py); only data crosses:
a JSON tree whose tagged objects name a type from the fixed table below, plus raw byte blobs
(bytes, bytearrays and homogeneous int/float lists), never code and never pickle. Decoding
builds only the types in that table; a tag it does not know is a malformed message. What a
value may be (a callable, an iterator) that is not data crosses as a *handle*, through a
``peer`` (see bridge.py): the receiving side gets a proxy that calls back, nothing more.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import fractions
import math
import os
from array import array
from collections.abc import Iterator
from datetime import UTC
from typing import Any

if __package__:
    from .frames import MAX_DEPTH, MAX_FRAME, Malformed, NotPlainData, deeply
else:  # deployed flat in the judge image, beside runner.py
    from frames import MAX_DEPTH, MAX_FRAME, Malformed, NotPlainData, deeply  # type: ignore[no-redef]

FAST_LIST = 32  # lists at least this long try the homogeneous fast path

# default_factory values a defaultdict may carry by name; anything else crosses as a handle
FACTORIES: dict[str, type] = {t.__name__: t for t in (
    int, float, complex, str, bytes, list, dict, set, frozenset, tuple, bool, bytearray)}
_NONE = type(None)
_SCALARS = {str, bool, _NONE}


Packed = tuple[Any, list[bytes]]


# ---------------------------------------------------------------- encode


def encode(value: Any, peer: Any = None) -> Packed:
    blobs: list[bytes] = []

    def work() -> Any:
        del blobs[:]
        return _Encoder(blobs, peer).enc(value, 0)

    return deeply(work), blobs


class _Encoder:
    def __init__(self, blobs: list[bytes], peer: Any) -> None:
        self.blobs, self.peer = blobs, peer

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def many(self, values: Any, depth: int) -> list:
        out = []
        for v in values:  # the scalars that stand for themselves without a call, for speed
            t = type(v)
            if t is str or (t is int and -_BIG < v < _BIG) or v is None or t is bool:
                out.append(v)
            else:
                out.append(self.enc(v, depth))
        return out

    def pairs(self, items: Any, depth: int) -> list:
        return [[self.enc(k, depth), self.enc(v, depth)] for k, v in items]

    def enc(self, value: Any, depth: int) -> Any:  # noqa: C901, PLR0911, PLR0912 - one table
        if depth > MAX_DEPTH:
            raise NotPlainData(f"value nested deeper than {MAX_DEPTH} levels")
        t, d = type(value), depth + 1
        if value is None or t is bool or t is str:
            return value
        if t is int:
            return value if -(2**53) < value < 2**53 else {"i": format(value, "x")}
        if t is float:
            return value if math.isfinite(value) else {"f": repr(value)}
        if t is list:
            return self.list(value, d)
        if t is tuple:
            return {"t": self.many(value, d)}
        if t is dict:
            return {"d": self.pairs(value.items(), d)}
        if t is set or t is frozenset:
            return {"s" if t is set else "fs": self.many(value, d)}
        if t is bytes or t is bytearray:
            return {"b" if t is bytes else "ba": self.blob(bytes(value))}
        if t is complex:
            return {"c": [self.enc(value.real, d), self.enc(value.imag, d)]}
        if t is collections.Counter or t is collections.OrderedDict:
            return {t.__name__: self.pairs(value.items(), d)}
        if t is collections.defaultdict:
            return {"defaultdict": [self.factory(value.default_factory, d),
                                    self.pairs(value.items(), d)]}
        if t is collections.deque:
            return {"deque": [value.maxlen, self.many(value, d)]}
        if t is decimal.Decimal:
            return {"Decimal": str(value)}
        if t is fractions.Fraction:
            return {"Fraction": [self.enc(value.numerator, d), self.enc(value.denominator, d)]}
        if t is range:
            return {"range": self.many((value.start, value.stop, value.step), d)}
        if t in _DATES:
            return self.date(value, t, d)
        if t in _VIEWS:
            return {_VIEWS[t]: self.many(value if t is not _ITEMS else
                                         (list(kv) for kv in value), d)}
        if isinstance(value, enum.Enum):
            return self.enc(value.value, depth)
        if t.__module__ == "numpy" and getattr(value, "shape", None) == ():
            return self.numpy(value, depth)
        if isinstance(value, tuple) and t.__bases__ == (tuple,) and hasattr(t, "_fields"):
            return {"nt": [t.__name__, list(t._fields), self.many(value, d)]}
        if self.peer is not None:
            ref = self.peer.export(value)
            if ref is not None:
                return ref
        raise NotPlainData(f"{t.__module__}.{t.__qualname__} cannot cross the judge boundary"
                           if t.__module__ != "builtins" else
                           f"{t.__qualname__} cannot cross the judge boundary")

    def list(self, value: list, d: int) -> Any:
        if len(value) >= FAST_LIST:
            kinds = set(map(type, value))
            if kinds <= _SCALARS:
                return list(value)
            if kinds == {int} or kinds == {float}:
                code = "q" if int in kinds else "d"
                try:
                    return {"a" + code: self.blob(array(code, value).tobytes())}
                except OverflowError:
                    pass
        return self.many(value, d)

    def factory(self, factory: Any, d: int) -> Any:
        if factory is None:
            return None
        if isinstance(factory, type) and FACTORIES.get(factory.__name__) is factory:
            return factory.__name__
        return {"fn": self.enc(factory, d)}

    def date(self, value: Any, t: type, d: int) -> dict:
        if t is datetime.timedelta:
            return {"timedelta": [value.days, value.seconds, value.microseconds]}
        if t is datetime.date:
            return {"date": [value.year, value.month, value.day]}
        tz = value.tzinfo
        if tz is not None and type(tz) is not datetime.timezone:
            raise NotPlainData(f"a {t.__name__} with tzinfo {type(tz).__qualname__} cannot cross "
                               "the judge boundary (only datetime.timezone offsets)")
        off = None if tz is None else self.enc(tz.utcoffset(None), d)
        fields = [value.hour, value.minute, value.second, value.microsecond, off, value.fold]
        if t is datetime.time:
            return {"time": fields}
        return {"datetime": [value.year, value.month, value.day, *fields]}

    def numpy(self, value: Any, depth: int) -> Any:
        # A numpy scalar crosses as its dtype's name and the Python number it equals; the runner
        # rebuilds the same numpy type where it can import numpy (a test's ``is True`` or
        # ``isinstance(x, int)`` then fails as it would in one interpreter), else the number.
        item = value.item()
        name = getattr(getattr(value, "dtype", None), "name", None)
        if type(item) not in (int, float, bool, complex) or name not in NUMPY_DTYPES:
            raise NotPlainData(f"numpy.{type(value).__qualname__} cannot cross the judge "
                               "boundary")
        return {"np": [name, self.enc(item, depth)]}


_BIG = 2**53
NUMPY_DTYPES = frozenset(
    ["bool", "float16", "float32", "float64", "complex64", "complex128"]
    + [f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)])
_DATES = {datetime.datetime, datetime.date, datetime.time, datetime.timedelta}
_ITEMS = type({}.items())
_VIEWS = {type({}.keys()): "dk", type({}.values()): "dv", _ITEMS: "di"}


# ---------------------------------------------------------------- decode


def decode(packed: Packed, peer: Any = None) -> Any:
    tree, blobs = packed
    try:
        return deeply(lambda: _Decoder(blobs, peer).dec(tree, 0))
    except (Malformed, NotPlainData):
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError,
            RecursionError, decimal.InvalidOperation) as exc:
        raise Malformed(f"undecodable value: {type(exc).__name__}: {exc}"[:300]) from None


class _Decoder:
    def __init__(self, blobs: list[bytes], peer: Any) -> None:
        self.blobs, self.peer = blobs, peer

    def many(self, body: list, depth: int) -> list:
        return [self.dec(v, depth) for v in body]

    def pairs(self, body: list, depth: int) -> Iterator[tuple[Any, Any]]:
        for k, v in body:
            yield self.dec(k, depth), self.dec(v, depth)

    def dec(self, value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise Malformed(f"value nested deeper than {MAX_DEPTH} levels")
        if type(value) is list:
            if set(map(type, value)) <= _RAW:
                return value[:]  # never the tree's own list: a caller may compare against it
            return self.many(value, depth + 1)
        if type(value) is not dict:
            if type(value) not in _RAW:
                raise Malformed(f"unexpected {type(value).__name__}")
            return value
        if len(value) != 1:
            raise Malformed("a tagged value has one key")
        ((tag, body),) = value.items()
        build = _BUILD.get(tag)
        if build is None:
            raise Malformed(f"unknown tag {tag!r}")
        return build(self, body, depth + 1)

    def blob(self, index: int) -> bytes:
        if type(index) is not int:
            raise Malformed("a blob index is an int")
        return self.blobs[index]

    def array(self, code: str, index: int) -> list:
        a = array(code)
        a.frombytes(self.blob(index))
        return a.tolist()

    def defaultdict(self, body: list, depth: int) -> collections.defaultdict:
        factory, items = body
        if factory is None:
            fn = None
        elif type(factory) is str:
            fn = FACTORIES[factory]
        else:
            fn = self.dec(factory["fn"], depth)
            if not callable(fn):
                raise Malformed("a default_factory is not callable")
        return collections.defaultdict(fn, self.pairs(items, depth))

    def time_fields(self, f: list, depth: int) -> tuple[list, Any, int]:
        *clock, off, fold = f
        tz = None
        if off is not None:
            delta = self.dec(off, depth)
            if type(delta) is not datetime.timedelta:
                raise Malformed("a tz offset is a timedelta")
            tz = UTC if not delta else datetime.timezone(delta)
        return [_int(x) for x in clock], tz, _int(fold)

    def datetime(self, f: list, depth: int) -> datetime.datetime:
        clock, tz, fold = self.time_fields(f[3:], depth)
        return datetime.datetime(*map(_int, f[:3]), *clock, tzinfo=tz, fold=fold)

    def time(self, f: list, depth: int) -> datetime.time:
        clock, tz, fold = self.time_fields(f, depth)
        return datetime.time(*clock, tzinfo=tz, fold=fold)

    def namedtuple(self, body: list, depth: int) -> tuple:
        name, fields, values = body
        if type(name) is not str or type(fields) is not list or len(fields) > 256:
            raise Malformed("a namedtuple has a name and field names")
        return _namedtuple(name, tuple(map(str, fields)))(*self.many(values, depth))

    def ref(self, tag: str, body: Any) -> Any:
        if self.peer is None:
            raise Malformed(f"a {tag!r} handle outside a call")
        return self.peer.resolve(tag, body)


_RAW = {str, int, float, bool, _NONE}


_NUMPY: list[Any] = []  # numpy, imported on first use (or None where it is not installed)


def _numpy_scalar(name: Any, item: Any) -> Any:
    if name not in NUMPY_DTYPES or type(item) not in (int, float, bool, complex):
        raise Malformed("a numpy scalar is an allowed dtype name and a number")
    if not _NUMPY:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no pool of threads in the runner
        try:
            import numpy
        except ImportError:
            numpy = None
        _NUMPY.append(numpy)
    numpy = _NUMPY[0]
    return item if numpy is None else numpy.dtype(name).type(item)


def _int(x: Any) -> int:
    if type(x) is not int:
        raise Malformed("expected an int")
    return x


def _big(body: Any) -> int:
    if type(body) is not str or len(body) > MAX_FRAME:
        raise Malformed("a big int is a hex string")
    return int(body, 16)


def _float(body: Any) -> float:
    if body not in ("nan", "inf", "-inf"):
        raise Malformed("a non-finite float is nan, inf or -inf")
    return float(body)


_NAMEDTUPLES: dict[tuple[str, tuple[str, ...]], type] = {}


def _namedtuple(name: str, fields: tuple[str, ...]) -> type:
    key = (name, fields)
    if key not in _NAMEDTUPLES:
        if len(_NAMEDTUPLES) > 1024:
            _NAMEDTUPLES.clear()
        _NAMEDTUPLES[key] = collections.namedtuple(name, fields)  # validates the names
    return _NAMEDTUPLES[key]


_D = _Decoder
_BUILD: dict[str, Any] = {
    "i": lambda s, b, d: _big(b),
    "f": lambda s, b, d: _float(b),
    "t": lambda s, b, d: tuple(s.many(b, d)),
    "d": lambda s, b, d: dict(s.pairs(b, d)),
    "s": lambda s, b, d: set(s.many(b, d)),
    "fs": lambda s, b, d: frozenset(s.many(b, d)),
    "b": lambda s, b, d: s.blob(b),
    "ba": lambda s, b, d: bytearray(s.blob(b)),
    "aq": lambda s, b, d: s.array("q", b),
    "ad": lambda s, b, d: s.array("d", b),
    "c": lambda s, b, d: complex(*map(float, s.many(b, d))),
    "Counter": lambda s, b, d: collections.Counter(dict(s.pairs(b, d))),
    "OrderedDict": lambda s, b, d: collections.OrderedDict(s.pairs(b, d)),
    "defaultdict": _D.defaultdict,
    "deque": lambda s, b, d: collections.deque(s.many(b[1], d), b[0] if b[0] is None
                                               else _int(b[0])),
    "Decimal": lambda s, b, d: decimal.Decimal(str(b)),
    "Fraction": lambda s, b, d: fractions.Fraction(*map(_int, s.many(b, d))),
    "range": lambda s, b, d: range(*map(_int, s.many(b, d))),
    "timedelta": lambda s, b, d: datetime.timedelta(*map(_int, b)),
    "date": lambda s, b, d: datetime.date(*map(_int, b)),
    "datetime": _D.datetime,
    "time": _D.time,
    "dk": lambda s, b, d: dict.fromkeys(s.many(b, d)).keys(),
    "dv": lambda s, b, d: dict(enumerate(s.many(b, d))).values(),
    "di": lambda s, b, d: dict(tuple(kv) for kv in s.many(b, d)).items(),
    "nt": _D.namedtuple,
    "np": lambda s, b, d: _numpy_scalar(b[0], s.dec(b[1], d)),
    "it": lambda s, b, d: s.ref("it", b),
    "fn": lambda s, b, d: s.ref("fn", b),
    "mine": lambda s, b, d: s.ref("mine", b),
}
