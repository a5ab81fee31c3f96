"""The broker behind its unix socket, reached by the stdlib-only agent client."""

from __future__ import annotations

import ast
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
    client, _, path = served
    for i in range(40):
        client.complete([{"role": "user", "content": f"spend {i}"}])
    with pytest.raises(BudgetExceeded, match="call budget 40 is used up") as info:
        client.complete([{"role": "user", "content": "one more"}])
    assert info.value.type == "BudgetExceeded"
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
