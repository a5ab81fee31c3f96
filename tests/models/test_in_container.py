"""Agent code in a Docker container (no network) reaches models only through the host broker,
and nothing secret crosses into the container."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from provider_fakes import FakeProvider, Reply, openai_chat
from sandboxes import require_backend

import rsi_bench.agent_client as agent_client
from rsi_bench.broker import Broker, BrokerServer, Budget
from rsi_bench.models import get_model
from rsi_bench.models.base import CallContext
from rsi_bench.sandbox import Sandbox, SandboxSpec, get_backend
from rsi_bench.store import Store

pytestmark = pytest.mark.docker

SECRET_KEY = "sk-test-" + "Zq9" * 12  # what a leak would look like
CLIENT_DIR = str(Path(agent_client.__file__).resolve().parent)

CALL = """
import json, sys, time
sys.path.insert(0, "/opt/rsi-bench/agent_client")
from model_client import ModelClient, BudgetExceeded
client = ModelClient()
out = []
for i in range(3):
    try:
        answer = client.complete([{"role": "user", "content": "ping %d" % i}], max_tokens=16)
        out.append({"text": answer["text"], "at": time.time()})
    except BudgetExceeded as exc:
        out.append({"refused": str(exc)})
print(json.dumps(out))
"""

# Everything a hostile agent can look at from inside: its environment, every process's
# environment and command line, every readable file, and its own traffic with the broker.
HUNT = """
import json, os, socket, sys
PATTERNS = json.loads(sys.stdin.read())  # on stdin: in no file and no command line
sys.path.insert(0, "/opt/rsi-bench/agent_client")
import model_client
seen = []
class Tap(socket.socket):
    def recv(self, n, *a):
        data = super().recv(n, *a)
        seen.append(data)
        return data
    def sendall(self, data, *a):
        seen.append(bytes(data))
        return super().sendall(data, *a)
socket.socket = Tap
model_client.ModelClient().complete([{"role": "user", "content": "hello"}], max_tokens=8)
blobs = [repr(dict(os.environ)).encode()] + seen
for pid in os.listdir("/proc"):
    for part in ("environ", "cmdline"):
        try:
            blobs.append(open("/proc/%s/%s" % (pid, part), "rb").read())
        except OSError:
            pass
readable = 0
def read(path):
    global readable
    try:
        with open(path, "rb") as f:
            blobs.append(f.read(1 << 20)); readable += 1
    except OSError:
        pass
for top in ("/etc", "/opt", "/run", "/scratch", "/tmp", "/root", "/home", "/var"):
    for dirpath, dirs, files in os.walk(top):
        for name in files:
            read(os.path.join(dirpath, name))
for name in os.listdir("/proc/self"):  # top-level files only: fd/ would block on our own pipes
    if name not in ("mem", "pagemap", "clear_refs") and os.path.isfile("/proc/self/" + name):
        read("/proc/self/" + name)
hits = {p: [b[max(0, b.find(p.encode()) - 20):b.find(p.encode()) + 40].decode("latin-1")
            for b in blobs if p.encode() in b] for p in PATTERNS}
print(json.dumps({"hits": hits, "readable": readable, "blobs": len(blobs)}))
"""


@pytest.fixture
def box_with_broker(tmp_path: Path) -> Iterator[tuple[Sandbox, Store, str]]:
    require_backend("docker")
    socket_dir = tempfile.mkdtemp(prefix="rsi-bench-broker-")
    os.chmod(socket_dir, 0o755)
    store = Store(tmp_path / "run.sqlite")
    with FakeProvider(Reply(body=openai_chat("pong"))) as fake:
        os.environ["OPENAI_API_KEY"] = SECRET_KEY  # the host has a key; the container must not
        try:
            model = get_model("openai/gpt-4o", base_url=fake.url + "/v1",
                              api_key_env="OPENAI_API_KEY")
            broker = Broker(model, store, {"solve": Budget(calls=2)})
            server = BrokerServer(broker, Path(socket_dir) / "broker.sock", mode=0o666,
                                  identity=CallContext("solve", "t/1", 0))
            box = get_backend("docker").create(SandboxSpec(
                run_label="pytest", mounts={socket_dir: "/run/rsi-bench", CLIENT_DIR:
                                            "/opt/rsi-bench/agent_client"}))
        finally:
            del os.environ["OPENAI_API_KEY"]
        try:
            with server:
                yield box, store, str(tmp_path / "run.sqlite")
        finally:
            box.close()
            store.close()
            os.rmdir(socket_dir) if not os.listdir(socket_dir) else None


def test_container_gets_completions_through_the_broker_only(
        box_with_broker: tuple[Sandbox, Store, str]) -> None:
    box, _store, db_path = box_with_broker
    result = box.exec(["python3", "-S", "-c", CALL], timeout=60)
    assert result.exit_code == 0, result.stderr.decode()
    answers = json.loads(result.stdout)
    assert [a.get("text") for a in answers[:2]] == ["pong", "pong"]
    assert "budget" in answers[2]["refused"].lower()  # the third call is over the budget
    # Every call (the refusal too) was committed before its reply reached the container.
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT role, task_id, generation, status FROM model_calls "
                          "ORDER BY id").fetchall()
    assert [r[3] for r in rows][:2] == ["ok", "ok"] and len(rows) == 3
    assert {(r[0], r[1], r[2]) for r in rows} == {("solve", "t/1", 0)}


def test_no_secret_reaches_the_container(box_with_broker: tuple[Sandbox, Store, str]) -> None:
    box, _store, db_path = box_with_broker
    patterns = ["pong", "Zq9Zq9", "sk-test", "Bearer", "OPENAI_API_KEY"]
    result = box.exec(["python3", "-S", "-c", HUNT], input=json.dumps(patterns).encode(),
                      timeout=120)
    assert result.exit_code == 0, result.stderr.decode()[-500:]
    found = json.loads(result.stdout)
    assert found["readable"] > 10  # the hunt really read files
    assert found["hits"]["pong"]  # and saw the broker's reply on its own socket
    assert {p: found["hits"][p] for p in patterns[1:]} == {p: [] for p in patterns[1:]}
    with sqlite3.connect(db_path) as db:  # nor is the key in what the broker recorded
        dump = "\n".join(str(row) for row in db.execute("SELECT * FROM model_calls"))
    assert "Zq9Zq9" not in dump
