"""The bubblewrap sandbox's root filesystem: the judge image's own root, as a directory.

`rsi-bench sandbox setup` materialises it in the cache (``$RSI_BENCH_CACHE/rootfs/<image tag>``,
default ``~/.cache/rsi-bench``): exported from the judge image it has just built where Docker
exists, or made with debootstrap where there is none (the steps of the judge image's Dockerfile
are then applied by hand). Beside the root lies ``rootfs.json``: what it was built from and the
SHA-256 of the runner it carries, so a stale root is detected, never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.paths import harness_dir
from rsi_bench.sandbox.base import LABEL
from rsi_bench.sandbox.image import (
    DEFAULT_MIRROR,
    PACKAGES,
    RUNNER_FILES,
    RUNNER_IN_IMAGE,
    check_image,
    debootstrap_rootfs,
    judge_image,
    runner_sha256,
)

SCHEMA_VERSION = 1
META = "rootfs.json"
SETUP_HINT = "run `rsi-bench sandbox setup`"


@dataclass(frozen=True)
class Rootfs:
    root: Path  # the directory that becomes the sandbox's /
    source: str  # "docker-export" | "debootstrap"
    image: str  # the judge image tag it belongs to
    image_id: str  # the docker image id it was exported from, or "debootstrap:<date>"
    runner_sha256: str


def cache_root() -> Path:
    root = os.environ.get("RSI_BENCH_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rsi-bench"


def rootfs_dir(image: str | None = None) -> Path:
    """Where the root filesystem of ``image`` (default: the judge image) lives."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", image or judge_image())
    return cache_root() / "rootfs" / name


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _carried(root: Path) -> str:
    """The runner digest of the copies a root filesystem carries."""
    return runner_sha256(root / Path(RUNNER_IN_IMAGE).parent.relative_to("/"))


def recipe_sha256() -> str:
    """The judge image's recipe: a root made from another one is stale."""
    recipe = (harness_dir() / "judge-image" / "Dockerfile").read_bytes()
    return hashlib.sha256(recipe + b"\0" + " ".join(PACKAGES).encode()).hexdigest()


def check_rootfs(image: str | None = None) -> Rootfs:
    """The root filesystem, or SandboxUnavailable saying in one line what to run."""
    image = image or judge_image()
    where = rootfs_dir(image)
    try:
        meta = json.loads((where / META).read_text())
    except (OSError, ValueError):
        raise SandboxUnavailable(
            f"the bubblewrap root filesystem for {image} is missing ({where}): {SETUP_HINT}"
        ) from None
    try:
        carried = _carried(where / "root")
    except OSError:
        carried = ""
    if (meta.get("schema_version") != SCHEMA_VERSION or carried != runner_sha256()
            or meta.get("runner_sha256") != carried):
        raise SandboxUnavailable(
            f"the bubblewrap root filesystem for {image} carries a different runner than this "
            f"rsi-bench: {SETUP_HINT} to rebuild it"
        )
    if meta.get("recipe_sha256") != recipe_sha256():
        raise SandboxUnavailable(
            f"the bubblewrap root filesystem for {image} was built from another judge image "
            f"recipe: {SETUP_HINT} to rebuild it"
        )
    return Rootfs(where / "root", str(meta["source"]), image, str(meta["image_id"]), carried)


def setup_rootfs(client: Any | None, *, mirror: str = DEFAULT_MIRROR,
                 log: Callable[[str], None] = print) -> Rootfs:
    """Make (or keep, when current) the root filesystem of the judge image.

    ``client``: a docker client, to export the image just built; None to use debootstrap.
    """
    image, dest = judge_image(), rootfs_dir()
    image_id = check_image(client, image) if client is not None else ""
    try:
        current = check_rootfs(image)
        if client is None or current.image_id == image_id:
            log(f"reusing the bubblewrap root filesystem {dest}")
            return current
    except SandboxUnavailable:
        pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    try:
        if client is not None:
            log(f"exporting {image} to {dest}")
            _export(client, image, work / "root")
            source = "docker-export"
        else:
            if shutil.which("debootstrap") is None:
                raise SandboxUnavailable("no Docker and no debootstrap to build the bubblewrap "
                                         "root filesystem: apt-get install debootstrap")
            debootstrap_rootfs(work / "root", mirror, log)
            _apply_dockerfile_steps(work / "root")
            source, image_id = "debootstrap", f"debootstrap:{time.strftime('%Y-%m-%d')}"
        carried = _carried(work / "root")
        if carried != runner_sha256():
            raise SandboxUnavailable(f"{image} carries a different runner: {SETUP_HINT}")
        meta = {"schema_version": SCHEMA_VERSION, "source": source, "image": image,
                "image_id": image_id, "runner_sha256": carried, "recipe_sha256": recipe_sha256(),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (work / META).write_text(json.dumps(meta, indent=1) + "\n")
        _replace(work, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return check_rootfs(image)


def _export(client: Any, image: str, root: Path) -> None:
    """``docker export`` of a never-started container of ``image``, unpacked at ``root``."""
    container = client.containers.create(image, command=["true"], network_disabled=True,
                                         labels={LABEL: "1", f"{LABEL}.run": "setup"})
    try:
        root.mkdir(mode=0o755)
        tar = subprocess.Popen(["tar", "--numeric-owner", "-xpf", "-", "-C", str(root)],
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert tar.stdin is not None
        try:
            for chunk in container.export():
                tar.stdin.write(chunk)
        finally:
            tar.stdin.close()
            err = tar.stderr.read() if tar.stderr else b""
            if tar.wait() != 0:
                raise SandboxUnavailable(f"unpacking {image} failed: {err.decode()[-200:]}")
    finally:
        container.remove(force=True)
    # Docker's own marker and runtime mount points say nothing true about this root.
    (root / ".dockerenv").unlink(missing_ok=True)


def _apply_dockerfile_steps(root: Path) -> None:
    """What harness/judge-image/Dockerfile does on top of its base, for a debootstrap root."""
    inside = root / Path(RUNNER_IN_IMAGE).parent.relative_to("/")
    inside.mkdir(mode=0o755, parents=True, exist_ok=True)
    for path in RUNNER_FILES:
        shutil.copyfile(path, inside / path.name)
        os.chmod(inside / path.name, 0o644)
    (root / "scratch").mkdir(mode=0o1777, exist_ok=True)
    subprocess.run(["chroot", str(root), "python3", "-m", "compileall", "-q",
                    str(Path(RUNNER_IN_IMAGE).parent)], check=True)


def _replace(work: Path, dest: Path) -> None:
    """Swap ``work`` in as ``dest`` (a sandbox still running on the old root loses it: run
    setup while no bubblewrap sandbox runs)."""
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    work.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
