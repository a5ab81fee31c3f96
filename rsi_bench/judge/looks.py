"""How the candidate looks like the solution's function (stdlib only; deployed beside runner.py):
its signature crosses as data, and what the solution prints reaches the test's ``sys.stdout``.
"""

from __future__ import annotations

import inspect
import io
from typing import Any

try:
    from . import codec
except ImportError:  # deployed flat in the judge image, beside runner.py
    import codec  # type: ignore[no-redef]

OUT_CHUNK = 1 << 20


class Sink(io.RawIOBase):
    """The solution's ``sys.stdout``: text goes to the test's ``sys.stdout`` with the next
    message, or on its own once OUT_CHUNK bytes are waiting or on a flush."""

    def __init__(self, peer: Any) -> None:
        super().__init__()
        self.peer, self.pending = peer, bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.pending += b
        if len(self.pending) >= OUT_CHUNK:
            self.peer.send({"op": "out"})
        return len(b)

    def flush(self) -> None:  # print(..., flush=True): the text goes now, in order
        if self.pending and not self.closed:
            self.peer.send({"op": "out"})

    def take(self) -> bytes:
        data, self.pending = bytes(self.pending), bytearray()
        return data


def solution_stdout(peer: Any) -> io.TextIOWrapper:
    peer.sink = Sink(peer)
    return io.TextIOWrapper(peer.sink, encoding="utf-8", errors="backslashreplace",  # type: ignore[arg-type]
                            write_through=True)


def signature_data(fn: Any) -> Any:
    """The entry point's signature as data: [[name, kind, default?], ...], or None."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = []
    for p in sig.parameters.values():
        entry: list = [p.name, int(p.kind)]
        if p.default is not p.empty:
            try:
                codec.encode(p.default)
                entry.append({"value": p.default})
            except codec.NotPlainData:
                entry.append({"repr": repr(p.default)[:200]})
        params.append(entry)
    return params


class _Opaque:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def signature_from(data: Any) -> inspect.Signature | None:
    if type(data) is not list:
        return None
    try:
        params = []
        for entry in data:
            name, kind, *default = entry
            kw = {}
            if default:
                d = default[0]
                kw["default"] = d["value"] if "value" in d else _Opaque(str(d.get("repr")))
            params.append(inspect.Parameter(str(name), inspect._ParameterKind(kind), **kw))
        return inspect.Signature(params)
    except (TypeError, ValueError, KeyError):
        return None
