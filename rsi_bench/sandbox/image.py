"""Building and checking the judge image (`rsi-bench sandbox setup`).

Two ways to a base: pull ``debian:bookworm-slim`` from a registry, or, where no registry is
reachable, make a Debian rootfs with ``debootstrap`` and load it with ``docker import``. Either
way the judge image is then built from harness/judge-image/Dockerfile, with the Debian packages
of ``PACKAGES`` installed, and labelled with the SHA-256 of the runner it carries and with that
package list, so a stale image is detected instead of silently used. The offline base's tag
names its package set, so changing ``PACKAGES`` makes a new base instead of reusing an old one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.paths import harness_dir

JUDGE_IMAGE = "rsi-bench-judge:latest"
# What a solution may import beyond the standard library, from Debian's own packages: numpy is
# the one library HumanEval-style solutions reach for (models use it for sums, sorting and
# rounding); python3 is the interpreter itself; pytest runs the hidden tests of repo tasks.
# Keep this short: every package is attack surface and image size, and a solution that needs
# more is not a HumanEval-style solution.
PACKAGES = ("python3", "python3-numpy", "python3-pytest")
PACKAGES_LABEL = "rsi-bench.packages"
RUNNER_LABEL = "rsi-bench.runner-sha256"
REGISTRY_BASE = "debian:bookworm-slim"
RUNNER = Path(__file__).resolve().parent.parent / "judge" / "runner.py"
# Everything of the grader's that runs inside a judge sandbox: the runner and the stdlib-only
# modules it imports from its own directory (its zygote; the boundary's framing, codec, bridge,
# exception rebuilding and looks; stdin/stdout jobs), and the post-job wiper (which decides
# whether a sandbox is fresh). All are baked into the image side by side, and one digest covers
# them.
RUNNER_MODULES = ("runner.py", "zygote.py", "frames.py", "codec.py", "bridge.py", "rebuild.py",
                  "looks.py", "io_job.py", "repo_job.py", "repo_diff.py", "repo_plugin.py")
RUNNER_FILES = (*(RUNNER.with_name(n) for n in RUNNER_MODULES),
                RUNNER.parent.parent / "sandbox" / "fresh.py")
RUNNER_IN_IMAGE = "/opt/rsi-bench/runner.py"
RUNNER_DIR_IN_IMAGE = "/opt/rsi-bench"
# A task's own environment image (a SWE-bench instance image) carries no runner: the judge
# bind-mounts these host files read-only into RUNNER_DIR_IN_IMAGE, and starts repo_env.py
# (runner.py with the repository taken from the image). repo_env.py is never baked into the
# judge image, so the judge image's digest (RUNNER_FILES) does not cover it; verdicts judged in
# an environment image record the digest of these files.
ENV_RUNNER = RUNNER.with_name("repo_env.py")
ENV_RUNNER_FILES = (*RUNNER_FILES, ENV_RUNNER)
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def judge_image() -> str:
    """The judge image's tag (``RSI_BENCH_JUDGE_IMAGE`` overrides, e.g. to keep two versions)."""
    return os.environ.get("RSI_BENCH_JUDGE_IMAGE", JUDGE_IMAGE)


def packages_tag() -> str:
    """A short digest of ``PACKAGES``, in the offline base's tag."""
    return hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:12]


OFFLINE_BASE = f"rsi-bench-base:bookworm-{packages_tag()}"


def runner_sha256(inside: Path | None = None, files: tuple[Path, ...] = RUNNER_FILES) -> str:
    """One digest over every runner file (name and content), so any change marks images stale;
    with ``inside``, over the copies in that directory (a root filesystem's /opt/rsi-bench).
    ``files=ENV_RUNNER_FILES``: what an environment image's sandbox runs (mounted)."""
    digest = hashlib.sha256()
    for path in files:
        data = (inside / path.name if inside is not None else path).read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def check_environment_image(client: Any, image: str) -> str:
    """A task's environment image: return its id, or raise with how to provide it. It needs no
    label: the judge mounts the runner into it."""
    import docker.errors

    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        raise SandboxUnavailable(
            f"the environment image {image} is missing: build it with SWE-bench's harness "
            "(which tags instance images sweb.eval.x86_64.<instance_id>), or `docker pull` / "
            "`docker load` it, or name where it is with the suite's image= option"
        ) from None


def check_image(client: Any, image: str | None = None) -> str:
    """Return the image id, or raise with what to do when it is missing or stale."""
    import docker.errors

    image = image or judge_image()
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise SandboxUnavailable(
            f"the judge image {image} is missing: run `rsi-bench sandbox setup`"
        ) from exc
    labels = found.labels or {}
    if labels.get(RUNNER_LABEL) != runner_sha256():
        raise SandboxUnavailable(
            f"the judge image {image} carries a different runner than this rsi-bench: "
            "run `rsi-bench sandbox setup` to rebuild it"
        )
    have = set(str(labels.get(PACKAGES_LABEL, "")).split())
    missing = [name for name in PACKAGES if name not in have]
    if missing:
        raise SandboxUnavailable(
            f"the judge image {image} lacks the package(s) {', '.join(missing)}: "
            "run `rsi-bench sandbox setup` to rebuild it"
        )
    return str(found.id)


def debootstrap_rootfs(rootfs: Path, mirror: str, log: Callable[[str], None]) -> None:
    """A Debian root filesystem at ``rootfs`` (the offline base; bubblewrap's root without
    Docker)."""
    log(f"debootstrap bookworm (minbase + {' '.join(PACKAGES)}) from {mirror} ...")
    cmd = ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
           "bookworm", str(rootfs), mirror]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        raise SandboxUnavailable(f"debootstrap failed: {' | '.join(tail)}")
    # The apt caches are not needed at run time and make the image larger.
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / junk, ignore_errors=True)


def _debootstrap_base(client: Any, mirror: str, log: Callable[[str], None]) -> None:
    if shutil.which("debootstrap") is None:
        raise SandboxUnavailable(
            "no registry base and no debootstrap: install it (`apt-get install debootstrap`) "
            "or use `--from registry`"
        )
    with tempfile.TemporaryDirectory(prefix="rsi-bench-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        debootstrap_rootfs(rootfs, mirror, log)
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."],
                       check=True)
        log(f"docker import -> {OFFLINE_BASE}")
        repo, tag = OFFLINE_BASE.split(":")
        label = f'LABEL {PACKAGES_LABEL}="{" ".join(PACKAGES)}"'
        import docker.errors

        try:
            client.api.import_image_from_file(str(tarball), repository=repo, tag=tag,
                                              changes=[label])
        except docker.errors.APIError as exc:
            raise SandboxUnavailable(f"dockerd could not import the Debian root as "
                                     f"{OFFLINE_BASE}: {exc.explanation or exc}") from exc


def setup(client: Any, *, source: str = "auto", mirror: str = DEFAULT_MIRROR,
          rebuild_base: bool = False, log: Callable[[str], None] = print) -> str:
    """Build the judge image; return its id. ``source``: auto | registry | debootstrap."""
    import docker.errors

    base = _choose_base(client, source, mirror, rebuild_base, log)
    with tempfile.TemporaryDirectory(prefix="rsi-bench-judge-") as ctx:
        shutil.copy(harness_dir() / "judge-image" / "Dockerfile", Path(ctx) / "Dockerfile")
        for path in RUNNER_FILES:
            shutil.copy(path, Path(ctx) / path.name)
        tag = judge_image()
        log(f"docker build {tag} FROM {base}")
        try:
            image, _logs = client.images.build(
                path=ctx, tag=tag, rm=True, forcerm=True, network_mode="none"
                if base == OFFLINE_BASE else None,
                buildargs={"BASE": base, "RUNNER_SHA256": runner_sha256(),
                           "PACKAGES": " ".join(PACKAGES)},
            )
        except docker.errors.BuildError as exc:
            raise SandboxUnavailable(f"building {tag} failed: {exc.msg}") from exc
        except docker.errors.APIError as exc:
            raise SandboxUnavailable(f"dockerd could not build {tag}: "
                                     f"{exc.explanation or exc}") from exc
    return str(image.id)


def _choose_base(client: Any, source: str, mirror: str, rebuild: bool,
                 log: Callable[[str], None]) -> str:
    import docker.errors

    def have(name: str) -> bool:
        try:
            client.images.get(name)
            return True
        except docker.errors.ImageNotFound:
            return False

    if source not in ("auto", "registry", "debootstrap"):
        raise SandboxUnavailable(f"unknown image source {source!r}: auto, registry or debootstrap")
    if source == "auto" and not have(OFFLINE_BASE) and shutil.which("debootstrap") is None:
        source = "registry"
    if source == "registry" or (source == "auto" and have(REGISTRY_BASE)):
        if not have(REGISTRY_BASE):
            log(f"docker pull {REGISTRY_BASE}")
            try:
                client.images.pull(REGISTRY_BASE)
            except docker.errors.APIError as exc:
                raise SandboxUnavailable(
                    f"cannot pull {REGISTRY_BASE} ({exc.explanation}); "
                    "use `--from debootstrap` to build offline"
                ) from exc
        return REGISTRY_BASE
    if rebuild or not have(OFFLINE_BASE):
        _debootstrap_base(client, mirror, log)
    else:
        log(f"reusing {OFFLINE_BASE} (pass --rebuild-base to make it again)")
    return OFFLINE_BASE
