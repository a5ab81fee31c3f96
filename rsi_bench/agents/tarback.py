"""An improve's workspace, back on the host: a tar stream read header by header.

Everything is decided from a member's header before its content is read: its path (one the
lineage records, see ``tree.py``), its type (regular files and directories only; GNU and PAX
sparse members refused), its size, and the running counts of files, directories and entries.
The first count cap that is hit ends the stream, as does a sparse member or an oversized one
whose content would not fit the stream's byte budget — the container's ``tar`` is stopped, not
drained — so a hostile workspace (30,000 directories, a 10 GB sparse file) costs what its first
headers cost; a small oversized file is skipped, so the refusals after it are reported too.
Every refusal is a ``refused_file`` finding, which makes the child invalid. The host never
writes outside ``dest``, and creates directories only to hold files: git records no empty
directory, so none may be mounted either.
"""

from __future__ import annotations

import io
import os
import select
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NoReturn

from rsi_bench.agents.audit import Finding
from rsi_bench.agents.tree import Collisions, path_refusal
from rsi_bench.sandbox import Sandbox

MAX_REFUSED = 20  # findings kept before the stream is abandoned


@dataclass(frozen=True)
class Caps:
    files: int = 500
    dirs: int = 200
    entries: int = 1000  # every member of the archive: files, directories, refused ones
    file_bytes: int = 1 << 20
    total_bytes: int = 16 << 20  # file content, summed from the headers
    seconds: float = 120.0  # for the whole stream

    @property
    def stream_bytes(self) -> int:
        """The most the stream may hold: the content, a few header blocks per entry, and the
        end-of-archive blocks; a longer stream (huge PAX or long-name headers) is cut off."""
        return self.total_bytes + self.entries * 4 * tarfile.BLOCKSIZE + tarfile.RECORDSIZE * 2


class _Stop(Exception):
    """A cap was hit: the stream ends with this refusal."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(detail)
        self.path, self.detail = path, detail


class _Reader:
    """A read-only file over ``chunk(n, timeout)`` that stops at the caps' byte budget and
    deadline (tarfile reads it in records of 10 KiB)."""

    def __init__(self, chunk: Callable[[int, float], bytes], caps: Caps) -> None:
        self._chunk, self.caps, self.total = chunk, caps, 0
        self._deadline = time.monotonic() + caps.seconds

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self.caps.stream_bytes + 1
        out = bytearray()
        while len(out) < n:
            left = self._deadline - time.monotonic()
            if left <= 0:
                _timed_out(self.caps)
            data = self._chunk(min(n - len(out), 1 << 16), left)
            if not data:
                break
            out += data
            self.total += len(data)
            if self.total > self.caps.stream_bytes:
                raise _Stop("", f"the workspace archive is longer than "
                            f"{self.caps.stream_bytes} bytes")
        return bytes(out)

    def left(self) -> int:
        """Bytes the stream may still hold."""
        return self.caps.stream_bytes - self.total


def fd_reader(fd: int, caps: Caps) -> _Reader:
    def chunk(n: int, timeout: float) -> bytes:
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, n) if ready else _timed_out(caps)
    return _Reader(chunk, caps)


def _timed_out(caps: Caps) -> NoReturn:
    raise _Stop("", f"the workspace archive did not arrive within {caps.seconds:g} s")


def bytes_reader(data: bytes, caps: Caps) -> _Reader:
    source = io.BytesIO(data)
    return _Reader(lambda n, _timeout: source.read(n), caps)


def fetch_workspace(box: Sandbox, workspace: str, dest: Path, caps: Caps = Caps()
                    ) -> list[Finding]:
    """Stream ``workspace`` out of ``box`` as a tar archive into ``dest``; the refusals."""
    stream = box.stream(["sh", "-c", f"test -d {workspace} || exit 3; "
                         f"exec tar -c -C {workspace} ."], user=0)
    try:
        reader = fd_reader(stream.stdout_fd, caps)
        refused = unpack_workspace(reader, dest, caps)
        if reader.total == 0:
            return [Finding("refused_file", workspace, "the workspace is gone (improve removed "
                            "it)")]
        return refused
    finally:
        stream.close()  # stops tar where it is: a refused archive is not drained


def unpack_workspace(source: bytes | _Reader, dest: Path, caps: Caps = Caps()
                     ) -> list[Finding]:
    """Write the regular files of a tar stream under ``dest`` (which must be fresh); return a
    finding for every entry refused. Never raises on a hostile archive."""
    reader = bytes_reader(source, caps) if isinstance(source, bytes) else source
    refused: list[Finding] = []
    unpacker = _Unpacker(dest, caps, reader)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                why = unpacker.take(tar, member)
                if why is not None:
                    refused.append(Finding("refused_file", _shown(member.name), why))
                    if len(refused) >= MAX_REFUSED:
                        break
    except _Stop as stop:
        refused.append(Finding("refused_file", stop.path, stop.detail))
    except (tarfile.TarError, EOFError) as exc:
        refused.append(Finding("refused_file", "", f"the workspace archive is unreadable: {exc}"))
    return refused


def _shown(name: str) -> str:
    return name.removeprefix("./").rstrip("/")[:300]


class _Unpacker:
    """The running counts of one archive, and what each member's header allows."""

    def __init__(self, dest: Path, caps: Caps, reader: _Reader) -> None:
        self.root, self.caps, self.reader = dest.resolve(), caps, reader
        self.files = self.dirs = self.entries = self.total = 0
        self.collisions = Collisions()

    def take(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> str | None:
        """Write ``member`` or say why not; raise _Stop when the archive must end here."""
        name, caps = _shown(member.name), self.caps
        self.entries += 1
        if self.entries > caps.entries:
            raise _Stop(name, f"more than {caps.entries} entries in the workspace")
        if member.isdir():
            self.dirs += 1
            if self.dirs > caps.dirs:
                raise _Stop(name, f"more than {caps.dirs} directories in the workspace")
        if member.issparse():
            raise _Stop(name, "a sparse file (refused from its header)")
        if member.size > caps.file_bytes:
            why = f"{member.size} bytes, over the {caps.file_bytes}-byte cap (refused from its " \
                  "header)"
            if member.size > self.reader.left():
                raise _Stop(name, why)  # its content would not fit the stream's budget
            return why  # skipped within the budget, so the later refusals are reported too
        if name in ("", ".") and member.isdir():
            return None  # the workspace itself
        if not (member.isfile() or member.isdir()):
            return f"{_kind(member)} refused"
        why = path_refusal(name) or self.collisions.add(name)
        if why is not None or member.isdir():
            return why
        if self.files >= caps.files:
            raise _Stop(name, f"more than {caps.files} files")
        if self.total + member.size > caps.total_bytes:
            raise _Stop(name, f"the workspace's files exceed {caps.total_bytes} bytes")
        self.files += 1
        self.total += member.size
        target = self.root.joinpath(*PurePosixPath(name).parts)
        if self.root not in target.parents:
            return "path escapes the workspace"
        try:
            _write(tar, member, target)
        except OSError as exc:
            return f"cannot write: {exc}"
        return None


def _kind(member: tarfile.TarInfo) -> str:
    return ("symlink" if member.issym() else "hard link" if member.islnk()
            else "fifo" if member.isfifo() else "device file" if member.isdev()
            else "special file")


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:
        raise OSError("no data")
    with source, open(target, "xb") as out:
        shutil.copyfileobj(source, out)
    os.chmod(target, 0o755 if member.mode & 0o100 else 0o644)
