"""`rsi-bench experiment --executor ray` on a real two-node Ray cluster on this machine (a head
and one more node, separate processes), in Docker, with the simulated model: the same report
numbers as the local executor, also when the node holding a run is killed mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxes import require_backend

SPEC = """
[experiment]
name = "ray3x2"
suite = "rsi-core"
limit = 4
model = "simulated"
generations = 1
conditions = ["self", "noop", "fixed"]
seeds = [0, 1]
concurrency = 2
solve_timeout = 15
improve_timeout = 60
[plan]
parallel_runs = 2
"""

# Ray turns 127.0.0.1 into this machine's outward address unless multi-node clusters are off
# (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, in every process of the cluster and in the drivers); with
# them off `ray start --address` refuses to add a node, so this runs the same `ray start` with
# that one refusal lifted: every node then listens on loopback only
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
RAY_START = ("import sys; from ray._private import ray_constants, services; "
             "services.resolve_ip_for_localhost = lambda host: host; "
             "ray_constants.ENABLE_RAY_CLUSTER = True; "
             "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pids_with(marker: str) -> dict[int, str]:
    """Processes whose command line names ``marker`` (the cluster's private temp dir)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in cmd and int(entry.name) != os.getpid():
                found[int(entry.name)] = cmd
    return found


class Cluster:
    def __init__(self) -> None:
        # a short private temp dir: Ray's unix sockets live under it (path length limit)
        self.temp = tempfile.mkdtemp(prefix="rsray", dir="/tmp")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **LOOPBACK}

    def start(self) -> None:
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
        ray_start = [sys.executable, "-c", RAY_START, "start"]
        subprocess.run([*ray_start, "--head", f"--port={self.port}", f"--temp-dir={self.temp}",
                        "--include-dashboard=false", *common],
                       check=True, env=self.env, capture_output=True, timeout=120)
        self.head_pids = set(_pids_with(self.temp))
        subprocess.run([*ray_start, f"--address={self.address}", *common],
                       check=True, env=self.env, capture_output=True, timeout=120)
        deadline = time.monotonic() + 60
        while len(self.alive_nodes()) < 2:
            assert time.monotonic() < deadline, "the second node never joined"
            time.sleep(1)

    def nodes(self) -> list[dict[str, Any]]:
        code = (f"import json, ray; ray.init(address={self.address!r}, "
                "logging_level='ERROR', log_to_driver=False); "
                "print(json.dumps(ray.nodes()))")
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                             text=True, timeout=120, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n["Alive"]]

    def raylet_pid(self, node: dict[str, Any]) -> int:
        node_id = f"--node_id={node['NodeID']}"
        pids = [p for p, cmd in _pids_with(self.temp).items()
                if cmd.split(" ")[0].endswith("/raylet") and node_id in cmd.split(" ")]
        assert len(pids) == 1, pids
        return pids[0]

    def stop(self) -> None:
        for _ in range(3):
            for pid in _pids_with(self.temp):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while _pids_with(self.temp) and time.monotonic() < deadline:
                time.sleep(0.5)
            for pid in _pids_with(self.temp):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
            if not _pids_with(self.temp):
                break


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    pytest.importorskip("ray")
    require_backend("docker")
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()
        left = _pids_with(c.temp)
        assert not left, f"Ray processes left: {left}"
        ps = subprocess.run(["ps", "aux"], capture_output=True, text=True).stdout
        assert c.temp not in ps
        shutil.rmtree(c.temp, ignore_errors=True)
        assert not [cmd for cmd in left.values() if "raylet" in cmd or "gcs_server" in cmd]


def experiment(spec: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "rsi_bench.cli", "experiment", str(spec),
                             "--dir", str(out), "--replications", "200", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **LOOPBACK})


def numbers(out: Path) -> dict[str, Any]:
    """The report's numbers without paths and times (as tests/experiment/test_experiment.py
    compares them: calls as paid calls, a cache hit after a resume is never paid twice)."""
    data = json.loads((out / "report" / "results.json").read_text())
    for run in data["runs"]:
        run.pop("path", None)
        for generation in run["generations"]:
            generation.pop("time", None)
            cost = generation["cost"]
            hits = cost.pop("cache_hits")
            cost["paid_calls"] = cost.pop("calls") - hits
            del cost["solve_calls"], cost["improve_calls"]
    return {k: data[k] for k in ("conditions", "noise_floor", "runs")}


def committed(run_dir: Path) -> int:
    db_path = run_dir / "run.sqlite"
    if not db_path.exists():
        return 0
    with contextlib.suppress(sqlite3.OperationalError), \
            contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True,
                                               timeout=5)) as db:
        return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    return 0


def attempts(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "ray-attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    require_backend("docker")
    base = tmp_path_factory.mktemp("ray-ref")
    spec = base / "ray3x2.toml"
    spec.write_text(SPEC)
    proc = experiment(spec, base / "local")
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-2000:]
    return spec, numbers(base / "local")


@pytest.mark.docker
@pytest.mark.slow
def test_ray_gives_the_local_executors_numbers(cluster: Cluster, reference: Any,
                                               tmp_path: Path) -> None:
    spec, local = reference
    proc = experiment(spec, tmp_path / "ray", "--executor", "ray", "--address", cluster.address)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-2000:]
    assert "2 node(s) passed the sandbox check" in err
    assert numbers(tmp_path / "ray") == local
    used = {a["node_id"] for d in (tmp_path / "ray" / "runs").iterdir() for a in attempts(d)}
    assert len(used) == 2  # the runs were spread over both nodes


@pytest.mark.docker
@pytest.mark.slow
def test_a_node_killed_mid_run_is_retried_elsewhere_with_the_same_numbers(
        cluster: Cluster, reference: Any, tmp_path: Path) -> None:
    spec, local = reference
    nodes = cluster.alive_nodes()
    assert len(nodes) == 2
    head = next(n for n in nodes if cluster.raylet_pid(n) in cluster.head_pids)
    victim = next(n for n in nodes if n["NodeID"] != head["NodeID"])
    out = tmp_path / "ray"
    proc = experiment(spec, out, "--executor", "ray", "--address", cluster.address)
    deadline = time.monotonic() + 600
    target = None
    while target is None:  # a run on the victim node that has committed a result: no timing
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        for d in sorted((out / "runs").glob("*")) if (out / "runs").exists() else []:
            tries = attempts(d)
            if tries and tries[-1]["node_id"] == victim["NodeID"] and committed(d) >= 1:
                target = d
                break
        time.sleep(0.05)
    before = committed(target)
    os.kill(cluster.raylet_pid(victim), signal.SIGKILL)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-2000:]
    tries = attempts(target)
    assert [t["node_id"] for t in tries] == [victim["NodeID"], head["NodeID"]], tries
    assert before >= 1
    assert numbers(out) == local


def test_without_ray_one_clear_line(tmp_path: Path) -> None:
    spec = tmp_path / "ray3x2.toml"
    spec.write_text(SPEC)
    # a `ray` that cannot be imported: a package of that name that raises ImportError
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "rsi_bench.cli", "experiment", str(spec),
                           "--dir", str(tmp_path / "out"), "--executor", "ray"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and "pip install 'rsi-bench[ray]'" in lines[-1], proc.stderr
    assert not (tmp_path / "out").exists()  # nothing was started
