"""``models list`` and ``models ping``: answers, and one clear line for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from provider_fakes import FakeProvider, Reply, openai_chat

from rsi_bench.models.cli import models


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(models, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def one_line_error(*args: str) -> str:
    code, output = run(*args)
    lines = [line for line in output.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_list_shows_providers_local_models_and_prices() -> None:
    code, output = run("list")
    assert code == 0
    for needle in ("anthropic", "openai", "local", "replay", "simulated",
                   "qwen2.5-coder-0.5b", "anthropic/claude-sonnet-4-5", "as published 2025-11"):
        assert needle in output


def test_ping_simulated_and_a_compatible_server() -> None:
    code, output = run("ping", "simulated")
    assert code == 0 and output.startswith("simulated/v1: ")
    with FakeProvider(Reply(body=openai_chat("pong", model="qwen"))) as fake:
        code, output = run("ping", "openai/qwen", "--base-url", fake.url + "/v1")
    assert code == 0 and "openai/qwen: 'pong'" in output and "cost unknown" in output
    assert fake.seen[0].body["messages"][0]["content"].startswith("Reply with")


def test_unknown_provider_lists_the_known_ones() -> None:
    line = one_line_error("ping", "gemini/pro")
    assert "unknown model provider 'gemini'" in line
    assert "anthropic, openai, local, replay, simulated" in line


@pytest.mark.parametrize("spec,env_var", [("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
                                          ("openai/gpt-4o", "OPENAI_API_KEY")])
def test_missing_key_names_the_variable(spec: str, env_var: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert env_var in one_line_error("ping", spec)


@pytest.mark.parametrize("url,problem", [("localhost:8000/v1", "must start with http"),
                                         ("http://", "has no host"),
                                         ("http://127.0.0.1:99999/v1", "port"),
                                         ("http://a b/v1", "spaces"),
                                         ("http://999.1.1.1/v1", "not a valid address")])
def test_malformed_base_url(url: str, problem: str) -> None:
    line = one_line_error("ping", "openai/gpt-4o", "--base-url", url)
    assert "malformed" in line and problem in line


def test_replay_file_that_does_not_exist(tmp_path: Path) -> None:
    line = one_line_error("ping", f"replay/{tmp_path / 'missing.jsonl'}")
    assert "does not exist" in line and "missing.jsonl" in line
