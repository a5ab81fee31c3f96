"""The bubblewrap root filesystem's bookkeeping: a missing or stale root is refused with one line
that says what to run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox import rootfs
from rsi_bench.sandbox.image import RUNNER_FILES, RUNNER_IN_IMAGE, runner_sha256
from rsi_bench.sandbox.userns import keyring_filter


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RSI_BENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("RSI_BENCH_JUDGE_IMAGE", "rsi-bench-judge:test/x")
    return tmp_path


def plant(where: Path, **meta: object) -> Path:
    runner = where / "root" / RUNNER_IN_IMAGE.lstrip("/")
    runner.parent.mkdir(parents=True)
    for path in RUNNER_FILES:  # every file the image carries beside the runner
        shutil.copyfile(path, runner.parent / path.name)
    fields = {"schema_version": rootfs.SCHEMA_VERSION, "source": "docker-export",
              "image": "rsi-bench-judge:test/x", "image_id": "sha256:abc",
              "runner_sha256": runner_sha256(), "recipe_sha256": rootfs.recipe_sha256(), **meta}
    (where / rootfs.META).write_text(json.dumps(fields))
    return runner


def test_a_current_root_is_accepted(cache: Path) -> None:
    where = rootfs.rootfs_dir()
    assert where == cache / "rootfs" / "rsi-bench-judge_test_x"
    plant(where)
    found = rootfs.check_rootfs()
    assert (found.root, found.image_id, found.source) == (where / "root", "sha256:abc",
                                                          "docker-export")


def test_a_missing_root_says_to_run_setup(cache: Path) -> None:
    with pytest.raises(SandboxUnavailable, match=r"missing .*run `rsi-bench sandbox setup`"):
        rootfs.check_rootfs()


def test_a_root_with_another_runner_is_stale(cache: Path) -> None:
    runner = plant(rootfs.rootfs_dir())
    runner.write_text(runner.read_text() + "\n# edited\n")
    with pytest.raises(SandboxUnavailable, match=r"different runner.*sandbox setup"):
        rootfs.check_rootfs()


def test_a_root_from_another_recipe_is_stale(cache: Path) -> None:
    plant(rootfs.rootfs_dir(), recipe_sha256="0" * 64)
    with pytest.raises(SandboxUnavailable, match=r"another judge image recipe.*sandbox setup"):
        rootfs.check_rootfs()


def test_the_keyring_filter_is_refused_where_its_numbers_are_unknown() -> None:
    assert len(keyring_filter("x86_64")) % 8 == 0  # struct sock_filter is 8 bytes
    with pytest.raises(SandboxUnavailable, match="no keyring seccomp filter"):
        keyring_filter("riscv64")
