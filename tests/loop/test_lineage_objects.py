"""The lineage writes git objects in-process: the same ids as git's own recipe, a repository
that ``git fsck --strict`` accepts, and diffs and logs that git reads."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rsi_bench.loop import lineage as lineage_module
from rsi_bench.loop.lineage import IDENTITY, Lineage

ENV = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, check=True)
    return done.stdout.strip()


def reference_commit(repo: Path, tree_dir: Path, parent: str | None, message: str) -> str:
    """The old recipe: add -A, write-tree, commit-tree, update-ref, in a repository of its own."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q")
    env = {"GIT_INDEX_FILE": str(repo / "index.tmp"), "GIT_WORK_TREE": str(tree_dir),
           "GIT_DIR": str(repo / ".git")}
    git(tree_dir, "add", "-A", ".", env=env)
    tree = git(tree_dir, "write-tree", env=env)
    (repo / "index.tmp").unlink()
    sha = git(repo, "commit-tree", tree, "-m", message, *(["-p", parent] if parent else []))
    git(repo, "update-ref", "refs/generations/ref", sha)
    return sha


def nested(d: Path) -> None:
    (d / "pkg" / "sub" / "deep").mkdir(parents=True)
    (d / "pkg" / "sub" / "deep" / "leaf.txt").write_text("leaf\n")
    (d / "pkg" / "__init__.py").write_text("")
    (d / "top.txt").write_text("top\n")
    (d / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (d / "run.sh").chmod(0o755)
    (d / "owner_x").write_text("x")
    (d / "owner_x").chmod(0o700)  # git looks at the owner's bit only
    (d / "group_x").write_text("x")
    (d / "group_x").chmod(0o654)
    (d / "empty.txt").write_bytes(b"")
    (d / "void").mkdir()
    (d / "hollow" / "inner").mkdir(parents=True)  # only empty directories: not tracked
    (d / "bin.dat").write_bytes(bytes(range(256)) * 3)


def sort_rule(d: Path) -> None:
    (d / "a").mkdir()
    (d / "a" / "x").write_text("in a\n")
    for name in ("a.b", "a-b", "a0", "ab", "b"):
        (d / name).write_text(name)
    (d / "b.d").mkdir()
    (d / "b.d" / "y").write_text("y")
    (d / "b-").mkdir()
    (d / "b-" / "z").write_text("z")


def unicode(d: Path) -> None:
    (d / "é.txt").write_text("accent\n")
    (d / "日本").mkdir()
    (d / "日本" / "語 word.md").write_text("cjk\n")
    (d / "target.txt").write_text("target\n")


def empty(d: Path) -> None:
    (d / "only_empty_dir").mkdir()


TREES: dict[str, Callable[[Path], None]] = {
    "nested": nested, "sort_rule": sort_rule, "unicode": unicode,
    "empty": empty}


def change(d: Path) -> None:
    for path in sorted(d.rglob("*"), reverse=True):
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir() and path.name != "keep":
            shutil.rmtree(path)
    (d / "keep").mkdir(exist_ok=True)
    (d / "keep" / "new.txt").write_text("new\n")


@pytest.fixture
def lineage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lineage:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    return Lineage(tmp_path / "agents")


def fsck(repo: Path) -> list[str]:
    done = subprocess.run(["git", "-C", str(repo), "fsck", "--strict"], capture_output=True,
                          text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    return [line for line in lines if not line.startswith("notice: HEAD points to an unborn")]


@pytest.mark.parametrize("name", sorted(TREES))
def test_commit_ids_match_git_and_fsck_is_clean(name: str, lineage: Lineage,
                                                tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    lineage.path(0).mkdir()
    TREES[name](lineage.path(0))
    sha0 = lineage.commit(0, None, "generation 0: the seed agent")
    assert sha0 == reference_commit(reference, lineage.path(0), None,
                                    "generation 0: the seed agent")
    shutil.copytree(lineage.path(0), lineage.path(1), symlinks=True)
    change(lineage.path(1))
    sha1 = lineage.commit(1, 0, "generation 1: self\n\nsecond paragraph")
    assert sha1 != sha0
    assert sha1 == reference_commit(reference, lineage.path(1), sha0,
                                    "generation 1: self\n\nsecond paragraph")
    assert git(lineage.root, "cat-file", "-p", "refs/generations/g0001^") == \
        git(reference, "cat-file", "-p", sha0)
    assert fsck(lineage.root) == []


def test_tree_entries_as_git_reads_them(lineage: Lineage) -> None:
    lineage.path(0).mkdir()
    sort_rule(lineage.path(0))
    for sub, make in (("n", nested), ("u", unicode)):
        (lineage.path(0) / sub).mkdir()
        make(lineage.path(0) / sub)
    lineage.commit(0, None, "g0")
    listing = git(lineage.root, "-c", "core.quotePath=false", "ls-tree", "-r", "-t",
                  "--format=%(objectmode) %(path)", "refs/generations/g0000").splitlines()
    top = [line for line in listing if "/" not in line]
    assert top == ["100644 a-b", "100644 a.b", "040000 a", "100644 a0", "100644 ab",
                   "100644 b", "040000 b-", "040000 b.d", "040000 n", "040000 u"]
    modes = {path: mode for mode, path in (line.split(" ", 1) for line in listing)}
    assert modes["n/run.sh"] == modes["n/owner_x"] == "100755"
    assert modes["n/group_x"] == modes["n/empty.txt"] == "100644"
    assert "n/void" not in modes and "n/hollow" not in modes
    assert git(lineage.root, "cat-file", "-p",
               "refs/generations/g0000:u/日本/語 word.md") == "cjk"


def test_diff_between_generations(lineage: Lineage) -> None:
    lineage.path(0).mkdir()
    (lineage.path(0) / "agent.py").write_text("print('old')\n")
    (lineage.path(0) / "gone.md").write_text("bye\n")
    (lineage.path(0) / "tool.sh").write_text("#!/bin/sh\n")
    lineage.commit(0, None, "g0")
    shutil.copytree(lineage.path(0), lineage.path(1))
    (lineage.path(1) / "agent.py").write_text("print('new')\n")
    (lineage.path(1) / "gone.md").unlink()
    (lineage.path(1) / "tool.sh").chmod(0o755)
    (lineage.path(1) / "prompts").mkdir()
    (lineage.path(1) / "prompts" / "solve.md").write_text("solve it\n")
    lineage.commit(1, 0, "g1")
    diff = lineage.diff(0, 1)
    assert "-print('old')\n+print('new')" in diff
    assert "diff --git a/gone.md b/gone.md\ndeleted file mode 100644" in diff
    assert "diff --git a/prompts/solve.md b/prompts/solve.md\nnew file mode 100644" in diff
    assert "+solve it" in diff
    assert "diff --git a/tool.sh b/tool.sh\nold mode 100644\nnew mode 100755" in diff
    assert lineage.diff(1, 1) == ""


def test_parent_chain_and_refs(lineage: Lineage, monkeypatch: pytest.MonkeyPatch) -> None:
    shas = []
    for g in range(3):
        lineage.path(g).mkdir()
        (lineage.path(g) / "a.txt").write_text(f"{g}\n")
        shas.append(lineage.commit(g, g - 1 if g else None, f"generation {g}"))
    assert git(lineage.root, "log", "--format=%H", "refs/generations/g0002").splitlines() == \
        shas[::-1]
    assert git(lineage.root, "log", "--format=%s", "refs/generations/g0002").splitlines() == \
        ["generation 2", "generation 1", "generation 0"]
    ref_file = lineage.root / ".git" / "refs" / "generations" / "g0002"
    assert ref_file.read_text() == shas[2] + "\n"
    assert [lineage.ref(g) for g in range(3)] == shas
    assert sorted(p.name for p in ref_file.parent.iterdir()) == ["g0000", "g0001", "g0002"]
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("commit() ran a subprocess")
    monkeypatch.setattr(lineage_module.subprocess, "run", no_subprocess)
    lineage.path(3).mkdir()
    (lineage.path(3) / "a.txt").write_text("3\n")
    sha3 = lineage.commit(3, 2, "generation 3")
    monkeypatch.undo()
    assert git(lineage.root, "rev-parse", "refs/generations/g0003^") == shas[2]
    git(lineage.root, "pack-refs", "--all")
    assert not ref_file.exists()
    assert [lineage.ref(g) for g in range(4)] == [*shas, sha3]  # packed: git rev-parse
    lineage.path(4).mkdir()
    (lineage.path(4) / "a.txt").write_text("4\n")
    lineage.commit(4, 3, "generation 4")
    assert git(lineage.root, "rev-parse", "refs/generations/g0004^") == sha3
    assert fsck(lineage.root) == []


def test_objects_are_read_only_and_not_rewritten(lineage: Lineage) -> None:
    for g in range(2):
        lineage.path(g).mkdir()
        (lineage.path(g) / "same.txt").write_text("same\n")
    lineage.commit(0, None, "g0")
    blob = git(lineage.root, "rev-parse", "refs/generations/g0000:same.txt")
    path = lineage.root / ".git" / "objects" / blob[:2] / blob[2:]
    before = path.stat()
    assert before.st_mode & 0o777 == 0o444
    lineage.commit(1, 0, "g1")
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list((lineage.root / ".git").rglob("*tmp*")) == []


def test_missing_parent_raises(lineage: Lineage) -> None:
    lineage.path(1).mkdir()
    (lineage.path(1) / "a.txt").write_text("a\n")
    with pytest.raises(lineage_module.RsiBenchError, match="rev-parse"):
        lineage.commit(1, 0, "orphan")
    assert not (lineage.root / ".git" / "refs" / "generations" / "g0001").exists()


@pytest.mark.parametrize(("plant", "named", "says"), [
    (lambda d: (d / "link").symlink_to("a.txt"), "link", "a symlink"),
    (lambda d: (d / "dangling").symlink_to("nowhere/at/all"), "dangling", "a symlink"),
    (lambda d: os.mkfifo(d / "pipe"), "pipe", "a fifo"),
    (lambda d: (d / "prompts" / ".git" / "hooks").mkdir(parents=True) or
     (d / "prompts" / ".git" / "hooks" / "x.py").write_text("import os\n"),
     "prompts/.git", "git metadata"),
    (lambda d: (d / ".gitattributes").write_text("* export-ignore\n"), ".gitattributes",
     "git metadata"),
    (lambda d: (d / "A.txt").write_text("A"), "a.txt", "differs from .A.txt. only in case"),
])
def test_what_an_agent_cannot_hold_is_refused_not_skipped(
        lineage: Lineage, plant: Callable[[Path], object], named: str, says: str) -> None:
    """The old writer skipped a .git directory at any depth and recorded symlinks, which no
    container mounts: the commit and the mount differed. Now the commit refuses, naming it."""
    lineage.path(0).mkdir()
    (lineage.path(0) / "a.txt").write_text("a\n")
    (lineage.path(0) / "prompts").mkdir()
    plant(lineage.path(0))
    with pytest.raises(lineage_module.RsiBenchError, match=f"{named}: .*{says}"):
        lineage.commit(0, None, "g0")
    assert not (lineage.root / ".git" / "refs" / "generations" / "g0000").exists()


def test_bytecode_caches_are_neither_committed_nor_mounted(lineage: Lineage) -> None:
    from rsi_bench.agents.tree import copy_agent

    lineage.path(0).mkdir()
    (lineage.path(0) / "agent.py").write_text("x = 1\n")
    (lineage.path(0) / "__pycache__").mkdir()
    (lineage.path(0) / "__pycache__" / "agent.cpython-311.pyc").write_bytes(b"\0" * 16)
    (lineage.path(0) / "loose.pyc").write_bytes(b"\0" * 16)
    lineage.commit(0, None, "g0")
    listing = git(lineage.root, "ls-tree", "-r", "--name-only", "refs/generations/g0000")
    assert listing.splitlines() == ["agent.py"]
    copy_agent(lineage.path(0), lineage.root / "staged")
    staged = sorted(p.relative_to(lineage.root / "staged").as_posix()
                    for p in (lineage.root / "staged").rglob("*"))
    assert staged == ["agent.py"]
