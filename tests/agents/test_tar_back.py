"""What runs is what is attested: an improve's workspace comes back only as files the lineage
records, read header by header under caps; an agent directory holding anything else is never
mounted. Hostile archives are built here with tarfile and GNU tar; hostile improves run in
every isolating sandbox."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from agent_world import RUN_LABEL, World, make_agent

from rsi_bench.agents import run_improve, run_solve
from rsi_bench.agents.tarback import Caps, bytes_reader, unpack_workspace

GIT_HOOK = "prompts/.git/hooks/x.py"


def tar_of(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.GNU_FORMAT
           ) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def written(dest: Path) -> list[str]:
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*"))


def test_paths_the_lineage_would_not_record_are_refused(tmp_path: Path) -> None:
    names = [GIT_HOOK, "prompts/.GIT/config", ".gitattributes", "sub/.gitignore",
             "__pycache__/agent.cpython-311.pyc", "loose.pyc", "tab\tname", "back\\slash",
             "zero\u200bwidth", "/".join("d" * 17), "Agent.py"]
    members = [(entry("./"), b""), (entry("./agent.py"), b"ok"), (entry("./empty/",
               tarfile.DIRTYPE), b"")] + [(entry(f"./{n}"), b"x") for n in names]
    members.append((entry(b"./bad\xff".decode("utf-8", "surrogateescape")), b"x"))
    dest = tmp_path / "child"
    dest.mkdir()
    refused = {f.path: f.detail for f in unpack_workspace(tar_of(members), dest)}
    assert written(dest) == ["agent.py"]  # and no empty directory: git would not record it
    for name in (GIT_HOOK, "prompts/.GIT/config", ".gitattributes", "sub/.gitignore"):
        assert "git metadata" in refused[name], name
    assert "bytecode cache" in refused["__pycache__/agent.cpython-311.pyc"]
    assert "bytecode cache" in refused["loose.pyc"]
    for name in ("tab\tname", "back\\slash", "zero\u200bwidth"):
        assert "control, format or backslash" in refused[name], name
    assert "directories deep" in refused["/".join("d" * 17)]
    assert refused["Agent.py"] == "differs from 'agent.py' only in case or Unicode normalisation"
    assert refused["bad\udcff"] == "the name is not valid UTF-8"


def test_caps_end_the_stream_at_the_header(tmp_path: Path) -> None:
    """A member's header decides: the content behind a refused header is never read."""
    caps = Caps(files=3, dirs=2, entries=6, file_bytes=100, total_bytes=150)

    def refusal(members: list[tuple[tarfile.TarInfo, bytes]]) -> tuple[str, str, int]:
        dest = tmp_path / f"d{len(list(tmp_path.iterdir()))}"
        dest.mkdir()
        reader = bytes_reader(tar_of(members), caps)
        found = unpack_workspace(reader, dest, caps)
        return found[-1].path, found[-1].detail, reader.total

    dirs = [(entry(f"./d{i}/", tarfile.DIRTYPE), b"") for i in range(10)]
    assert refusal(dirs)[:2] == ("d2", "more than 2 directories in the workspace")
    many = [(entry(f"./f{i}"), b"") for i in range(10)]
    assert refusal(many)[:2] == ("f3", "more than 3 files")
    links = [(entry(f"./l{i}", tarfile.SYMTYPE), b"") for i in range(5)] + many
    assert refusal(links)[1] == "more than 6 entries in the workspace"
    big = [(entry("./a"), b"x" * 100), (entry("./big"), b"y" * 100_000)]
    path, detail, read = refusal(big)
    assert (path, detail) == ("big", "100000 bytes, over the 100-byte cap (refused from its "
                                     "header)")
    assert read <= tarfile.RECORDSIZE  # one record of the stream: its content was never read
    total = [(entry("./a"), b"x" * 100), (entry("./b"), b"y" * 60)]
    assert refusal(total)[:2] == ("b", "the workspace's files exceed 150 bytes")
    # a long-name header that claims 1 GiB: the stream is cut off at the caps' byte budget
    longname = entry("././@LongLink", tarfile.GNUTYPE_LONGNAME)
    longname.size = 1 << 30
    reader = bytes_reader(longname.tobuf(tarfile.GNU_FORMAT) + b"a" * 200_000, caps)
    found = unpack_workspace(reader, tmp_path / "long", caps)
    assert [f.detail for f in found] == [
        f"the workspace archive is longer than {caps.stream_bytes} bytes"]
    assert reader.total <= caps.stream_bytes + tarfile.RECORDSIZE


def test_a_ten_gigabyte_header_is_refused_without_its_content(tmp_path: Path) -> None:
    """Only the header of a 10 GB member exists here: the refusal cannot have read more."""
    info = entry("./huge.bin")
    info.size = 10 << 30
    header = info.tobuf(tarfile.GNU_FORMAT)  # base-256 size field, as GNU tar writes it
    reader = bytes_reader(header + b"\0" * tarfile.RECORDSIZE, Caps())
    found = unpack_workspace(reader, tmp_path, Caps())
    assert [(f.path, f.detail) for f in found] == [
        ("huge.bin", f"{10 << 30} bytes, over the {1 << 20}-byte cap (refused from its header)")]


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_sparse_members_are_refused(tmp_path: Path, fmt: str) -> None:
    """GNU tar's own sparse encodings (the old GNU header and PAX 1.0), whatever the size."""
    src = tmp_path / "ws"
    src.mkdir()
    (src / "agent.toml").write_text("x")
    with (src / "holes.bin").open("wb") as f:
        f.truncate(64 << 10)  # a small sparse file: refused for being sparse, not for its size
    archive = subprocess.run(["tar", f"--format={fmt}", "--sparse", "-c", "-C", str(src),
                              "holes.bin", "agent.toml"], capture_output=True, check=True).stdout
    dest = tmp_path / "child"
    dest.mkdir()
    found = unpack_workspace(archive, dest)
    assert [(f.path, f.detail) for f in found] == [
        ("holes.bin", "a sparse file (refused from its header)")]
    assert written(dest) == []


# --------------------------------------------------------------------- in real sandboxes
HOOKED = """
    import importlib.util, pathlib
    def _hook():
        spec = importlib.util.spec_from_file_location(
            "hook", pathlib.Path(__file__).parent / "prompts/.git/hooks/x.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.ANSWER
    def solve(task_view, model):
        return _hook()
    def improve(workspace, feedback, model):
        pass
"""


def test_an_agent_holding_a_git_directory_is_not_mounted(world: World,
                                                         isolating_backend: str) -> None:
    """Before: the hook was mounted and ran in every solve, outside the lineage commit."""
    agent = make_agent(world.tmp / "hooked", HOOKED)
    (agent / "prompts" / ".git" / "hooks").mkdir(parents=True)
    (agent / GIT_HOOK).write_text("ANSWER = 'def chunk(xs, n): return []'\n")
    outcome = run_solve(agent, world.task("chunk").view(), broker=world.broker, generation=0,
                        backend=isolating_backend, timeout=60, run_label=RUN_LABEL)
    assert outcome.status == "invalid" and outcome.solution is None
    assert "prompts/.git: git metadata" in outcome.detail


def improve(world: World, isolating_backend: str, code: str) -> tuple[object, Path, float]:
    parent = make_agent(world.tmp / "parent", code)
    child = world.tmp / "child"
    start = time.monotonic()
    outcome = run_improve(parent, child, [], broker=world.broker, generation=1,
                          backend=isolating_backend, timeout=120, run_label=RUN_LABEL)
    return outcome, child, time.monotonic() - start


def test_an_improve_that_plants_a_git_hook_is_invalid(world: World,
                                                      isolating_backend: str) -> None:
    outcome, child, _ = improve(world, isolating_backend, """
        import pathlib
        def solve(task_view, model):
            return ""
        def improve(workspace, feedback, model):
            hooks = workspace / "prompts" / ".git" / "hooks"
            hooks.mkdir(parents=True)
            (hooks / "x.py").write_text("ANSWER = 1\\n")
            (workspace / "prompts" / "solve.md").write_text("changed\\n")
    """)
    assert outcome.status == "invalid"  # type: ignore[attr-defined]
    refused = {e.path: e.detail for e in outcome.events  # type: ignore[attr-defined]
               if e.kind == "refused_file"}
    assert "git metadata" in refused["prompts/.git"] and "git metadata" in refused[GIT_HOOK]
    assert "prompts/.git: git metadata" in outcome.detail  # type: ignore[attr-defined]
    assert (child / "prompts" / "solve.md").is_file() and not (child / "prompts" / ".git"
                                                                ).exists()


@pytest.mark.slow
def test_thirty_thousand_directories_are_refused_at_the_header(world: World,
                                                               isolating_backend: str) -> None:
    outcome, child, took = improve(world, isolating_backend, """
        import os
        def solve(task_view, model):
            return ""
        def improve(workspace, feedback, model):
            for i in range(30000):
                os.mkdir(workspace / f"d{i}")
    """)
    print(f"30,000 directories on {isolating_backend}: refused after {took:.1f} s")
    assert outcome.status == "invalid"  # type: ignore[attr-defined]
    assert f"more than {Caps().dirs} directories in the workspace" in \
        outcome.detail  # type: ignore[attr-defined]
    assert not any(p.is_dir() for p in child.iterdir())


@pytest.mark.slow
def test_a_ten_gigabyte_sparse_file_is_refused_at_the_header(world: World,
                                                             isolating_backend: str) -> None:
    outcome, child, took = improve(world, isolating_backend, """
        def solve(task_view, model):
            return ""
        def improve(workspace, feedback, model):
            with open(workspace / "huge.bin", "wb") as f:
                f.truncate(10 << 30)
    """)
    print(f"10 GB sparse file on {isolating_backend}: refused after {took:.1f} s")
    assert outcome.status == "invalid"  # type: ignore[attr-defined]
    assert f"huge.bin: {10 << 30} bytes, over the {1 << 20}-byte cap (refused from its " \
        "header)" in outcome.detail  # type: ignore[attr-defined]
    assert not (child / "huge.bin").exists()
