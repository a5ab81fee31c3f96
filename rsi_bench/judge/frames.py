"""Messages between the test driver and the solution process, on a pipe (stdlib only; deployed
beside runner.py): a 12-byte header (total size, size of the JSON part), the JSON part, then the
raw byte blobs it names by length. Sizes are capped on both ends; what a cap refuses is an error
naming its size, never a partial read.
"""

from __future__ import annotations

import json
import os
import select
import struct
import sys
import time
from typing import Any

MAX_DEPTH = 400  # nesting a real test may use; deeper values are refused, not recursed into
MAX_FRAME = 128 << 20  # one message, blobs included; larger is an error naming its size
MAX_HEAD = 64 << 20  # its JSON part (which costs far more memory per byte once parsed)
HEADER = struct.Struct(">QI")


class NotPlainData(TypeError):
    """A value the boundary cannot carry; the message names its type."""


class Malformed(ValueError):
    """A message that no honest peer sends."""


# What ends an exchange across the boundary (never a pass); bridge.py raises them.
class SolutionGone(BaseException):
    """The other side stopped answering or broke the protocol (never a pass)."""


class JobTimeout(BaseException):
    pass


class SolutionOOM(BaseException):
    pass


class Refused(BaseException):
    """The solution produced a value the boundary cannot carry."""


class CandidateExit(BaseException):
    """The solution raised a BaseException that is not an Exception (SystemExit, ...): as in one
    interpreter, no ``except Exception`` in the tests stops it, and the job ends as an error."""


def send_msg(fd: int, msg: dict, blobs: list[bytes] | None = None) -> None:
    blobs = blobs or []
    if blobs:
        msg = {**msg, "bl": [len(b) for b in blobs]}
    head = _dumps(msg)
    size = len(head) + sum(len(b) for b in blobs)
    if size > MAX_FRAME or len(head) > MAX_HEAD:
        raise NotPlainData(f"a value of {size} bytes exceeds the {MAX_FRAME >> 20} MiB boundary "
                           "limit")
    if size < 1 << 20:  # one write, one wake-up of the reader
        _write_all(fd, b"".join([HEADER.pack(size, len(head)), head, *blobs]))
        return
    _write_all(fd, HEADER.pack(size, len(head)))
    _write_all(fd, head)
    for blob in blobs:
        _write_all(fd, blob)


class Reader:
    """Reads messages from one pipe, a buffer's worth at a time."""

    def __init__(self, fd: int) -> None:
        self.fd, self.buf = fd, bytearray()

    def read(self, n: int, deadline: float | None) -> bytes:
        if len(self.buf) < n:
            self.buf += read_exact(self.fd, n - len(self.buf), deadline, greedy=True)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def recv_msg(src: Reader | int, deadline: float | None = None) -> tuple[dict, list[bytes]]:
    reader = src if isinstance(src, Reader) else Reader(src)
    size, head_len = HEADER.unpack(reader.read(HEADER.size, deadline))
    if size > MAX_FRAME or head_len > min(size, MAX_HEAD):
        raise Malformed(f"a message of {size} bytes exceeds the {MAX_FRAME >> 20} MiB limit")
    data = reader.read(size, deadline)
    msg = _loads(data[:head_len])
    if not isinstance(msg, dict):
        raise Malformed("a message is not an object")
    lens = msg.pop("bl", [])
    if not isinstance(lens, list) or sum(lens) != size - head_len:
        raise Malformed("blob lengths do not match the frame")
    blobs, at = [], head_len
    for n in lens:
        blobs.append(data[at:at + n])
        at += n
    return msg, blobs


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd: int, n: int, deadline: float | None, greedy: bool = False) -> bytes:
    """At least ``n`` bytes (exactly ``n`` unless ``greedy``, which takes what is there)."""
    chunks = []
    while n > 0:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, max(n, 1 << 16) if greedy else min(n, 1 << 22))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # made once: it is slow


def _dumps(obj: object) -> bytes:
    return deeply(lambda: _JSON(obj).encode())


def _loads(data: bytes) -> Any:
    try:
        return deeply(lambda: json.loads(data))
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"undecodable message: {exc}") from None


def deeply(work: Any) -> Any:
    """``work()``, and once more with room for MAX_DEPTH levels if the stack ran out (the
    common shallow case never touches the recursion limit)."""
    try:
        return work()
    except RecursionError:
        with _deep():
            return work()


class _deep:
    """Room on the stack for MAX_DEPTH levels (a tagged level is up to three JSON levels)."""

    def __enter__(self) -> None:
        self.old = sys.getrecursionlimit()
        sys.setrecursionlimit(self.old + 8 * MAX_DEPTH)

    def __exit__(self, *exc: object) -> None:
        sys.setrecursionlimit(self.old)
