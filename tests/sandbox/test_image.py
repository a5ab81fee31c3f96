"""The judge image carries the packages a solution may import, and a stale one is refused."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest
from sandboxes import require_backend

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.judge import Judge
from rsi_bench.sandbox import image
from rsi_bench.tasks.model import Task

PROBE = Task(
    id="unit/numpy_probe", entry_point="f", prompt="def f(x: int) -> int:\n    pass\n",
    reference="", tests="def check(candidate):\n    assert candidate(2) == 3\n",
)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    require_backend("docker")
    from rsi_bench.sandbox.docker_backend import _client

    yield _client()


def test_offline_base_is_named_by_its_package_set(monkeypatch: pytest.MonkeyPatch) -> None:
    before = image.packages_tag()
    monkeypatch.setattr(image, "PACKAGES", (*image.PACKAGES, "python3-scipy"))
    assert image.packages_tag() != before
    assert image.OFFLINE_BASE.endswith(before)
    assert {"python3", "python3-numpy"} <= set(image.PACKAGES)


@pytest.mark.docker
def test_the_judge_image_is_labelled_with_its_packages(client: object) -> None:
    found = client.images.get(image.judge_image())  # type: ignore[attr-defined]
    labels = found.labels or {}
    assert set(labels[image.PACKAGES_LABEL].split()) == set(image.PACKAGES)
    assert image.check_image(client) == found.id


@pytest.mark.docker
def test_an_image_without_the_packages_is_refused(client: object) -> None:
    # The same image with only its package label changed: what an image built before numpy was
    # added looks like (its runner label still matches, so only the package check can refuse it).
    stale = f"rsi-bench-judge:stale-packages-{os.getpid()}"
    dockerfile = f'FROM {image.judge_image()}\nLABEL {image.PACKAGES_LABEL}="python3"\n'
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=stale,  # type: ignore[attr-defined]
                        rm=True, network_mode="none")
    try:
        with pytest.raises(SandboxUnavailable, match=r"lacks the package\(s\) python3-numpy.*"
                                                     r"rsi-bench sandbox setup"):
            image.check_image(client, stale)
    finally:
        client.images.remove(stale, noprune=False)  # type: ignore[attr-defined]


@pytest.mark.docker
@pytest.mark.parametrize("source, status", [
    # numpy imports as the sandbox uid, and the proof is the uid check inside the solution
    ("import numpy as np, os\ndef f(x):\n"
     "    return int(np.array([x, 1]).sum()) if os.getuid() >= 60000 else -1\n", "pass"),
    ("import numpy_is_not_this\ndef f(x):\n    return x + 1\n", "error"),  # the control
])
def test_numpy_imports_in_the_judge(source: str, status: str) -> None:
    require_backend("docker")
    with Judge("docker", workers=1, timeout=30.0) as judge:
        verdict = judge.judge(PROBE, source)
    assert verdict.status == status, verdict.detail


class _RefusingDaemon:
    """A docker client whose daemon refuses the import and the build (as a dockerd that cannot
    remount its root refuses them), with the images the build would start from present."""

    def __init__(self) -> None:
        import docker.errors

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise docker.errors.APIError(
                "500 Server Error", explanation="Error processing tar file(exit status 1): "
                "remount /, flags: 0x84000: invalid argument")

        self.api = type("Api", (), {"import_image_from_file": staticmethod(refuse)})()
        self.images = type("Images", (), {"get": staticmethod(lambda name: name),
                                          "build": staticmethod(refuse)})()


def test_a_daemon_error_while_importing_the_base_is_one_clear_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setattr(image, "debootstrap_rootfs",
                        lambda rootfs, mirror, log: rootfs.mkdir(parents=True))
    monkeypatch.setattr(image.shutil, "which", lambda name: "/usr/sbin/debootstrap")
    with pytest.raises(SandboxUnavailable, match=r"dockerd could not import the Debian root "
                                                 r"as rsi-bench-base:.*remount /"):
        image._debootstrap_base(_RefusingDaemon(), "http://mirror.invalid", log=lambda _: None)


def test_a_daemon_error_while_building_is_one_clear_error() -> None:
    with pytest.raises(SandboxUnavailable, match=r"dockerd could not build rsi-bench-judge.*"
                                                 r"remount /"):
        image.setup(_RefusingDaemon(), source="debootstrap", log=lambda _: None)
