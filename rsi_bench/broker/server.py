"""The broker's unix-socket server: newline-delimited JSON, one thread per connection.

Request (one line): ``{"id": any, "role": "solve" | "improve", "task_id": str | null,
"generation": int | null, "messages": [{"role", "content"}...], "params": {...}}``.
Reply (one line): ``{"id": same, "ok": true, "completion": {...}, "cache_hit": bool}`` or
``{"id": same, "ok": false, "error": {"type": "BudgetExceeded" | "ReplayMiss" | ...,
"message": str}}``. A connection may carry any number of requests, answered in order.

A server can be bound to an identity (role, task id, generation): requests on it may omit
those fields, and a request that names different ones is refused, so an agent in a container
cannot spend another role's budget or pose as another task.
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

from rsi_bench.broker.broker import Broker
from rsi_bench.models.base import BadRequest, CallContext, ModelError

MAX_LINE = 64 * 1024 * 1024


def _error(request_id: Any, kind: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": {"type": kind, "message": message}}


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 512  # many agents may connect at once; the default backlog is 5
    broker: Broker
    identity: CallContext | None


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                self._send(_error(None, "BadRequest", f"request longer than {MAX_LINE} bytes"))
                return
            if line.strip():
                self._send(self.server_reply(line))

    def _send(self, reply: dict[str, Any]) -> None:
        data = json.dumps(reply, ensure_ascii=False).encode() + b"\n"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)
            self.wfile.flush()

    def server_reply(self, line: bytes) -> dict[str, Any]:
        request_id = None
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise BadRequest("a request must be a JSON object")
            request_id = request.get("id")
            context = self._context(request)
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise BadRequest("params must be an object")
            answer = self.server.broker.complete(
                context.role, request.get("messages"), params,  # type: ignore[arg-type]
                task_id=context.task_id, generation=context.generation, sample=context.sample)
        except json.JSONDecodeError as exc:
            return _error(None, "BadRequest", f"request is not valid JSON: {exc}")
        except ModelError as exc:
            return _error(request_id, type(exc).__name__, str(exc))
        except Exception as exc:  # a broker bug must not kill the connection thread silently
            return _error(request_id, "InternalError",
                          self.server.broker.redactor.text(f"{type(exc).__name__}: {exc}"))
        return {"id": request_id, "ok": True, "completion": answer.completion.to_dict(),
                "cache_hit": answer.cache_hit}

    def _context(self, request: dict[str, Any]) -> CallContext:
        fixed = self.server.identity
        role, task_id, generation = (request.get("role"), request.get("task_id"),
                                     request.get("generation"))
        if fixed is not None:
            for name, given, bound in (("role", role, fixed.role),
                                       ("task_id", task_id, fixed.task_id),
                                       ("generation", generation, fixed.generation)):
                if given is not None and given != bound:
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
                 identity: CallContext | None = None, mode: int = 0o600) -> None:
        self.path = Path(path)
        _clear_stale(self.path)
        self._server = _Server(str(self.path), _Handler)
        self._server.broker = broker
        self._server.identity = identity
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
            try:
                server.process_request(request, address)  # its own daemon thread
            except Exception:
                server.handle_error(request, address)
                server.shutdown_request(request)
            except BaseException:
                server.shutdown_request(request)
                raise

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
