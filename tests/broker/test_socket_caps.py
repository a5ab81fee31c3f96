"""A broker socket's caps: frame size, connections at once, unfinished bytes, read deadline.
Each refusal reaches the client as one clear line where it can, and the host as an event.

Measured on the broker as it was: it kept up to 64 MiB of an unterminated frame, for any number
of connections, for as long as the client liked."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsi_bench.broker import Broker, BrokerServer
from rsi_bench.models.base import CallContext
from rsi_bench.models.simulated import SimTask, SimulatedModel
from rsi_bench.store import Store
from rsi_bench.store.runs import RunStore

TASK = SimTask.from_reference("def inc(x):\n    return x + 1\n", "inc", difficulty=1)
MIB = 1 << 20


class DEFAULTS:
    """The default limits (``SocketLimits()``; checked in ``test_limits_are_configurable``),
    spelled out so that every test here also runs, and fails, on a broker without them."""

    max_frame = 4 * MIB
    max_connections = 16
    max_pending = 16 * MIB
    max_events = 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "run.sqlite") as s:
        yield s


def serve(store: Store, path: Path) -> BrokerServer:
    broker = Broker(SimulatedModel({"inc": TASK}), store)
    return BrokerServer(broker, path, identity=CallContext("solve", "inc", 2)).start()


def refusals(store: Store) -> list[dict[str, Any]]:
    return [e["detail"] | {"generation": e["generation"]}
            for e in RunStore(store).events("broker_refused")]


def read_line(sock: socket.socket, timeout: float = 60) -> dict[str, Any]:
    sock.settimeout(timeout)
    return json.loads(sock.makefile("rb").readline())


def test_an_oversized_frame_is_refused_clearly_and_recorded(store: Store, tmp_path: Path
                                                           ) -> None:
    server = serve(store, tmp_path / "b.sock")
    big = json.dumps({"id": 1, "messages": [{"role": "user",
                                              "content": "x" * (DEFAULTS.max_frame + MIB)}]})
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(server.path))
        sender = threading.Thread(target=_send_quietly, args=(raw, big.encode() + b"\n"))
        sender.start()
        reply = read_line(raw)
        sender.join(60)
    server.close()
    assert reply["ok"] is False and reply["error"]["type"] == "BadRequest"
    assert f"limit of {DEFAULTS.max_frame} bytes" in reply["error"]["message"]
    assert DEFAULTS.max_frame <= 8 * MIB  # far below the 64 MiB the broker used to take
    (event,) = refusals(store)
    assert event["reason"] == "frame_too_large" and event["max_frame"] == DEFAULTS.max_frame
    assert (event["role"], event["task_id"], event["generation"]) == ("solve", "inc", 2)
    assert store.read().execute("SELECT COUNT(*) FROM model_calls").fetchone()[0] == 0


def test_the_agent_client_gets_the_reason_not_a_broken_pipe(store: Store, tmp_path: Path
                                                            ) -> None:
    from rsi_bench.agent_client.model_client import ModelClient, ModelError

    server = serve(store, tmp_path / "b.sock")
    with pytest.raises(ModelError, match="longer than the broker's limit") as info:
        ModelClient(str(server.path)).complete(
            [{"role": "user", "content": "y" * (2 * DEFAULTS.max_frame)}])
    server.close()
    assert info.value.type == "BadRequest"


def test_an_unterminated_frame_meets_the_read_deadline(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSI_BENCH_BROKER_READ_TIMEOUT", "0.5")
    server = serve(store, tmp_path / "b.sock")
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(server.path))
        raw.sendall(b'{"id": 1, "messages": [')  # and never the rest
        reply = read_line(raw)
        raw.settimeout(60)
        assert raw.recv(1) == b""  # and the connection is closed
    with socket.socket(socket.AF_UNIX) as idle:  # nothing sent at all: closed, not recorded
        idle.connect(str(server.path))
        idle.settimeout(60)
        assert idle.recv(1) == b""
    server.close()
    assert reply["error"]["type"] == "BadRequest" and "within 0.5 s" in reply["error"]["message"]
    assert [(e["reason"], e["received"]) for e in refusals(store)] == [("frame_incomplete", 23)]


def test_a_connection_flood_is_turned_away_and_counted(store: Store, tmp_path: Path) -> None:
    flood = 100
    before = set(threading.enumerate())
    server = serve(store, tmp_path / "b.sock")
    conns = []
    for _ in range(flood):
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(str(server.path))
        conns.append(conn)
    busy = _busy_replies(conns, flood - DEFAULTS.max_connections)
    handlers = [t for t in set(threading.enumerate()) - before
                if "process_request_thread" in t.name]
    assert len(handlers) <= DEFAULTS.max_connections  # no thread for a refused connection
    for conn in conns:
        conn.close()
    server.close()
    assert len(busy) == flood - DEFAULTS.max_connections
    assert all(r["error"]["type"] == "BrokerBusy" for r in busy)
    events = refusals(store)
    # the first ones one by one, the rest as one count: a flood cannot flood the store
    assert [e["reason"] for e in events] == (["too_many_connections"] * DEFAULTS.max_events
                                             + ["more_refusals"])
    assert events[-1]["count"] == flood - DEFAULTS.max_connections - DEFAULTS.max_events


def test_unfinished_frames_on_many_connections_hold_bounded_memory(
        store: Store, tmp_path: Path) -> None:
    """20 connections each send just under a maximal frame and never finish it."""
    server = serve(store, tmp_path / "b.sock")
    chunk = b"z" * (DEFAULTS.max_frame - 1)
    tracemalloc.start()
    try:
        conns = [socket.socket(socket.AF_UNIX) for _ in range(20)]
        senders = []
        for conn in conns:
            conn.connect(str(server.path))
            senders.append(threading.Thread(target=_send_quietly, args=(conn, chunk)))
            senders[-1].start()
        for sender in senders:  # each send ends when the broker took it all or refused it
            sender.join(120)
        assert not any(s.is_alive() for s in senders)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for conn in conns:
        conn.close()
    server.close()
    # the senders' own 4 MiB buffer is shared; what grows with connections is the broker's
    assert peak < DEFAULTS.max_pending + 8 * MIB, f"peak {peak / MIB:.0f} MiB"
    reasons = {e["reason"] for e in refusals(store)}
    assert "pending_bytes" in reasons


def test_limits_are_configurable(store: Store, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from rsi_bench.broker.limits import SocketLimits

    assert SocketLimits() == SocketLimits(DEFAULTS.max_frame, DEFAULTS.max_connections,
                                          DEFAULTS.max_pending, 30.0, DEFAULTS.max_events)
    monkeypatch.setenv("RSI_BENCH_BROKER_MAX_FRAME", "1000")
    monkeypatch.setenv("RSI_BENCH_BROKER_MAX_CONNECTIONS", "2")
    assert SocketLimits.from_env() == SocketLimits(max_frame=1000, max_connections=2)
    broker = Broker(SimulatedModel({"inc": TASK}), store,
                    socket_limits=SocketLimits(max_frame=64 * 1024))
    with BrokerServer(broker, tmp_path / "b.sock") as server, \
            socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(server.path))
        raw.sendall(b"q" * (100 * 1024) + b"\n")
        assert "limit of 65536 bytes" in read_line(raw)["error"]["message"]
    monkeypatch.setenv("RSI_BENCH_BROKER_MAX_FRAME", "lots")
    from rsi_bench.errors import InputError

    with pytest.raises(InputError, match="RSI_BENCH_BROKER_MAX_FRAME must be a number"):
        SocketLimits.from_env()
    with pytest.raises(InputError, match="max_pending must be at least max_frame"):
        SocketLimits(max_frame=2 * MIB, max_pending=MIB)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:  # the broker refused and closed: expected
        pass


def _busy_replies(conns: list[socket.socket], expected: int) -> list[dict[str, Any]]:
    """The replies that arrive on any of ``conns`` (waits for ``expected`` of them, or 60 s)."""
    got: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(got) < expected and time.monotonic() < deadline:
        waiting = [c for c in conns if c.fileno() not in got]
        ready, _, _ = select.select(waiting, [], [], 1.0)
        for conn in ready:
            data = conn.recv(4096)
            if data:
                got[conn.fileno()] = json.loads(data.split(b"\n")[0])
    return list(got.values())
