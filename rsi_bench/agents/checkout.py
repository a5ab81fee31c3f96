"""A repo task's repository for the agent when only the task's environment image holds it.

A SWE-bench instance (``rsi_bench/tasks/hf_swebench.py``) carries no files: its repository is
at ``/testbed`` in the instance's environment image, where the judge copies it from
(``rsi_bench/judge/repo_env.py``). The agent works on a writable copy of the repository in
its own container like for any repo task (``TaskView.files``, written to ``repo_path`` fresh
for each solve), so ``agent_view`` reads that copy out of the image, on the host, through the
docker SDK (an image is data: no process of it runs), and gives it to the view.

What the agent gets is the repository's text at the base commit and nothing else:

- no ``.git``: an instance image is a clone reset to the base commit, and its object store
  still holds the later history, the fix included;
- regular files only (no symlinks, devices or fifos); a file over ``MAX_FILE_BYTES``, with a
  NUL byte or not UTF-8 is left out (a repo task's files are text), and counted;
- at most ``MAX_TOTAL_BYTES`` in all: a larger repository is refused with one line, never
  given in part.

A copy is cached per image id (content-addressed, so never stale) under
``$RSI_BENCH_CACHE/checkouts`` (default ``~/.cache/rsi-bench/checkouts``).
"""

from __future__ import annotations

import gzip
import json
import os
import posixpath
import tarfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, cast

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.tasks.model import Task, TaskView

MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 96 << 20  # well inside the agent container's 256 MiB work directory

_lock = threading.Lock()
_recent: dict[str, dict[str, str]] = {}  # the last images' copies, so a solve reads no disk


def cache_root() -> Path:
    root = os.environ.get("RSI_BENCH_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "rsi-bench") / "checkouts"


def environment_of(task: Task) -> dict[str, Any] | None:
    """The task's environment (image, repo, python), or None for a task that carries files."""
    if task.kind != "repo":
        return None
    env = json.loads(task.tests).get("environment")
    return env if isinstance(env, dict) else None


def agent_view(task: Task) -> TaskView:
    """``task.view()``, with the repository read out of its environment image when the task
    carries none."""
    view = task.view()
    env = environment_of(task)
    if env is None or view.files:
        return view
    files = checkout(str(env["image"]), str(env["repo"]))
    return replace(view, files=tuple(sorted(files.items())))


def checkout(image: str, repo: str) -> dict[str, str]:
    """The text files of ``repo`` in ``image`` (path relative to ``repo`` -> text)."""
    import docker
    import docker.errors

    from rsi_bench.sandbox.image import check_environment_image

    client = docker.from_env()
    try:
        image_id = check_environment_image(client, image)
        path = cache_root() / f"{image_id.replace(':', '-')}{repo.replace('/', '-')}.json.gz"
        with _lock:  # one export per image, whatever the concurrency
            if path.name in _recent:
                return _recent[path.name]
            if path.is_file():
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    files = dict(json.load(f)["files"])
            else:
                files, left_out = _export(client, image_id, image, repo)
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.part")
                with gzip.open(partial, "wt", encoding="utf-8") as f:
                    json.dump({"image": image, "repo": repo, "left_out": left_out,
                               "files": files}, f)
                partial.replace(path)
            while len(_recent) >= 2:
                _recent.pop(next(iter(_recent)))
            _recent[path.name] = files
            return files
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"reading {repo} out of the environment image {image}: "
                                 f"{type(exc).__name__}: {exc}") from None
    finally:
        client.close()


def _export(client: Any, image_id: str, image: str, repo: str) -> tuple[dict[str, str], int]:
    container = client.containers.create(image_id, command=["true"], network_disabled=True)
    try:
        stream, _stat = container.get_archive(repo)
        with tarfile.open(mode="r|", fileobj=cast(IO[bytes], _Chunks(stream))) as tar:
            return files_from_tar(tar, posixpath.basename(repo.rstrip("/")), image)
    finally:
        container.remove(force=True)


def files_from_tar(tar: tarfile.TarFile, top: str,
                   image: str = "the image") -> tuple[dict[str, str], int]:
    """The text files under ``top/`` of a tar stream (docker's archive of a directory), and
    how many files were left out (too large, binary, not UTF-8). Raises SandboxUnavailable
    when the text passes ``MAX_TOTAL_BYTES``."""
    files: dict[str, str] = {}
    total = left_out = 0
    for member in tar:
        rel = _relative(member.name, top)
        if rel is None or not member.isreg():
            continue
        if member.size > MAX_FILE_BYTES:
            left_out += 1
            continue
        handle = tar.extractfile(member)
        data = handle.read() if handle is not None else b""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            left_out += 1
            continue
        if "\0" in text:
            left_out += 1
            continue
        total += len(data)
        if total > MAX_TOTAL_BYTES:
            raise SandboxUnavailable(
                f"the repository {top} in {image} holds more than {MAX_TOTAL_BYTES >> 20} MiB "
                "of text: too large for the agent's copy")
        files[rel] = text
    return files, left_out


def _relative(name: str, top: str) -> str | None:
    """``name`` relative to ``top``, or None for what the agent does not get (the top itself,
    anything under a .git, a path that leaves the repository)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if len(parts) < 2 or parts[0] != top or ".." in parts or ".git" in parts[1:]:
        return None
    return "/".join(parts[1:])


class _Chunks:
    """A read-only file over docker's chunk iterator, for tarfile's stream mode."""

    def __init__(self, chunks: Iterator[bytes] | Iterable[bytes]) -> None:
        self.chunks, self.chunk, self.pos = iter(chunks), b"", 0

    def read(self, n: int = -1) -> bytes:
        out, want = [], n
        while want != 0:
            if self.pos >= len(self.chunk):
                chunk = next(self.chunks, None)
                if chunk is None:
                    break
                self.chunk, self.pos = chunk, 0
            left = len(self.chunk) - self.pos
            take = left if want < 0 else min(want, left)
            out.append(self.chunk[self.pos:self.pos + take])
            self.pos += take
            want = want - take if want > 0 else want
        return b"".join(out)
