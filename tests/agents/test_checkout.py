"""What of an environment image's repository reaches the agent's copy (``agents/checkout.py``),
on tar streams built here: the text at the base commit, never the git directory, links or
binaries, and never a repository in part."""

from __future__ import annotations

import io
import tarfile

import pytest

from rsi_bench.agents import checkout
from rsi_bench.errors import SandboxUnavailable


def archive(entries: list[tuple[str, bytes | None, str]]) -> bytes:
    """A tar like docker's archive of a directory: (name, data or None, kind)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "text.py"
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            else:
                info.size = len(data or b"")
                tar.addfile(info, io.BytesIO(data or b""))
    return out.getvalue()


def read(data: bytes, chunk: int = 7) -> tuple[dict[str, str], int]:
    chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]  # as docker streams it
    with tarfile.open(fileobj=checkout._Chunks(chunks), mode="r|") as tar:  # type: ignore[call-overload]
        return checkout.files_from_tar(tar, "testbed")


def test_the_text_of_the_repository_and_nothing_else() -> None:
    files, left_out = read(archive([
        ("testbed", None, "dir"),
        ("testbed/pkg/text.py", b"def f():\n    return 1\n", "file"),
        ("testbed/pkg/__init__.py", b"", "file"),
        ("testbed/README.rst", "caf\u00e9\n".encode(), "file"),
        ("testbed/.git/HEAD", b"ref: refs/heads/main\n", "file"),
        ("testbed/.git/ORIG_HEAD", b"the fix's commit\n", "file"),
        ("testbed/sub/.git/config", b"[core]\n", "file"),
        ("testbed/pkg/alias.py", None, "link"),
        ("testbed/pkg/pipe", None, "fifo"),
        ("testbed/data.bin", b"\x89PNG\r\n\x1a\n\0\0", "file"),
        ("testbed/latin.txt", b"caf\xe9\n", "file"),
        ("testbed/../escape.py", b"x = 1\n", "file"),
        ("other/elsewhere.py", b"x = 2\n", "file"),
    ]))
    assert files == {"pkg/text.py": "def f():\n    return 1\n", "pkg/__init__.py": "",
                     "README.rst": "caf\u00e9\n"}
    assert left_out == 2  # the binary and the latin-1 file, counted


def test_a_file_over_the_size_limit_is_left_out_and_counted(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr(checkout, "MAX_FILE_BYTES", 10)
    files, left_out = read(archive([("testbed/small.py", b"x = 1\n", "file"),
                                    ("testbed/large.py", b"x = 1\n" * 10, "file")]))
    assert (files, left_out) == ({"small.py": "x = 1\n"}, 1)


def test_a_repository_over_the_total_is_refused_never_given_in_part(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkout, "MAX_TOTAL_BYTES", 20)
    entries: list[tuple[str, bytes | None, str]] = [
        (f"testbed/m{i}.py", b"x = 1\n", "file") for i in range(3)]
    assert len(read(archive(entries))[0]) == 3  # 18 bytes: under the total
    with pytest.raises(SandboxUnavailable, match="more than 0 MiB of text: too large"):
        read(archive([*entries, ("testbed/m3.py", b"x = 1\n", "file")]))


def test_the_stream_reader_returns_what_was_asked() -> None:
    reader = checkout._Chunks([b"abc", b"", b"defg", b"h"])
    assert (reader.read(2), reader.read(4), reader.read(-1), reader.read(3)) == (
        b"ab", b"cdef", b"gh", b"")


def test_a_task_that_carries_its_files_reads_no_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from rsi_bench.tasks import load_suite

    def no_docker(image: str, repo: str) -> dict[str, str]:
        raise AssertionError(f"read {repo} out of {image}")

    monkeypatch.setattr(checkout, "checkout", no_docker)
    repo = load_suite("rsi-repo").get("rsi-repo/kvstore_incr")
    function = next(iter(load_suite("rsi-core")))
    for task in (repo, function):
        assert checkout.environment_of(task) is None
        assert checkout.agent_view(task) == task.view()
    assert checkout.agent_view(repo).files  # the repository's own visible files
