"""Registering gVisor's runsc with dockerd: the daemon.json edit, and a real reload.

The file logic runs on a daemon.json in tmp_path. The reload runs against a private dockerd on
its own socket, data root and pid file (never the machine's dockerd), which this module starts
and stops.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxes import IN_CI

from rsi_bench.errors import InputError, SandboxUnavailable
from rsi_bench.loop.config import RunConfig
from rsi_bench.sandbox import parse_backend, with_runtime
from rsi_bench.sandbox.runtime import RUNSC_ARGS, check_registered, find_binary, register

RUNSC = find_binary("runsc")
needs_runsc = pytest.mark.skipif(RUNSC is None and not IN_CI, reason="no runsc binary here")


def test_backend_names_carry_the_runtime() -> None:
    assert parse_backend("docker:runsc") == ("docker", "runsc")
    assert parse_backend("docker:runc") == ("docker", "")  # the default is never spelled out
    assert with_runtime("docker", "runsc") == "docker:runsc"
    assert with_runtime("docker", "runc") == with_runtime("docker", None) == "docker"
    for bad in [("bubblewrap", "runsc"), ("docker:runsc", "kata")]:
        with pytest.raises(SandboxUnavailable):
            with_runtime(*bad)
    for name in ("docker:", "docker:a b", "local:runsc", "podman"):
        with pytest.raises(SandboxUnavailable):
            parse_backend(name)


def test_the_run_config_stores_the_runtime_and_old_runs_keep_their_fingerprint() -> None:
    assert RunConfig(sandbox="docker:runsc") == RunConfig(runtime="runsc")
    assert RunConfig(runtime="runsc").backend == "docker:runsc"
    assert RunConfig(runtime="runsc").to_dict()["runtime"] == "runsc"
    assert "runtime" not in RunConfig(runtime="runc").to_dict()
    assert RunConfig(runtime="runc").fingerprint() == RunConfig().fingerprint()
    with pytest.raises(InputError, match="docker"):
        RunConfig(sandbox="bubblewrap", runtime="runsc")


@needs_runsc
def test_register_merges_into_daemon_json_and_backs_it_up(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    before = {"log-driver": "local", "runtimes": {"kata": {"path": "/usr/bin/kata"}}}
    path.write_text(json.dumps(before))
    done = register("runsc", daemon_json=path, is_root=True)
    assert done.ok, done.todo
    after = json.loads(path.read_text())
    assert after["log-driver"] == "local"
    assert after["runtimes"]["kata"] == before["runtimes"]["kata"]
    assert after["runtimes"]["runsc"] == {"path": RUNSC, "runtimeArgs": list(RUNSC_ARGS)}
    (backup,) = tmp_path.glob("daemon.json.bak-*")
    assert json.loads(backup.read_text()) == before
    again = register("runsc", daemon_json=path, is_root=True)
    assert again.ok and any("already registers" in line for line in again.done)
    assert len(list(tmp_path.glob("daemon.json.bak-*"))) == 1  # nothing to change, no backup


@needs_runsc
def test_an_existing_entry_keeps_its_flags_and_gains_the_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"runtimes": {"runsc": {
        "path": "/opt/runsc", "runtimeArgs": ["--platform=kvm", "--host-uds=none"]}}}))
    assert register("runsc", daemon_json=path, is_root=True).ok
    entry = json.loads(path.read_text())["runtimes"]["runsc"]
    assert entry == {"path": "/opt/runsc",
                     "runtimeArgs": ["--platform=kvm", "--host-uds=open", "--network=none"]}


@needs_runsc
@pytest.mark.parametrize("content, says", [
    ("{not json", "not readable JSON"),
    ('["a list"]', "no JSON object with a runtimes table"),
])
def test_a_daemon_json_it_cannot_read_is_left_alone(tmp_path: Path, content: str,
                                                    says: str) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(content)
    done = register("runsc", daemon_json=path, is_root=True)
    assert not done.ok and says in done.todo[0] and '"--host-uds=open"' in done.todo[0]
    assert path.read_text() == content


@needs_runsc
def test_without_root_it_says_exactly_what_to_merge(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    done = register("runsc", daemon_json=path, is_root=False)
    assert not done.ok and not path.exists()
    (todo,) = done.todo
    assert "not root" in todo and json.dumps({"runtimes": {"runsc": {
        "path": RUNSC, "runtimeArgs": list(RUNSC_ARGS)}}}) in todo and "kill -HUP" in todo


def test_without_the_binary_it_says_how_to_install_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rsi_bench.sandbox.runtime.find_binary", lambda _name: None)
    done = register("runsc", daemon_json=tmp_path / "daemon.json", is_root=True)
    assert not done.ok and "apt-get install runsc" in done.todo[0]
    assert not (tmp_path / "daemon.json").exists()


# ---------------------------------------------------------------- a real reload


@pytest.fixture(scope="module")
def private_dockerd() -> Iterator[dict[str, Any]]:
    """A dockerd of our own (socket, data root, exec root, pid file, daemon.json in a temp
    dir); stopped and removed at the end."""
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI needs dockerd and root to test the runtime registration")
        pytest.skip("needs dockerd and root")
    import docker

    root = Path(tempfile.mkdtemp(prefix="rsi-dockerd-", dir="/tmp"))  # short: a socket path
    (root / "daemon.json").write_text('{"log-level": "warn"}\n')
    sock = root / "d.sock"
    proc = subprocess.Popen(
        ["dockerd", "--host", f"unix://{sock}", "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "d.pid"),
         "--config-file", str(root / "daemon.json"), "--bridge=none", "--iptables=false",
         "--ip6tables=false", "--containerd-namespace", "rsi-bench-test",
         "--containerd-plugins-namespace", "rsi-bench-test-plugins"],
        stdout=subprocess.DEVNULL, stderr=(root / "log").open("w"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:  # the client asks for the API version at once: no socket yet is an error
                client = docker.DockerClient(base_url=f"unix://{sock}", timeout=30)
                client.ping()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"private dockerd did not start: {(root / 'log').read_text()}")
                time.sleep(0.5)
        yield {"client": client, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@needs_runsc
@pytest.mark.docker
@pytest.mark.runsc
@pytest.mark.slow
def test_register_reloads_a_running_dockerd(private_dockerd: dict[str, Any]) -> None:
    client, root = private_dockerd["client"], private_dockerd["root"]
    with pytest.raises(SandboxUnavailable, match="sandbox setup --runtime runsc"):
        check_registered(client, "runsc")  # the control: not registered yet, and it says so
    done = register("runsc", daemon_json=root / "daemon.json", pidfile=root / "d.pid",
                    client=client)
    assert done.ok, done.todo
    assert "dockerd reloaded: runsc is available" in done.done
    check_registered(client, "runsc")  # raises if the entry or its flags are missing
    assert json.loads((root / "daemon.json").read_text())["log-level"] == "warn"


def test_verify_checks_again_in_the_bundles_runtime_unless_told_otherwise() -> None:
    from rsi_bench.bundle.rerun import run_backend

    made_on_gvisor = RunConfig(runtime="runsc").to_dict()
    assert run_backend("docker", None, made_on_gvisor) == "docker:runsc"
    assert run_backend("docker", "runc", made_on_gvisor) == "docker"
    assert run_backend("docker", None, RunConfig().to_dict()) == "docker"
    assert run_backend("docker:runsc", None, RunConfig().to_dict()) == "docker:runsc"
    assert run_backend("docker", "runsc", {}) == "docker:runsc"


@pytest.mark.docker
def test_the_runtime_reaches_the_judge_from_the_option_and_the_environment(tmp_path: Path) -> None:
    import sys

    from sandboxes import require_backend

    require_backend("docker")

    def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rsi_bench.cli", *args], text=True,
                              capture_output=True, timeout=120, env={**os.environ, **env})

    for done in (cli("score", "--reference", "--out", str(tmp_path), "--runtime", "nosuchrt"),
                 cli("tasks", "validate", RSI_BENCH_RUNTIME="nosuchrt"),
                 cli("run", "--model", "simulated", "--run-dir", str(tmp_path / "r"),
                     RSI_BENCH_RUNTIME="nosuchrt")):
        assert done.returncode != 0
        assert "docker runtime 'nosuchrt' is not registered with dockerd" in done.stderr, \
            done.stderr[-500:]
    mixed = cli("score", "--reference", "--sandbox", "bubblewrap", "--runtime", "runsc")
    assert mixed.returncode == 2 and "needs the docker sandbox" in mixed.stderr
