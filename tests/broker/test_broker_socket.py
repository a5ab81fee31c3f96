"""The broker behind its unix socket, reached by the stdlib-only agent client."""

from __future__ import annotations

import ast
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import rsi_bench.agent_client.model_client as client_module
from rsi_bench.agent_client.model_client import (
    BrokerUnavailable,
    BudgetExceeded,
    ModelClient,
    ModelError,
)
from rsi_bench.broker import Broker, BrokerServer, Budget
from rsi_bench.models.base import CallContext
from rsi_bench.models.base import ModelError as BrokerError
from rsi_bench.models.simulated import SimTask, SimulatedModel
from rsi_bench.store import Store

TASK = SimTask.from_reference("def inc(x):\n    return x + 1\n", "inc", difficulty=1)


class SlowCommitStore(Store):
    """Commits ``delay`` seconds late: a broker that answered before committing is caught."""

    delay = 0.0

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with super().write() as db:
            yield db
            time.sleep(self.delay)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ModelClient, Store, Path]]:
    store = SlowCommitStore(tmp_path / "run.sqlite")
    broker = Broker(SimulatedModel({"inc": TASK}), store, {"solve": Budget(calls=40)},
                    concurrency=8)
    path = tmp_path / "broker.sock"
    with BrokerServer(broker, path):
        yield ModelClient(str(path), role="solve", task_id="inc", generation=0), store, path
    store.close()


def test_the_call_is_in_the_store_when_the_reply_arrives(
        served: tuple[ModelClient, Store, Path]) -> None:
    client, store, _ = served
    store.delay = 0.3  # type: ignore[attr-defined]
    reply = client.complete([{"role": "user", "content": "Examples:\nwrite inc"}], seed=1)
    with sqlite3.connect(store.path) as db:  # read at the moment the reply arrived
        row = db.execute("SELECT status, role, task_id, generation, completion_json "
                         "FROM model_calls").fetchone()
    assert row is not None, "the reply arrived before the call was committed"
    assert row[:4] == ("ok", "solve", "inc", 0)
    assert json.loads(row[4])["text"] == reply["text"] and reply["model_id"] == "simulated/v1"


def test_many_connections_at_once(served: tuple[ModelClient, Store, Path]) -> None:
    client, store, _ = served
    replies: dict[int, dict[str, object]] = {}

    def one(i: int) -> None:
        replies[i] = client.complete([{"role": "user", "content": f"write inc #{i}"}])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert len(replies) == 32 and all(r["text"] for r in replies.values())
    assert store.read().execute("SELECT COUNT(*) FROM model_calls").fetchone()[0] == 32
    print(f"32 concurrent connections answered in {elapsed:.2f}s")


def test_errors_reach_the_agent_as_exceptions(served: tuple[ModelClient, Store, Path]) -> None:
    client, store, path = served
    for i in range(40):
        client.complete([{"role": "user", "content": f"spend {i}"}])
    with pytest.raises(BudgetExceeded, match="budget exhausted") as info:
        client.complete([{"role": "user", "content": "one more"}])
    assert info.value.type == "BudgetExceeded"
    assert "40" not in str(info.value)  # the agent is not told the role's usage ...
    recorded = store.read().execute(
        "SELECT error_message FROM model_calls WHERE status = 'refused'").fetchone()[0]
    assert "call budget 40 is used up" in recorded  # ... the host record is
    with pytest.raises(ModelError, match="role must be one of") as bad:
        ModelClient(str(path), role="judge").complete([{"role": "user", "content": "x"}])
    assert bad.value.type == "BadRequest"
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(path))
        raw.sendall(b"this is not json\n")
        reply = json.loads(raw.makefile().readline())
    assert reply["ok"] is False and reply["error"]["type"] == "BadRequest"


def test_no_broker_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerUnavailable, match="cannot reach the model broker"):
        ModelClient(str(tmp_path / "none.sock")).complete([{"role": "user", "content": "x"}])


def test_a_bound_socket_fixes_role_and_task(tmp_path: Path) -> None:
    with Store(tmp_path / "run.sqlite") as store:
        broker = Broker(SimulatedModel({"inc": TASK}), store)
        path = tmp_path / "b.sock"
        with BrokerServer(broker, path, identity=CallContext("solve", "inc", 3)):
            plain = ModelClient(str(path))
            assert plain.complete([{"role": "user", "content": "go"}])["text"].startswith("```")
            with pytest.raises(ModelError, match="serves role='solve', not 'improve'"):
                ModelClient(str(path), role="improve").complete(
                    [{"role": "user", "content": "go"}])
        row = store.read().execute("SELECT role, task_id, generation FROM model_calls").fetchone()
    assert tuple(row) == ("solve", "inc", 3)


def test_the_client_is_stdlib_only_and_works_as_a_copied_file(
        served: tuple[ModelClient, Store, Path], tmp_path: Path) -> None:
    source = Path(client_module.__file__).read_text()
    imports = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Import) for alias in node.names}
    imports |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imports <= set(sys.stdlib_module_names) | {"__future__"}, imports
    _, _, path = served
    copy = tmp_path / "agent" / "model_client.py"
    copy.parent.mkdir()
    copy.write_text(source)
    agent = ("from model_client import ModelClient\n"
             "print(ModelClient().complete([{'role': 'user', 'content': 'hi'}])['model_id'])\n")
    # -I: isolated, -S: no site-packages; only the copied file and the standard library exist
    env = {"RSI_BENCH_BROKER": str(path), "RSI_BENCH_ROLE": "solve", "RSI_BENCH_TASK_ID": "inc"}
    result = subprocess.run([sys.executable, "-S", "-c", agent], cwd=copy.parent, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "simulated/v1"


# --- closing the server ---------------------------------------------------------------------


def _ask(conn: socket.socket, reader: Any, request: dict[str, Any]) -> dict[str, Any]:
    conn.sendall(json.dumps(request).encode() + b"\n")
    reply: dict[str, Any] = json.loads(reader.readline())
    return reply


def test_close_is_prompt(tmp_path: Path) -> None:
    """A server is started and closed per agent call: close() must not wait for a poll tick."""
    times = []
    with Store(tmp_path / "run.sqlite") as store:
        broker = Broker(SimulatedModel({"inc": TASK}), store)
        for i in range(50):
            server = BrokerServer(broker, tmp_path / f"{i}.sock").start()
            with socket.socket(socket.AF_UNIX) as raw:  # the accept loop is up and has served
                raw.connect(str(server.path))
                assert _ask(raw, raw.makefile(), {"id": i})["ok"] is False  # no role: refused
            started = time.perf_counter()
            server.close()
            times.append(time.perf_counter() - started)
    mean = sum(times) / len(times)
    print(f"close(): mean {mean * 1e3:.3f} ms, max {max(times) * 1e3:.3f} ms")
    assert mean < 0.005, f"close() took {mean * 1e3:.1f} ms on average"


def test_a_closed_server_is_gone(tmp_path: Path) -> None:
    with Store(tmp_path / "run.sqlite") as store:
        path = tmp_path / "b.sock"
        server = BrokerServer(Broker(SimulatedModel({"inc": TASK}), store), path).start()
        server.close()
        assert not path.exists()
        assert not any(t.name == f"broker:{path.name}" for t in threading.enumerate())
        with socket.socket(socket.AF_UNIX) as raw, pytest.raises(OSError):
            raw.connect(str(path))
        server.close()  # closing twice is harmless


def test_stale_socket_is_replaced_and_a_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))  # a socket file nobody listens on, as a crashed run leaves
    with Store(tmp_path / "run.sqlite") as store:
        broker = Broker(SimulatedModel({"inc": TASK}), store)
        with BrokerServer(broker, path, mode=0o640):
            assert path.stat().st_mode & 0o777 == 0o640
            with pytest.raises(BrokerError, match="already listening"):
                BrokerServer(broker, path)
        with BrokerServer(broker, path):  # the path is free again after close()
            assert ModelClient(str(path), role="solve", task_id="inc").complete(
                [{"role": "user", "content": "go"}])["text"]


class GatedModel(SimulatedModel):
    """Answers only once ``release`` is set; ``entered`` says a call is in progress."""

    def __init__(self) -> None:
        super().__init__({"inc": TASK})
        self.entered = threading.Event()
        self.release = threading.Event()

    def complete_in_context(self, messages: Any, context: CallContext,
                            **params: Any) -> Any:
        self.entered.set()
        assert self.release.wait(10), "the test never released the model"
        return super().complete_in_context(messages, context, **params)


def test_close_does_not_cut_a_request_in_progress(tmp_path: Path) -> None:
    """close() neither waits for nor cuts connections being served: the reply still comes, and
    the connection keeps serving until its client closes it."""
    model = GatedModel()
    with Store(tmp_path / "run.sqlite") as store:
        path = tmp_path / "b.sock"
        server = BrokerServer(Broker(model, store), path,
                              identity=CallContext("solve", "inc", 0)).start()
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(path))
            reader = raw.makefile()
            raw.sendall(json.dumps({"id": 1, "messages": [{"role": "user", "content": "a"}]})
                        .encode() + b"\n")
            assert model.entered.wait(10)
            started = time.perf_counter()
            server.close()
            assert time.perf_counter() - started < 1.0 and not model.release.is_set()
            assert not path.exists()
            model.release.set()
            first = json.loads(reader.readline())
            assert first["id"] == 1 and first["ok"] is True and first["completion"]["text"]
            second = _ask(raw, reader, {"id": 2, "messages": [{"role": "user", "content": "b"}]})
            assert second["id"] == 2 and second["ok"] is True
        assert store.read().execute("SELECT COUNT(*) FROM model_calls").fetchone()[0] == 2


def test_the_client_waits_for_a_slow_model_however_long_it_takes(tmp_path: Path) -> None:
    """A loaded machine or a slow API must never become the agent's failure: the client has no
    wall-clock limit of its own unless the agent asks for one (the control: with one, the same
    slow answer is lost)."""
    path = str(tmp_path / "slow.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    release = threading.Event()

    def answer_late() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            request = json.loads(conn.makefile("rb").readline())
            release.wait(10)  # answers only once the client has waited past the control's limit
            reply = {"id": request["id"], "ok": True, "completion": {"text": "late"}}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode() + b"\n")
            conn.close()

    threading.Thread(target=answer_late, daemon=True).start()
    with pytest.raises(BrokerUnavailable, match="timed out"):
        ModelClient(path, role="solve", timeout=0.5).complete([{"role": "user", "content": "hi"}])
    release.set()  # the first connection answers (too late), the next waits for its own answer
    release.clear()
    threading.Timer(2.0, release.set).start()  # longer than the control's limit
    client = ModelClient(path, role="solve")
    assert client.timeout is None  # no limit at all (a 900 s one cut a 1,024-token answer short)
    assert client.complete([{"role": "user", "content": "hi"}])["text"] == "late"
    server.close()
