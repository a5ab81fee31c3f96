"""``rsi-bench export inspect``: a run's generations as Inspect AI logs that Inspect reads back.

The run directories here are written through the store's own API (Store, RunStore,
record_call), the way the loop writes them; no loop, model or sandbox runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rsi_bench import __version__
from rsi_bench.cli import cli
from rsi_bench.loop.config import RunConfig
from rsi_bench.store import Store
from rsi_bench.store.model_calls import CallRecord, record_call
from rsi_bench.store.runs import RunStore
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.model import Task

# Outside CI a missing extra skips these tests. CI installs rsi-bench[inspect]: with CI=true
# they always run, so a missing extra fails them instead of hiding them.
_IN_CI = os.environ.get("CI", "").lower() == "true"
needs_inspect = pytest.mark.skipif(not _IN_CI and importlib.util.find_spec("inspect_ai") is None,
                                   reason="needs rsi-bench[inspect]")

SPLITS = ["dev", "heldout", "dev", "heldout", "dev", "heldout"]


@dataclass
class Written:
    """What a test wrote into a run, to compare the export against."""

    run_dir: Path
    config: RunConfig
    tasks: list[Task]
    verdicts: dict[int, dict[tuple[str, int], str]] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)

    def accuracy(self, generation: int) -> dict[str, float]:
        per: dict[str, list[int]] = {}
        for (task_id, _), status in self.verdicts[generation].items():
            for key in (self.splits[task_id], "all"):
                per.setdefault(key, []).append(status == "pass")
        return {k: sum(v) / len(v) for k, v in per.items()}


def _completion(text: str, tokens: int = 20) -> dict[str, Any]:
    return {"text": text, "stop_reason": "end_turn", "cost_usd": None, "latency_s": 0.25,
            "model_id": "simulated/v1",
            "usage": {"input_tokens": 100, "output_tokens": tokens, "cache_read_tokens": 0,
                      "cache_write_tokens": 0}}


def _call(store: Store, generation: int, task: Task, text: str | None, *, role: str = "solve",
          created_at: float | None = None) -> None:
    messages = [{"role": "system", "content": "Write the function."},
                {"role": "user", "content": task.prompt}]
    record_call(store, CallRecord(
        role=role, model="simulated/v1", request_hash=hashlib.sha256(
            f"{generation}{task.id}{text}{role}".encode()).hexdigest(),
        request={"model": "simulated/v1", "messages": messages,
                 "params": {"seed": 11, "max_tokens": 256}},
        status="ok" if text is not None else "error", generation=generation, task_id=task.id,
        completion=_completion(text) if text is not None else None,
        error_type=None if text is not None else "ProviderError",
        error_message=None if text is not None else "503 overloaded",
        **({"created_at": created_at} if created_at is not None else {})))


def make_run(run_dir: Path, *, samples: int = 1, close: bool = True) -> tuple[Written, Store]:
    """A run of three generations: 0 and 1 evaluated, 2 invalid, and model calls for each."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = RunConfig(suite="rsi-core", limit=6, model="simulated/v1", generations=2,
                       samples=samples, seed=3)
    tasks = list(load_suite("rsi-core").tasks[:6])
    splits = dict(zip([t.id for t in tasks], SPLITS, strict=True))
    w = Written(run_dir, config, tasks, splits=splits)
    store = Store(run_dir / "run.sqlite")
    runs = RunStore(store)
    runs.set_config({"run": config.to_dict(), "fingerprint": config.fingerprint()})
    for g, passing in ((0, {0, 1, 2}), (1, {0, 1, 2, 3, 5})):
        if g == 1:  # the child's smoke validation ran before its generation row was written
            _call(store, 1, tasks[0], "validation answer", created_at=time.time() - 5)
            _call(store, 1, tasks[0], None, role="improve")
        runs.add_generation(g, None if g == 0 else 0, "seed" if g == 0 else "self",
                            f"{g}" * 40, [], "created")
        w.verdicts[g] = {}
        for i, task in enumerate(tasks):
            if g == 0 and i == 0:
                _call(store, g, task, None)  # a failed call, then the answer
            for s in range(samples):
                _call(store, g, task, task.reference + f"# {g} {s}\n")
                status = "pass" if i in passing else "fail"
                runs.add_result(g, task.id, s, w.splits[task.id], status, "ok",
                                "" if status == "pass" else "AssertionError in check",
                                task.reference, 1.5, 0.5, {"image_id": "sha256:test"})
                w.verdicts[g][(task.id, s)] = status
        runs.mark_evaluated(g)
    runs.add_generation(2, 1, "self", None, [{"kind": "outside_mutable"}], "invalid",
                        "the child does not import")
    if close:
        store.close()
    return w, store


def read_logs(out: Path) -> dict[int, Any]:
    from inspect_ai.log import read_eval_log

    logs = [read_eval_log(str(p), resolve_attachments=True)
            for p in sorted(out.glob("*.eval"))]
    return {log.eval.metadata["generation"]: log for log in logs}


def export(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["export", "inspect", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@needs_inspect
def test_every_generation_reads_back_as_written(tmp_path: Path) -> None:
    w, _ = make_run(tmp_path / "run")
    code, stdout, _ = export(str(w.run_dir))
    assert code == 0, stdout
    logs = read_logs(w.run_dir / "inspect-logs")
    assert sorted(logs) == [0, 1, 2]
    for g in (0, 1):
        log = logs[g]
        assert log.status == "success"
        assert log.eval.model == "simulated/v1"
        assert log.eval.task == f"rsi-core-gen{g}"
        assert len(log.samples) == len(w.verdicts[g]) == log.results.total_samples == 6
        scores = {(s.id, s.epoch - 1): s.scores["judge"].value for s in log.samples}
        assert scores == {k: "C" if v == "pass" else "I" for k, v in w.verdicts[g].items()}
        metrics = {k: m.value for k, m in log.results.scores[0].metrics.items()}
        assert metrics == pytest.approx(w.accuracy(g))
        assert log.results.headline.metric == "heldout"
        meta = log.eval.metadata
        assert meta["run_dir"] == str(w.run_dir.resolve())
        assert (meta["seed"], meta["generation"], meta["parent"]) == (3, g, None if g == 0 else 0)
        assert meta["improver"] == ("seed" if g == 0 else "self")
        assert meta["rsi_bench_version"] == __version__
        assert meta["config_fingerprint"] == w.config.fingerprint()
        assert "simulated" in meta["note"] and "simulated-model" in log.eval.tags
        by_id = {t.id: t for t in w.tasks}
        for sample in log.samples:
            task = by_id[sample.id]
            assert sample.input == task.prompt and task.tests not in sample.input
            assert task.idiomatic_reference.strip() not in sample.model_dump_json()
            assert sample.target == ""
            assert sample.metadata["split"] == w.splits[task.id]
            assert sample.metadata["kind"] == task.kind
            assert sample.output.completion == task.reference
            assert sample.scores["judge"].metadata["status"] == w.verdicts[g][(task.id, 0)]
    assert logs[2].status == "error" and "does not import" in logs[2].error.message
    assert logs[2].samples in (None, []) and logs[2].eval.metadata["audit"]


@needs_inspect
def test_model_calls_become_model_events(tmp_path: Path) -> None:
    w, _ = make_run(tmp_path / "run")
    assert export(str(w.run_dir))[0] == 0
    logs = read_logs(w.run_dir / "inspect-logs")
    first = w.tasks[0]
    sample = next(s for s in logs[0].samples if s.id == first.id)
    models = [e for e in sample.events if e.event == "model"]
    assert [e.error is not None for e in models] == [True, False]  # the failure, then the answer
    assert models[1].output.completion == first.reference + "# 0 0\n"
    assert models[1].input[-1].text == first.prompt and models[1].config.seed == 11
    assert [m.role for m in sample.messages] == ["system", "user", "assistant"]
    assert sample.messages[-1].text == first.reference + "# 0 0\n"
    assert sample.model_usage["simulated/v1"].output_tokens == 20
    assert [e.event for e in sample.events][-1] == "score"
    # generation 1: the validation smoke call and the improve call are not a sample's
    child = next(s for s in logs[1].samples if s.id == first.id)
    assert len([e for e in child.events if e.event == "model"]) == 1
    assert logs[1].eval.metadata["validation_usage"]["calls"] == 1
    assert logs[1].eval.metadata["improve_usage"] == {"calls": 1, "answered": 0, "tokens": 0,
                                                      "cost_usd": 0.0}
    assert logs[1].stats.model_usage["simulated/v1"].output_tokens == 6 * 20


@needs_inspect
def test_samples_map_to_epochs_and_json_format(tmp_path: Path) -> None:
    w, _ = make_run(tmp_path / "run", samples=2)
    out = tmp_path / "logs"
    code, _, _ = export(str(w.run_dir), "--out", str(out), "--format", "json")
    assert code == 0
    from inspect_ai.log import read_eval_log

    logs = [read_eval_log(str(p)) for p in sorted(out.glob("*.json"))]
    log = next(x for x in logs if x.eval.metadata["generation"] == 1)
    assert log.eval.config.epochs == 2 and len(log.samples) == 12
    assert sorted({s.epoch for s in log.samples}) == [1, 2]
    assert {k: m.value for k, m in log.results.scores[0].metrics.items()} == pytest.approx(
        w.accuracy(1))
    assert "model_calls_note" in log.samples[0].metadata  # calls are per task, not per sample


@needs_inspect
def test_partial_run_is_exported_without_touching_it(tmp_path: Path) -> None:
    w, store = make_run(tmp_path / "run", close=False)
    runs = RunStore(store)
    runs.add_generation(3, 1, "self", "3" * 40, [], "created")
    runs.add_result(3, w.tasks[0].id, 0, "dev", "pass", "ok", "", "x = 1", 1.0, 1.0, {})
    try:
        assert export(str(w.run_dir))[0] == 0  # the writer is still open
    finally:
        store.close()
    logs = read_logs(w.run_dir / "inspect-logs")
    assert logs[3].status == "started" and len(logs[3].samples) == 1
    assert logs[0].status == "success"
    before = hashlib.sha256((w.run_dir / "run.sqlite").read_bytes()).hexdigest()
    assert export(str(w.run_dir))[0] == 0  # re-export: same names, overwritten
    assert hashlib.sha256((w.run_dir / "run.sqlite").read_bytes()).hexdigest() == before
    assert sorted(p.name for p in w.run_dir.glob("run.sqlite*")) == ["run.sqlite"]  # no side files
    assert len(list((w.run_dir / "inspect-logs").glob("*.eval"))) == 4


@needs_inspect
def test_sealed_split_and_sparse_records(tmp_path: Path) -> None:
    """A sealed split still being scored leaves its generations "started"; a call recorded
    without messages or text (as synthetic runs write them) still exports."""
    w, store = make_run(tmp_path / "run", close=False)
    runs = RunStore(store)
    runs.add_result(0, "rsi-core/sealed_task", 0, "sealed", "pass", "ok", "", None, 0, 0, {})
    record_call(store, CallRecord(role="solve", model="simulated/v1", request_hash="x",
                                  request={"synthetic": True}, status="ok", generation=0,
                                  task_id="rsi-core/sealed_task",
                                  completion={"model_id": "simulated/v1", "usage": {}}))
    try:
        assert export(str(w.run_dir))[0] == 0
        log = read_logs(w.run_dir / "inspect-logs")[0]
        assert log.status == "started"
        sealed = next(s for s in log.samples if s.id == "rsi-core/sealed_task")
        assert "not available" in sealed.input and sealed.scores["judge"].value == "C"
        assert log.results.scores[0].metrics["sealed"].value == 1.0
        runs.event("sealed", 0)
        assert export(str(w.run_dir))[0] == 0
        assert read_logs(w.run_dir / "inspect-logs")[0].status == "success"
    finally:
        store.close()


@needs_inspect
def test_multi_seed_run_gets_a_directory_per_seed(tmp_path: Path) -> None:
    make_run(tmp_path / "multi" / "seed-1")
    make_run(tmp_path / "multi" / "seed-2")
    code, stdout, _ = export(str(tmp_path / "multi"))
    assert code == 0 and "wrote 6 log(s)" in stdout
    for seed in ("seed-1", "seed-2"):
        assert len(read_logs(tmp_path / "multi" / "inspect-logs" / seed)) == 3


def one_line_error(*args: str) -> str:
    code, stdout, stderr = export(*args)
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in stderr, (code, stdout, stderr)
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert "no such run directory" in one_line_error(str(tmp_path / "missing"))
    assert "not a run directory" in one_line_error(str(tmp_path))
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "run.sqlite").write_bytes(b"not a database at all" * 100)
    assert "cannot be read as an rsi-bench run store" in one_line_error(
        str(tmp_path / "garbage"))
    (tmp_path / "other").mkdir()
    with sqlite3.connect(tmp_path / "other" / "run.sqlite") as db:
        db.execute("CREATE TABLE unrelated (x INTEGER)")
    assert "has no run_config" in one_line_error(str(tmp_path / "other"))
    (tmp_path / "empty").mkdir()
    Store(tmp_path / "empty" / "run.sqlite").close()  # tables, but the run never started
    assert "no run configuration" in one_line_error(str(tmp_path / "empty"))


def test_missing_inspect_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w, _ = make_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # import inspect_ai -> ImportError
    assert "rsi-bench[inspect]" in one_line_error(str(w.run_dir))
    assert not (w.run_dir / "inspect-logs").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@needs_inspect
def test_inspect_view_serves_the_exported_logs(tmp_path: Path) -> None:
    w, _ = make_run(tmp_path / "run")
    out = tmp_path / "logs"
    assert export(str(w.run_dir), "--out", str(out))[0] == 0
    port = _free_port()
    # a private data dir: `inspect view` stops any viewer that its data dir says owns the port
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    log = (tmp_path / "viewer.log").open("w")
    viewer = subprocess.Popen(
        [sys.executable, "-m", "inspect_ai", "view", "start", "--log-dir", str(out),
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        body = ""
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and viewer.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/logs", timeout=2) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert body, f"inspect view did not answer: {(tmp_path / 'viewer.log').read_text()}"
        for path in out.glob("*.eval"):
            assert path.name in body
        assert "rsi-core-gen0" in body and "rsi-core-gen2" in body
    finally:
        viewer.terminate()
        try:
            viewer.wait(10)
        except subprocess.TimeoutExpired:
            viewer.kill()
            viewer.wait()
        log.close()
