"""Infrastructure outcomes: what counts as one, bounded retries with backoff, and the one line
a stopped run ends with."""

from __future__ import annotations

from typing import Any

import pytest

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.infra import (
    EVENT,
    STOP_EVENT,
    InfraFailure,
    InfraRetry,
    RunStopped,
    host_cause,
    infra_counts,
    model_cause,
)
from rsi_bench.judge.judge import JudgeError, JudgeStartError
from rsi_bench.models.base import (
    BadRequest,
    BudgetExceeded,
    LocalModelError,
    ModelTimeout,
    ProviderError,
    ReplayMiss,
)
from rsi_bench.sandbox.channel import ChannelError


@pytest.mark.parametrize("error", [
    ProviderError("overloaded", status=529), ProviderError("busy", status=503),
    ProviderError("rate limited", status=429), ProviderError("connection refused"),
    ModelTimeout("read timed out"), LocalModelError("the server died and did not restart"),
])
def test_model_failures_after_retries_are_infra(error: Exception) -> None:
    assert (model_cause(error) or "").startswith("model: ")
    assert host_cause(error) == model_cause(error)


@pytest.mark.parametrize("error", [
    BadRequest("messages must be a list"), BudgetExceeded("solve budget spent"),
    ProviderError("bad request", status=400), ProviderError("too large", status=413),
    ProviderError("unauthorized", status=401), ReplayMiss("ab" * 32, "1 message", "run"),
])
def test_a_callers_own_model_errors_are_not_infra(error: Exception) -> None:
    assert model_cause(error) is None and host_cause(error) is None


def test_host_side_failures_are_infra_and_anything_else_is_not() -> None:
    assert "did not start" in (host_cause(ChannelError("the runner did not connect")) or "")
    assert "did not start" in (host_cause(JudgeStartError("the judge runner did not start"))
                               or "")
    assert host_cause(SandboxUnavailable("docker is not running")) is not None
    assert host_cause(MemoryError()) == "host: out of memory"
    docker = pytest.importorskip("docker")
    assert (host_cause(docker.errors.APIError("500 Server Error")) or "").startswith("docker")
    # a runner that crashed twice on one job may have been crashed by the solution: not infra
    assert host_cause(JudgeError("judging x failed twice")) is None
    assert host_cause(ValueError("a bug")) is None and host_cause(KeyError("k")) is None


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int | None, dict[str, Any]]] = []
        self.slept: list[float] = []

    def record(self, kind: str, generation: int | None, **detail: Any) -> None:
        self.events.append((kind, generation, detail))


def test_an_infra_failure_is_retried_with_backoff_and_recorded() -> None:
    seen = Recorder()
    retry = InfraRetry(seen.record, attempts=4, base_delay=2.0, sleep=seen.slept.append)
    calls = iter([InfraFailure("model: status 503"), ChannelError("no hello"), "done"])

    def job() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert retry.run(job, what="solve", generation=1, task_id="t", sample=0) == "done"
    assert seen.slept == [2.0, 4.0]
    assert [(k, g, d["attempt"], d["retry_in_s"]) for k, g, d in seen.events] == [
        (EVENT, 1, 1, 2.0), (EVENT, 1, 2, 4.0)]
    assert seen.events[0][2]["cause"] == "model: status 503"
    assert "did not start" in seen.events[1][2]["cause"]


def test_a_failure_of_the_agent_is_never_retried() -> None:
    seen = Recorder()
    retry = InfraRetry(seen.record, attempts=4, sleep=seen.slept.append)
    runs = []

    def job() -> None:
        runs.append(1)
        raise ValueError("a bug, not infra")

    with pytest.raises(ValueError):
        retry.run(job, what="solve", generation=0)
    assert runs == [1] and seen.events == [] and seen.slept == []


def test_spent_retries_stop_the_run_with_one_line() -> None:
    seen = Recorder()
    retry = InfraRetry(seen.record, attempts=3, base_delay=1.0, max_delay=1.5,
                       sleep=seen.slept.append)

    def job() -> None:
        raise InfraFailure("model: no answer after retries: connection refused")

    with pytest.raises(RunStopped) as stopped:
        retry.run(job, what="judge", generation=2, task_id="rsi-core/chunk", sample=0)
    line = str(stopped.value)
    assert "\n" not in line and "generation 2 judge" in line and "rsi-core/chunk" in line
    assert "connection refused" in line and "run the same command again" in line
    assert seen.slept == [1.0, 1.5]  # capped; no wait after the last attempt
    kinds = [k for k, _, _ in seen.events]
    assert kinds == [EVENT, EVENT, EVENT, STOP_EVENT]
    assert infra_counts([{"kind": k, "generation": g} for k, g, _ in seen.events]) == {2: 3}


def test_the_cli_turns_a_stopped_run_into_one_line_and_exit_3(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rsi_bench import cli
    from rsi_bench.loop import runner

    def stopped(self: Any) -> None:
        raise RunStopped("run stopped: the generation 0 solve failed 4 times (model: down)")

    monkeypatch.setattr(runner.Loop, "run", stopped)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--model", "simulated", "--limit", "2", "--generations", "0",
                  "--sandbox", "docker", "--run-dir", str(tmp_path / "r"), "--no-report"])
    assert exit_.value.code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("rsi-bench: run stopped: the generation 0 solve failed 4 times "
                       "(model: down)")
    assert not any("Traceback" in line for line in err)
