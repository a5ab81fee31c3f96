"""Calls across the judge boundary (stdlib only; deployed beside runner.py).

A ``Peer`` sits at each end of the pipe pair between the test driver (runner) and the solution
process; both ends run the same protocol, so a callback from the solution into the test's
interpreter is the same message as a call from the test into the solution:

* ``call`` runs an exported callable (handle 0 is the solution's entry point) on decoded
  arguments and answers ``ret`` (the value) or ``raise`` (the exception as data); either answer
  also carries the arguments' new state when the call changed them (``muts``), which the caller
  applies in place to its own objects.
* ``next`` pulls items from an exported iterator; the answer ``items`` carries a few items (as
  many as came in ~0.2 ms, without output or callbacks in between), the end, or an exception.
* ``out`` carries the solution's ``sys.stdout`` text, written to the test's ``sys.stdout``.
* ``oom`` and ``refused`` (a value the codec cannot carry) end the job.

Exported objects (callables and iterators a value contains) stay where they are; the other side
holds only an integer handle, and can ask for nothing but a call or a pull of what it was given.
Exceptions cross as data and are rebuilt by class (rebuild.py); the candidate's signature and
stdout are looks.py's.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

try:
    from . import codec, frames
    from .frames import CandidateExit, JobTimeout, Refused, SolutionGone, SolutionOOM
    from .looks import Sink, signature_data, signature_from, solution_stdout
    from .rebuild import ExceptionsAsData
except ImportError:  # deployed flat in the judge image, beside runner.py
    import codec  # type: ignore[no-redef]
    import frames  # type: ignore[no-redef]
    from frames import CandidateExit, JobTimeout, Refused, SolutionGone, SolutionOOM  # type: ignore[no-redef]
    from looks import Sink, signature_data, signature_from, solution_stdout  # type: ignore
    from rebuild import ExceptionsAsData  # type: ignore[no-redef]

Malformed, NotPlainData, decode, encode = (codec.Malformed, codec.NotPlainData, codec.decode,
                                           codec.encode)

MAX_NEST = 48  # calls in flight at once across the boundary (callback -> call -> callback ...)
BATCH = 4096  # items one pull may prefetch
BATCH_SECONDS = 0.0002
REPLIES = {"ret", "raise", "items", "oom", "refused"}
__all__ = ["CandidateExit", "JobTimeout", "Peer", "Refused", "SolutionGone",
           "SolutionOOM", "signature_data", "signature_from", "solution_stdout"]


class Peer(ExceptionsAsData):
    """One end of the boundary. ``runner`` ends enforce the deadline and mark what they rebuild."""

    def __init__(self, rfd: int, wfd: int, *, runner: bool, deadline: float | None = None,
                 entry: Any = None) -> None:
        self.rfd, self.wfd, self.runner, self.deadline = rfd, wfd, runner, deadline
        self.reader = frames.Reader(rfd)
        self.exports: dict[int, Any] = {} if entry is None else {0: entry}
        self._ids: dict[int, int] = {}
        self._classes: dict[tuple, type] = {}
        self.depth = 0
        self.broken: BaseException | None = None  # runner end: once set, the job cannot pass
        self.side_effects = 0  # outputs and callbacks seen: a pull stops prefetching at one
        self.sink: Sink | None = None
        self.made, self.arrived = 0, None  # proxies decoded so far; the last message's data
        self.write_out = lambda data: sys.stdout.write(data.decode("utf-8", "replace"))

    # -- codec hooks
    def export(self, value: Any) -> dict | None:
        if isinstance(value, Remote):
            if value.peer is not self:
                return None
            return {"mine": value.ref}
        if isinstance(value, Iterator):
            return {"it": self._register(value)}
        if callable(value):
            name = getattr(value, "__name__", None)
            return {"fn": [self._register(value), name if type(name) is str else None]}
        return None

    def _register(self, value: Any) -> int:
        key = id(value)
        if key not in self._ids:
            self._ids[key] = len(self.exports) + 1
            self.exports[self._ids[key]] = value
        return self._ids[key]

    def resolve(self, tag: str, body: Any) -> Any:
        if tag == "mine":
            if type(body) is not int or body not in self.exports:
                raise Malformed("a handle that was never given")
            return self.exports[body]
        self.made += 1
        if tag == "it":
            return RemoteIterator(self, _handle(body))
        ref, name = body
        return RemoteFunction(self, _handle(ref), name if type(name) is str else None)

    # -- messages
    def send(self, msg: dict, payload: Any = None) -> None:
        tree, blobs = encode(payload, self)
        msg["v"] = tree
        if self.sink is not None and self.sink.pending:  # output rides along as raw bytes
            msg["ob"] = len(blobs)
            blobs.append(self.sink.take())
        try:
            frames.send_msg(self.wfd, msg, blobs)
        except BrokenPipeError as exc:
            raise SolutionGone("the solution process stopped") from exc

    def recv(self) -> tuple[dict, Any]:
        try:
            msg, blobs = frames.recv_msg(self.reader, self.deadline)
        except TimeoutError as exc:
            raise JobTimeout from exc
        except (EOFError, OSError) as exc:
            raise SolutionGone("the solution process stopped answering") from exc
        except Malformed as exc:
            raise SolutionGone(f"the solution process sent a malformed message: {exc}") from exc
        out = msg.get("ob")
        if out is not None:
            if type(out) is not int or not 0 <= out < len(blobs):
                raise SolutionGone("the solution process sent a malformed message")
            self.side_effects += 1
            self.write_out(blobs[out])
        made = self.made
        try:
            value = decode((msg.get("v"), blobs), self)
            # the encoding is canonical, so what arrived is the arguments' state before a call,
            # unless decoding made proxies (which encode back as references, not as they came)
            self.arrived = (msg.get("v"), blobs) if self.made == made else None
            return msg, value
        except Malformed as exc:
            raise SolutionGone(f"the solution process sent a malformed value: {exc}") from exc

    def exchange(self, msg: dict, payload: Any) -> tuple[dict, Any]:
        """``request``, raising what ``oom``/``refused`` say; at the runner end any failure here
        breaks the job for good (a test's bare ``except:`` cannot turn it into a pass)."""
        if self.broken is not None:
            raise self.broken
        try:
            reply, value = self.request(msg, payload)
            op = reply.get("op")
            if op == "oom":
                raise SolutionOOM("the solution ran out of memory")
            if op == "refused":
                detail = f"the solution's value cannot be judged: {reply.get('detail')}"
                raise Refused(detail[:500])
        except BaseException as exc:
            if self.runner:
                self.broken = exc
            raise
        return reply, value

    def request(self, msg: dict, payload: Any) -> tuple[dict, Any]:
        """Send a call or pull and serve the other side's nested requests until it answers."""
        if self.depth >= MAX_NEST:
            raise SolutionGone(f"calls nested deeper than {MAX_NEST} levels across the boundary")
        self.depth += 1
        try:
            self.send(msg, payload)
            while True:
                reply, value = self.recv()
                op = reply.get("op")
                if op in REPLIES:
                    return reply, value
                self.dispatch(reply, value)
        finally:
            self.depth -= 1

    def serve_forever(self) -> None:
        while True:
            msg, value = self.recv()
            if msg.get("op") in REPLIES:
                raise Malformed("an answer nobody asked for")
            self.dispatch(msg, value)

    def dispatch(self, msg: dict, value: Any) -> None:
        op = msg.get("op")
        if op == "out":
            return
        if op == "call":
            self.side_effects += 1
            self.serve_call(msg, value)
        elif op == "next":
            self.serve_next(msg)
        else:
            raise SolutionGone(f"unknown operation {op!r}")

    def _target(self, ref: Any) -> Any:
        if type(ref) is not int or ref not in self.exports:
            raise SolutionGone("a call to a handle that was never given")
        return self.exports[ref]

    # -- serving
    def serve_call(self, msg: dict, value: Any) -> None:
        target = self._target(msg.get("fn"))
        if type(value) is not list or len(value) != 2 or type(value[1]) is not dict:
            raise SolutionGone("a call without arguments")
        args, kwargs = value
        before = self._state(args, kwargs)
        try:
            result, op = target(*args, **kwargs), "ret"
        except MemoryError:
            if self.runner:
                raise
            self.send({"op": "oom"})
            return
        except BaseException as exc:  # noqa: BLE001 - the solution's exceptions are data
            if self.runner and not isinstance(exc, Exception):
                raise
            result, op = exc, "raise"
        muts = self._muts(args, kwargs, before)
        self.reply(op, result, muts)

    def reply(self, op: str, result: Any, muts: Any) -> None:
        if op == "raise":
            self.send({"op": "raise", "exc": self.describe(result)}, [self.args(result), muts])
            return
        try:
            self.send({"op": "ret"}, [result, muts])
        except NotPlainData as exc:
            if self.runner:
                raise
            self.send({"op": "refused", "detail": str(exc)})

    def _state(self, args: list, kwargs: dict) -> Any:
        """The arguments' encoding before a call, or None when no call could change them."""
        if all(type(a) in _IMMUTABLE for a in args) and all(
                type(a) in _IMMUTABLE for a in kwargs.values()):
            return None
        if self.arrived is not None:
            return self.arrived
        try:
            return encode([args, kwargs], self)
        except NotPlainData:
            return None

    def _muts(self, args: list, kwargs: dict, before: Any) -> Any:
        if before is None:
            return None
        try:
            after = encode([args, kwargs], self)
        except NotPlainData as exc:
            if self.runner:
                raise
            self.send({"op": "refused", "detail": f"an argument now holds a value that {exc}"})
            raise SolutionGone("refused") from None
        return None if after == before else [args, kwargs]

    def serve_next(self, msg: dict) -> None:
        it = self._target(msg.get("it"))
        n = msg.get("n")
        n = min(max(n, 1), BATCH) if type(n) is int else 1
        items: list = []
        end, exc = False, None
        start, effects = time.monotonic(), self.side_effects
        while True:
            try:
                items.append(next(it))
            except StopIteration:
                end = True
            except BaseException as e:  # noqa: BLE001 - the iterator's exceptions are data
                if self.runner and not isinstance(e, Exception):
                    raise
                exc = e
            if end or exc is not None or len(items) >= n or self.side_effects != effects or (
                    self.sink is not None and self.sink.pending) or (
                    time.monotonic() - start > BATCH_SECONDS):
                break
        body = {"op": "items", "end": end}
        if exc is not None:
            body["exc"] = self.describe(exc)
        try:
            self.send(body, [items, self.args(exc) if exc is not None else None])
        except NotPlainData as e:
            if self.runner:
                raise
            self.send({"op": "refused", "detail": str(e)})

    # -- exceptions
def _handle(ref: Any) -> int:
    if type(ref) is not int:
        raise Malformed("a handle is an int")
    return ref


_IMMUTABLE = {int, float, str, bool, type(None), bytes, complex}


class Remote:
    peer: Peer
    ref: int


class RemoteFunction(Remote):
    """A callable that lives on the other side: calling it sends data and gets data back."""

    def __init__(self, peer: Peer, ref: int, name: str | None) -> None:
        self.peer, self.ref = peer, ref
        if name:
            self.__name__ = self.__qualname__ = name
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reply, value = self.peer.exchange({"op": "call", "fn": self.ref}, [list(args), kwargs])
        if reply.get("op") not in ("ret", "raise") or type(value) is not list or len(value) != 2:
            self.peer.broken = SolutionGone("the solution process sent a malformed answer")
            raise self.peer.broken
        result, muts = value
        if muts is not None:
            apply_muts(args, kwargs, muts)
        self.calls += 1
        if reply["op"] == "raise":
            raise self.peer.rebuild(reply.get("exc"), result)
        return result

    def __repr__(self) -> str:
        return f"<function {getattr(self, '__name__', '?')} across the judge boundary>"


class RemoteIterator(Remote, Iterator):
    """An iterator on the other side, pulled on demand (a few items ahead at most)."""

    def __init__(self, peer: Peer, ref: int) -> None:
        self.peer, self.ref = peer, ref
        self.buffer: list = []
        self.done, self.pending, self.want = False, None, 1

    def __next__(self) -> Any:
        if not self.buffer and not self.done:
            self._pull()
        if self.buffer:
            return self.buffer.pop()
        if self.pending is not None:
            exc, self.pending = self.pending, None
            raise exc
        raise StopIteration

    def _pull(self) -> None:
        reply, value = self.peer.exchange({"op": "next", "it": self.ref, "n": self.want}, None)
        if reply.get("op") != "items" or type(value) is not list or len(value) != 2 or type(
                value[0]) is not list:
            self.peer.broken = SolutionGone("the solution process sent malformed items")
            raise self.peer.broken
        items, exc_args = value
        self.buffer = items[::-1]
        self.want = min(self.want * 2, BATCH)
        if reply.get("exc") is not None:
            self.done, self.pending = True, self.peer.rebuild(reply["exc"], exc_args)
        elif reply.get("end"):
            self.done = True


def apply_muts(args: tuple, kwargs: dict, muts: Any) -> None:
    new_args, new_kwargs = muts
    for old, new in zip(args, new_args, strict=False):
        update(old, new)
    for key, old in kwargs.items():
        if key in new_kwargs:
            update(old, new_kwargs[key])


def update(old: Any, new: Any) -> Any:
    """Make ``old`` equal ``new`` in place where their shapes match; return what to keep."""
    if type(old) is not type(new):
        return new
    if isinstance(old, (list, deque)):
        kept = [update(o, n) for o, n in zip(old, new, strict=False)] + list(new)[len(old):]
        old.clear()
        old.extend(kept)
        return old
    if isinstance(old, dict):
        kept = {k: update(old[k], v) if k in old else v for k, v in new.items()}
        if isinstance(old, defaultdict):
            old.default_factory = new.default_factory  # type: ignore[attr-defined]
        old.clear()
        dict.update(old, kept)  # not Counter.update, which adds
        return old
    if isinstance(old, set):
        if old != new:
            old.clear()
            old.update(new)
        return old
    if isinstance(old, bytearray):
        old[:] = new
        return old
    if isinstance(old, tuple) and len(old) == len(new):
        for o, n in zip(old, new, strict=False):
            update(o, n)
        return old
    return new
