"""agent.toml: the seed's parses; every malformed one is refused with the file and field named."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_world import SEED

from rsi_bench.agents import AgentError, load_manifest
from rsi_bench.errors import RsiBenchError


def write(tmp_path: Path, toml: str, *, module: bool = True) -> Path:
    (tmp_path / "agent.toml").write_text(toml)
    if module:
        (tmp_path / "agent.py").write_text("def solve(t, m): return ''\n")
    return tmp_path


GOOD = 'schema_version = 1\nname = "x"\nentry = "agent"\nmutable = ["agent.py", "prompts/*"]\n'


def test_seed_manifest() -> None:
    manifest = load_manifest(SEED)
    assert (manifest.name, manifest.entry, manifest.schema_version) == ("seed", "agent", 1)
    assert manifest.is_mutable("agent.py") and manifest.is_mutable("prompts/solve.md")
    assert not manifest.is_mutable("agent.toml")


def test_missing_agent_toml(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="no agent.toml \\(an agent directory needs one\\)"):
        load_manifest(tmp_path)
    assert issubclass(AgentError, RsiBenchError)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="not a directory"):
        load_manifest(tmp_path / "nope")


@pytest.mark.parametrize(("toml", "field", "problem"), [
    ("name = \n", None, "not valid TOML"),
    (GOOD.replace("schema_version = 1\n", ""), "schema_version", "is missing"),
    (GOOD.replace("schema_version = 1", "schema_version = 2"), "schema_version", "reads 1"),
    (GOOD.replace("schema_version = 1", "schema_version = 'one'"), "schema_version", "'one'"),
    (GOOD.replace('name = "x"\n', ""), "name", "is missing"),
    (GOOD.replace('name = "x"', "name = 3"), "name", "non-empty string"),
    (GOOD.replace('entry = "agent"', 'entry = "my-agent"'), "entry", "module name"),
    (GOOD.replace('entry = "agent"', 'entry = "other"'), "entry", "no other.py"),
    (GOOD.replace('mutable = ["agent.py", "prompts/*"]', 'mutable = "agent.py"'), "mutable",
     "list of non-empty strings"),
    (GOOD.replace('"prompts/*"', '"../grader/*"'), "mutable", "relative to the agent"),
    (GOOD.replace('"prompts/*"', '"/etc/*"'), "mutable", "relative to the agent"),
    (GOOD.replace('mutable = ["agent.py", "prompts/*"]\n', ""), "mutable", "is missing"),
    (GOOD + 'mutabel = ["x"]\n', "mutabel", "is not known"),
])
def test_bad_manifest_names_file_and_field(tmp_path: Path, toml: str, field: str | None,
                                           problem: str) -> None:
    write(tmp_path, toml)
    with pytest.raises(AgentError) as info:
        load_manifest(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'agent.toml'}: ")
    assert problem in message
    if field:
        assert f"field {field!r}" in message


def test_package_entry(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('entry = "agent"', 'entry = "pkg.main"'), module=False)
    (tmp_path / "pkg" / "main").mkdir(parents=True)
    (tmp_path / "pkg" / "main" / "__init__.py").write_text("")
    assert load_manifest(tmp_path).entry == "pkg.main"
