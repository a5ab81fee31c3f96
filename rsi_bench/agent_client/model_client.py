"""The model client an agent uses inside its container. Standard library only.

    from model_client import ModelClient, BudgetExceeded, ModelError
    model = ModelClient()
    answer = model.complete([{"role": "user", "content": "..."}], max_tokens=512)
    answer["text"], answer["usage"], answer["model_id"]

It talks to the host broker over the unix socket named by ``RSI_BENCH_BROKER`` (default
``/run/rsi-bench/broker.sock``): one JSON line out, one JSON line back, on a connection of its
own per call (a socket admits a limited number at once: the client waits for a free one). The
role, task id and generation come from ``RSI_BENCH_ROLE``, ``RSI_BENCH_TASK_ID`` and
``RSI_BENCH_GENERATION`` unless given; the broker may fix them for the socket anyway. No key is
ever needed here.

A call waits for the broker's answer however long the model takes: the broker applies the
model's own timeout and retries (a model that fails after them is an infrastructure outcome,
never the agent's), and the host's deadline for the job excludes the time calls spend waiting.
A wall-clock timeout here would turn a slow or loaded model into the agent's failure; an agent
that wants one anyway passes ``timeout`` (seconds per socket operation).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import threading
import time
from typing import Any

DEFAULT_SOCKET = "/run/rsi-bench/broker.sock"
BUSY_RETRIES = 200  # about 45 s of waiting for a free connection slot
_ids = itertools.count(1)
_ids_lock = threading.Lock()


class ModelError(Exception):
    """The broker could not answer; ``type`` is the broker's error type."""

    def __init__(self, message: str, type: str = "ModelError") -> None:  # noqa: A002
        super().__init__(message)
        self.type = type


class BudgetExceeded(ModelError):
    """The role's token, dollar or call budget does not allow this call."""


class BrokerUnavailable(ModelError):
    """The broker socket cannot be reached."""


class ModelClient:
    def __init__(self, path: str | None = None, *, role: str | None = None,
                 task_id: str | None = None, generation: int | None = None,
                 timeout: float | None = None) -> None:
        self.path = path or os.environ.get("RSI_BENCH_BROKER") or DEFAULT_SOCKET
        self.role = role or os.environ.get("RSI_BENCH_ROLE")
        self.task_id = task_id or os.environ.get("RSI_BENCH_TASK_ID")
        env_generation = os.environ.get("RSI_BENCH_GENERATION")
        self.generation = generation if generation is not None else (
            int(env_generation) if env_generation else None)
        self.timeout = timeout

    def complete(self, messages: list[dict[str, str]], **params: Any) -> dict[str, Any]:
        """Return the completion: text, stop_reason, usage, cost_usd, latency_s, model_id."""
        with _ids_lock:
            request_id = next(_ids)
        request = {"id": request_id, "role": self.role, "task_id": self.task_id,
                   "generation": self.generation, "messages": messages, "params": params}
        data = json.dumps(request).encode() + b"\n"
        for attempt in range(BUSY_RETRIES):
            reply = self._exchange(data)
            if (reply.get("error") or {}).get("type") != "BrokerBusy":
                break
            # the socket's connection cap: this request was not read; wait for one to close
            time.sleep(min(0.01 * (attempt + 1), 0.25))
        else:
            raise BrokerUnavailable(f"the model broker at {self.path} kept refusing "
                                    "connections (too many open)", "BrokerUnavailable")
        unread = not reply.get("ok") and reply.get("id") is None  # refused before it was read
        if reply.get("id") != request_id and not unread:
            raise ModelError(f"broker answered request {reply.get('id')!r}, not {request_id}")
        if reply.get("ok"):
            return dict(reply["completion"])
        error = reply.get("error") or {}
        kind = str(error.get("type", "ModelError"))
        message = str(error.get("message", "the broker gave no reason"))
        raise (BudgetExceeded if kind == "BudgetExceeded" else ModelError)(message, kind)

    def _connect(self) -> socket.socket:
        for attempt in range(50):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                return sock
            except BlockingIOError:  # the broker's backlog is full for a moment
                sock.close()
                time.sleep(0.02 * (attempt + 1))
            except OSError as exc:
                sock.close()
                raise BrokerUnavailable(f"cannot reach the model broker at {self.path}: {exc}",
                                        "BrokerUnavailable") from None
        raise BrokerUnavailable(f"the model broker at {self.path} is too busy to accept",
                                "BrokerUnavailable")

    def _exchange(self, data: bytes) -> dict[str, Any]:
        sock = self._connect()
        try:
            # a broker that refuses (too long, too many connections) answers and closes at once:
            # its one-line reason is still there to read after a broken pipe
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    break
        except OSError as exc:
            raise BrokerUnavailable(f"lost the model broker at {self.path}: {exc}",
                                    "BrokerUnavailable") from None
        finally:
            sock.close()
        line = b"".join(chunks)
        if not line.endswith(b"\n"):
            raise BrokerUnavailable("the model broker closed the connection without answering",
                                    "BrokerUnavailable")
        return json.loads(line)
