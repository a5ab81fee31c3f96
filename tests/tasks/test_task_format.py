"""Malformed task files: every error names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsi_bench.errors import SuiteError, TaskFormatError
from rsi_bench.tasks.core import load_task_file, load_toml_suite

FIELDS = {
    "schema_version": "1",
    "entry_point": '"foo"',
    "difficulty": "2",
    "tags": '["edge-cases"]',
    "prompt": "'''\ndef foo(x: int) -> int:\n    \"\"\"Double x.\"\"\"\n'''",
    "reference": "'''\ndef foo(x: int) -> int:\n    return 2 * x\n'''",
    "tests": "'''\ndef check(candidate):\n    assert candidate(2) == 4\n'''",
}
EXAMPLE = '\n[[examples]]\ncall = "foo(2)"\nresult = "4"\n'


def render(drop: str = "", examples: str = EXAMPLE, **changes: str) -> str:
    fields = {**FIELDS, **changes}
    lines = [f"{key} = {value}" for key, value in fields.items() if key != drop]
    return "\n".join(lines) + "\n" + examples


def write(tmp_path: Path, text: str, name: str = "foo.toml") -> Path:
    suite = tmp_path / "suite"
    suite.mkdir(exist_ok=True)
    path = suite / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_valid_file_loads(tmp_path: Path) -> None:
    task = load_task_file(write(tmp_path, render()), suite_name="suite")
    assert task.id == "suite/foo" and task.entry_point == "foo"
    assert task.difficulty == 2 and task.tags == ("edge-cases",)
    assert task.examples[0].call == "foo(2)" and task.examples[0].result == "4"
    assert task.prompt.startswith("def foo")  # the newline after ''' is dropped
    assert task.idiomatic_reference == ""  # optional


IDIOMATIC = "'''\nimport operator\n\ndef foo(x: int) -> int:\n    return operator.mul(2, x)\n'''"


def test_an_idiomatic_reference_loads_and_changes_the_hash(tmp_path: Path) -> None:
    plain = load_task_file(write(tmp_path, render()), suite_name="suite")
    task = load_task_file(write(tmp_path, render(idiomatic_reference=IDIOMATIC)),
                          suite_name="suite")
    assert task.idiomatic_reference.startswith("import operator")
    assert task.content_hash() != plain.content_hash()
    assert "operator" not in repr(task.view())


CASES = [
    ("missing entry_point", {"drop": "entry_point"}, "entry_point", "missing"),
    ("missing tests", {"drop": "tests"}, "tests", "missing"),
    ("missing schema_version", {"drop": "schema_version"}, "schema_version", "missing"),
    ("schema_version 2", {"schema_version": "2"}, "schema_version", "unsupported version 2"),
    ("schema_version str", {"schema_version": '"1"'}, "schema_version", "must be an integer"),
    ("entry_point int", {"entry_point": "3"}, "entry_point", "must be a string"),
    ("entry_point not identifier", {"entry_point": '"foo-bar"'}, "entry_point", "identifier"),
    ("prompt list", {"prompt": '["x"]'}, "prompt", "must be a string"),
    ("empty reference", {"reference": '""'}, "reference", "must not be empty"),
    ("prompt without entry point", {"prompt": "'''\ndef bar():\n    pass\n'''"}, "prompt",
     "prompt does not define entry_point 'foo'"),
    ("reference without entry point", {"reference": "'''\nfoo = lambda x: 2 * x\n'''"},
     "reference", "reference does not define entry_point 'foo'"),
    ("reference syntax error", {"reference": "'''\ndef foo(x)\n    return x\n'''"},
     "reference", "does not compile"),
    ("tests without check", {"tests": "'''\ndef test(candidate):\n    pass\n'''"}, "tests",
     "check"),
    ("tests syntax error", {"tests": "'''\ndef check(candidate):\nassert 1\n'''"}, "tests",
     "does not compile"),
    ("difficulty 4", {"difficulty": "4"}, "difficulty", "1 (easy)"),
    ("difficulty str", {"difficulty": '"hard"'}, "difficulty", "1 (easy)"),
    ("unknown tag", {"tags": '["edgecases"]'}, "tags", "unknown tag"),
    ("tags not a list", {"tags": '"edge-cases"'}, "tags", "list of strings"),
    ("unknown field", {"test": '"x"'}, "test", "unknown field"),
    ("idiomatic reference not a string", {"idiomatic_reference": "3"}, "idiomatic_reference",
     "must be a string"),
    ("empty idiomatic reference", {"idiomatic_reference": '" "'}, "idiomatic_reference",
     "must not be empty"),
    ("idiomatic reference without entry point",
     {"idiomatic_reference": "'''\nfoo = lambda x: 2 * x\n'''"}, "idiomatic_reference",
     "idiomatic_reference does not define entry_point 'foo'"),
    ("idiomatic reference syntax error",
     {"idiomatic_reference": "'''\ndef foo(x)\n    return x\n'''"}, "idiomatic_reference",
     "does not compile"),
    ("example without result", {"examples": '\n[[examples]]\ncall = "foo(2)"\n'},
     "examples[0].result", "missing"),
    ("example call not an expression", {"examples": '\n[[examples]]\ncall = "x ="\nresult = "1"\n'},
     "examples[0].call", "does not compile"),
    ("example result not a string", {"examples": '\n[[examples]]\ncall = "foo(2)"\nresult = 4\n'},
     "examples[0].result", "must be a string"),
    ("example extra key", {"examples": '\n[[examples]]\ncall = "f()"\nresult = "1"\nwhy = "x"\n'},
     "examples[0]", "unknown key"),
    ("examples not tables", {"examples": '\nexamples = ["foo(2)"]\n'}, "examples[0]", "table"),
]


@pytest.mark.parametrize(("change", "field", "problem"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_errors_name_file_and_field(
    tmp_path: Path, change: dict[str, str], field: str, problem: str
) -> None:
    path = write(tmp_path, render(**change))
    for load in (lambda: load_task_file(path, suite_name="suite"),
                 lambda: load_toml_suite(path.parent)):
        with pytest.raises(TaskFormatError) as info:
            load()
        message = str(info.value)
        assert message.split(":")[0].endswith("suite/foo.toml")
        assert f"field '{field}'" in message
        assert problem in message
        assert "\n" not in message


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'schema_version = 1\nentry_point = \n')
    with pytest.raises(TaskFormatError) as info:
        load_task_file(path, suite_name="suite")
    assert "foo.toml" in str(info.value) and "invalid TOML" in str(info.value)
    assert "line 2" in str(info.value)


def test_file_names_must_be_snake_case(tmp_path: Path) -> None:
    path = write(tmp_path, render(), name="Foo-Bar.toml")
    with pytest.raises(TaskFormatError, match="Foo-Bar.toml"):
        load_toml_suite(path.parent)


def test_message_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, render(drop="entry_point"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TaskFormatError) as info:
        load_toml_suite(Path("suite"))
    assert str(info.value) == "suite/foo.toml: field 'entry_point': missing"


def test_empty_or_missing_directory_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="no task files"):
        load_toml_suite(tmp_path)
    with pytest.raises(SuiteError, match="not a directory"):
        load_toml_suite(tmp_path / "nope")


def test_suite_is_ordered_by_id(tmp_path: Path) -> None:
    for stem in ("zeta", "alpha", "mid_2"):
        write(tmp_path, render(), name=f"{stem}.toml")
    suite = load_toml_suite(tmp_path / "suite", name="demo")
    assert [task.id for task in suite] == ["demo/alpha", "demo/mid_2", "demo/zeta"]
