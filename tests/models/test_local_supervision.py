"""The local model's supervision: a dead server is restarted and the call answered; a server
that keeps dying is one clear error; waiting for a slot is measured. The server here is a
small stdlib process with llama.cpp's command line and API (tests/models/fake_llama_server.py),
killed for real; the same with the real model is in test_local_model.py."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rsi_bench.models.base import Completion, LocalModelError, ModelError, Usage
from rsi_bench.models.local import LocalModel
from rsi_bench.models.local_server import LlamaServer
from rsi_bench.models.local_sizing import Sizing

FAKE = str(Path(__file__).with_name("fake_llama_server.py"))
ASK = [{"role": "user", "content": "write add"}]


class FakeLlama(LlamaServer):
    def command(self) -> list[str]:
        return [sys.executable, FAKE, "--port", str(self.port)]


class Supervised(LocalModel):
    server_class = FakeLlama


def make(tmp_path: Path, slots: int = 1, **kwargs: Any) -> tuple[Supervised, list[float]]:
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    sleeps: list[float] = []
    model = Supervised(str(gguf), sizing=Sizing(cpus=1.0, threads=1, slots=slots, why="test"),
                       sleep=sleeps.append, restart_delay=0.5, **kwargs)
    return model, sleeps


def kill(model: LocalModel) -> int:
    assert model.server.proc is not None
    pid = model.server.proc.pid
    os.kill(pid, signal.SIGKILL)
    model.server.proc.wait()
    return pid


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 120  # only against a hang: no verdict depends on it
    while not path.exists():
        assert time.monotonic() < deadline, f"the fake server never created {path.name}"
        time.sleep(0.02)


def test_a_killed_server_is_restarted_and_the_next_call_gets_the_same_answer(
        tmp_path: Path) -> None:
    model, sleeps = make(tmp_path)
    try:
        first = model.complete(ASK, temperature=0)
        old = kill(model)
        again = model.complete(ASK, temperature=0)
        assert again.text == first.text == "echo: write add"
        assert model.restarts == 1 and model.server.proc is not None
        assert model.server.proc.pid != old and sleeps == [0.5]
        assert again.tokens_per_s == 30.0  # llama.cpp's own timing, carried through
        assert again.queue_s is not None and again.queue_s >= 0
    finally:
        model.close()


def test_a_server_killed_mid_call_is_restarted_and_the_call_answered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_HOLD", str(tmp_path))
    model, _ = make(tmp_path)
    try:
        result: list[Completion] = []
        call = threading.Thread(target=lambda: result.append(model.complete(ASK)))
        call.start()
        wait_for(tmp_path / "held")  # the request is inside the server now
        kill(model)
        call.join()
        assert [c.text for c in result] == ["echo: write add"] and model.restarts == 1
        # the restart was part of the wait before the answered request was sent
        assert result[0].queue_s is not None and result[0].queue_s > 0
    finally:
        model.close()


def test_a_server_that_keeps_dying_is_one_error_naming_its_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_DIE_ON_CALL", "1")
    model, sleeps = make(tmp_path, max_restarts=2)
    try:
        with pytest.raises(LocalModelError) as info:
            model.complete(ASK)
        message = str(info.value)
        assert "died 3 times" in message and "exit status 3" in message
        assert "out of memory in slot 0" in message and "\n" not in message
        assert sleeps == [0.5, 1.0] and model.restarts == 2  # bounded, with backoff
        with pytest.raises(LocalModelError, match="not restarting it again"):
            model.complete(ASK)  # and it stays given up
    finally:
        model.close()


def test_an_error_from_a_live_server_is_not_a_death(tmp_path: Path) -> None:
    model, sleeps = make(tmp_path)
    try:
        with pytest.raises(ModelError, match="HTTP 400"):
            model.complete([{"role": "user", "content": "bad"}])
        assert model.restarts == 0 and sleeps == [] and model.server.alive()
    finally:
        model.close()


def test_a_closed_model_is_not_restarted(tmp_path: Path) -> None:
    model, _ = make(tmp_path)
    model.close()
    with pytest.raises(LocalModelError, match="closed"):
        model.complete(ASK)
    assert model.restarts == 0


def test_waiting_for_a_slot_is_queue_time(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_HOLD", str(tmp_path))
    model, _ = make(tmp_path, slots=1)
    try:
        done: dict[str, Completion] = {}
        started: dict[str, float] = {}

        def ask(name: str) -> None:
            started[name] = time.monotonic()
            done[name] = model.complete([{"role": "user", "content": name}])

        first = threading.Thread(target=ask, args=("first",))
        first.start()
        wait_for(tmp_path / "held")  # the first call holds the only slot
        second = threading.Thread(target=ask, args=("second",))
        second.start()
        while "second" not in started:
            time.sleep(0.01)
        time.sleep(0.3)
        released = time.monotonic()
        (tmp_path / "release").touch()
        first.join()
        second.join()
        # The second call cannot have been sent before the first answered, which was after
        # the release: a lower bound that no machine load can break.
        assert done["second"].queue_s is not None
        assert done["second"].queue_s >= released - started["second"]
        assert done["second"].latency_s >= done["second"].queue_s
        assert done["second"].text == "echo: second"
    finally:
        model.close()


def test_the_new_fields_leave_other_backends_records_unchanged() -> None:
    plain = Completion("x", "stop", Usage(1, 2), 0.0, 0.5, "openai/gpt-4o")
    assert set(plain.to_dict()) == {"text", "stop_reason", "usage", "cost_usd", "latency_s",
                                    "model_id"}
    assert Completion.from_dict(plain.to_dict()) == plain
    timed = Completion("x", "stop", Usage(1, 2), 0.0, 0.5, "local/m", queue_s=0.25,
                       tokens_per_s=12.5)
    assert Completion.from_dict(timed.to_dict()) == timed
