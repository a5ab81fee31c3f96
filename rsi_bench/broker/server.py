"""The broker's unix-socket server: newline-delimited JSON, one thread per connection.

Request (one line): ``{"id": any, "role": "solve" | "improve", "task_id": str | null,
"generation": int | null, "messages": [{"role", "content"}...], "params": {...}}``.
Reply (one line): ``{"id": same, "ok": true, "completion": {...}}`` or ``{"id": same, "ok":
false, "error": {"type": "BudgetExceeded" | "BadRequest" | "BrokerBusy" | ..., "message":
str}}``. A connection may carry any number of requests, answered in order. What a reply may
say is in ``replies.py``: nothing about any other call.

A server can be bound to an identity (role, task id, generation, sample): requests on it may
omit those fields, and a request that names different ones is refused, so an agent in a
container cannot spend another role's budget or pose as another task. Only a bound socket is a
boundary; an unbound one (tests, benchmarks) believes what each request says.

The socket's ``SocketLimits`` cap the frame size, the connections open at once, the bytes of
unfinished frames and the time a frame may take; every refusal gets a one-line error reply
where the connection can still take one, and is recorded as a ``broker_refused`` event (the
first ``max_events`` of a socket one by one, the rest as a count when it closes).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from rsi_bench.broker import replies
from rsi_bench.broker.broker import Broker
from rsi_bench.broker.frames import FrameReader, FrameRefused
from rsi_bench.broker.limits import ByteBudget, SocketLimits
from rsi_bench.models.base import BadRequest, CallContext, ModelError

REFUSED = "broker_refused"


class _Refusals:
    """Records a socket's refusals as events, the first ``max_events`` one by one."""

    def __init__(self, broker: Broker, socket_name: str, identity: CallContext | None,
                 max_events: int) -> None:
        self.broker, self.socket_name, self.identity = broker, socket_name, identity
        self.max_events, self.count = max_events, 0
        self._lock = threading.Lock()

    def __call__(self, reason: str, **detail: Any) -> None:
        with self._lock:
            self.count += 1
            if self.count > self.max_events:
                return
        self.broker.record_event(REFUSED, self.identity, reason=reason,
                                 socket=self.socket_name, **detail)

    def close(self) -> None:
        with self._lock:
            unrecorded, self.count = max(self.count - self.max_events, 0), 0
        if unrecorded:
            self.broker.record_event(REFUSED, self.identity, reason="more_refusals",
                                     socket=self.socket_name, count=unrecorded)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 512  # many agents may connect at once; the default backlog is 5

    def __init__(self, path: Path, broker: Broker, identity: CallContext | None,
                 limits: SocketLimits) -> None:
        self.broker, self.identity, self.limits = broker, identity, limits
        self.budget = ByteBudget(limits.max_pending)
        self.refused = _Refusals(broker, path.name, identity, limits.max_events)
        self.open = 0
        self._open_lock = threading.Lock()
        super().__init__(str(path), _Handler)

    def admit(self) -> bool:
        """Count a new connection in, unless the socket already has ``max_connections``."""
        with self._open_lock:
            if self.open >= self.limits.max_connections:
                return False
            self.open += 1
            return True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self.open -= 1


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def handle(self) -> None:
        reader = FrameReader(self.request, self.server.limits, self.server.budget)
        try:
            while True:
                try:
                    frame = reader.next_frame()
                except FrameRefused as refusal:
                    limits = self.server.limits
                    self.server.refused(refusal.reason, received=refusal.received,
                                        max_frame=limits.max_frame,
                                        read_timeout=limits.read_timeout)
                    self._send(replies.error(None, "BadRequest", str(refusal)))
                    return
                if frame is None:
                    return
                if frame.strip() and not self._send(self.server_reply(frame)):
                    return
                reader.answered()
        finally:
            reader.close()

    def _send(self, reply: dict[str, Any]) -> bool:
        """Whether the reply went out. A client that does not read it within the read timeout
        loses its connection (a thread is not kept waiting on it)."""
        data = json.dumps(reply, ensure_ascii=False).encode() + b"\n"
        try:
            self.request.settimeout(self.server.limits.read_timeout)
            self.request.sendall(data)
        except OSError:
            return False
        return True

    def server_reply(self, line: bytes) -> dict[str, Any]:
        request_id = None
        broker = self.server.broker
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise BadRequest("a request must be a JSON object")
            request_id = request.get("id")
            context = self._context(request)
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise BadRequest("params must be an object")
            answer = broker.complete(
                context.role, request.get("messages"), params,  # type: ignore[arg-type]
                task_id=context.task_id, generation=context.generation, sample=context.sample)
        except (json.JSONDecodeError, RecursionError) as exc:
            return replies.error(None, "BadRequest", f"request is not valid JSON: {exc}")
        except ModelError as exc:
            return replies.error(request_id, *replies.agent_error(exc, broker.redactor.text))
        except Exception as exc:  # a broker bug must not kill the connection thread silently
            broker.record_event("broker_error", self.server.identity,
                                error=broker.redactor.text(f"{type(exc).__name__}: {exc}"))
            return replies.error(request_id, "InternalError",
                                 "the broker failed on this request (recorded on the host)")
        return replies.ok(request_id, answer.completion)

    def _context(self, request: dict[str, Any]) -> CallContext:
        fixed = self.server.identity
        role, task_id, generation = (request.get("role"), request.get("task_id"),
                                     request.get("generation"))
        if fixed is not None:
            for name, given, bound in (("role", role, fixed.role),
                                       ("task_id", task_id, fixed.task_id),
                                       ("generation", generation, fixed.generation)):
                if given is not None and given != bound:
                    self.server.refused("binding", field=name, given=repr(given)[:100])
                    raise BadRequest(f"this broker socket serves {name}={bound!r}, "
                                     f"not {given!r}")
            return fixed
        if not isinstance(role, str):
            raise BadRequest("role is required (solve or improve)")
        if task_id is not None and not isinstance(task_id, str):
            raise BadRequest("task_id must be a string or null")
        if generation is not None and (not isinstance(generation, int)
                                       or isinstance(generation, bool)):
            raise BadRequest("generation must be an integer or null")
        return CallContext(role, task_id, generation)


class BrokerServer:
    """``with BrokerServer(broker, path) as server:`` serves until the block ends.

    A thread accepts connections and starts a daemon thread per connection (no polling: a
    server is started and closed for every agent call). ``close()`` stops accepting at once:
    it shuts the listening socket down, which on Linux makes the blocked ``accept()`` fail.
    Connections already handed to their threads are not waited for nor cut: a request being
    answered still gets its reply, and the connection stays usable until its client closes
    it. Connections the kernel queued but this server had not accepted yet are dropped, as
    the listening socket is closed.
    """

    def __init__(self, broker: Broker, path: str | Path, *,
                 identity: CallContext | None = None, mode: int = 0o600,
                 limits: SocketLimits | None = None) -> None:
        self.path = Path(path)
        _clear_stale(self.path)
        limits = limits or getattr(broker, "socket_limits", None) or SocketLimits()
        self._server = _Server(self.path, broker, identity, limits)
        os.chmod(self.path, mode)
        self._closing = False
        self._thread = threading.Thread(target=self._accept_loop,
                                        name=f"broker:{self.path.name}", daemon=True)

    def start(self) -> BrokerServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing = True
        if self._thread.is_alive():
            listener = self._server.socket
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
            except OSError:  # a kernel that refuses: wake it with a connection instead
                with contextlib.suppress(OSError), \
                        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
                    wake.connect(str(self.path))
            self._thread.join()
        self._server.server_close()
        self._server.refused.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _accept_loop(self) -> None:
        """socketserver's serve_forever without its poll: accept until close()."""
        server = self._server
        while True:
            try:
                request, address = server.get_request()
            except OSError as exc:
                if self._closing or exc.errno in (errno.EBADF, errno.EINVAL):
                    return
                continue  # e.g. a connection aborted while queued: keep listening
            if self._closing:  # accepted after close() began: dropped, as if never accepted
                server.shutdown_request(request)
                return
            # what serve_forever does with an accepted connection (_handle_request_noblock)
            if not server.verify_request(request, address):
                server.shutdown_request(request)
                continue
            if not server.admit():
                self._turn_away(request)
                continue
            try:
                server.process_request(request, address)  # its own daemon thread
            except Exception:
                server.handle_error(request, address)
                server.shutdown_request(request)
            except BaseException:
                server.shutdown_request(request)
                raise

    def _turn_away(self, request: socket.socket) -> None:
        """Refuse a connection over the socket's cap: one line, never waited on, then closed.
        No thread is started and nothing is read, so a flood costs only this."""
        server = self._server
        limit = server.limits.max_connections
        line = json.dumps(replies.error(None, "BrokerBusy", (
            f"connection refused: {limit} connections are already open on this socket; "
            "close one and retry"))).encode() + b"\n"
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(line)
        server.shutdown_request(request)
        server.refused("too_many_connections", max_connections=limit)

    def __enter__(self) -> BrokerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clear_stale(path: Path) -> None:
    """Remove a socket file nobody listens on; refuse to take over a live one."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink()
        return
    finally:
        probe.close()
    raise ModelError(f"a broker is already listening on {path}")
