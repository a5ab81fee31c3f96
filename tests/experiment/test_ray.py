"""`rsi-bench experiment --executor ray` on a real two-node Ray cluster on this machine (a head
and one more node, separate processes, loopback only: tests/ray_cluster.py), in Docker, with the
simulated model: the same report numbers as the local executor, also when the node holding a run
is killed mid-experiment."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_cluster import LOOPBACK, Cluster, non_loopback_sockets
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
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path, Any]]:
    """The cluster, the experiment file and the local executor's numbers for it: the local
    experiment runs while the cluster starts (its numbers do not depend on load)."""
    pytest.importorskip("ray")
    require_backend("docker")
    base = tmp_path_factory.mktemp("ray-ref")
    spec = base / "ray3x2.toml"
    spec.write_text(SPEC)
    local = experiment(spec, base / "local")
    cluster = Cluster(nodes=2)
    try:
        cluster.start()
        _, err = local.communicate(timeout=900)
        assert local.returncode == 0, err[-2000:]
        yield cluster, spec, numbers(base / "local")
        # the probe of what is left sees every process of the cluster, renamed ones included
        # (ray::DashboardAgent and the like, whose command line no longer names the cluster)
        assert any(cmd.startswith("ray::") for cmd in cluster.pids().values())
    finally:
        if local.poll() is None:
            local.kill()
            local.communicate()
        left = cluster.stop()
    assert not left, f"Ray processes left: {left}"
    assert not Path(cluster.temp).exists()


@pytest.mark.docker
@pytest.mark.slow
def test_ray_gives_the_local_numbers_also_when_a_node_dies_mid_experiment(
        world: tuple[Cluster, Path, Any], tmp_path: Path) -> None:
    """One experiment proves both: runs on both nodes that nothing disturbs, and a run whose
    node is killed after it has committed work (once that node has finished a run of its own)
    is retried on the other node, resumes, and the report's numbers are the local executor's:
    nothing counted twice, no budget paid twice."""
    cluster, spec, local = world
    nodes = cluster.alive_nodes()
    assert len(nodes) == 2
    head = next(n for n in nodes if cluster.raylet_pid(n) in cluster.head_session_pids())
    victim = next(n for n in nodes if n["NodeID"] != head["NodeID"])
    out = tmp_path / "ray"
    proc = experiment(spec, out, "--executor", "ray", "--address", cluster.address)
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 900
    target = None
    while target is None:  # progress, never a timing, decides when to kill
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)[-2000:]
        done = {line.split("]")[0][1:] for line in list(lines) if " finished on node " in line}
        by_victim = [line for line in list(lines)
                     if line.rstrip().endswith(f"finished on node {victim['NodeID'][:12]}")]
        for d in sorted((out / "runs").glob("*")) if by_victim else []:
            tries = attempts(d)
            if (tries and tries[-1]["node_id"] == victim["NodeID"] and d.name not in done
                    and committed(d) >= 1):
                target = d
                break
        time.sleep(0.05)
    before = committed(target)
    os.kill(cluster.raylet_pid(victim), signal.SIGKILL)
    proc.wait(timeout=900)
    reader.join()
    err = "".join(lines)
    assert proc.returncode == 0, err[-2000:]
    assert "2 node(s) passed the sandbox check" in err
    tries = attempts(target)
    assert [t["node_id"] for t in tries] == [victim["NodeID"], head["NodeID"]], tries
    assert before >= 1
    finished_on = {a["node_id"] for d in (out / "runs").iterdir() if d != target
                   for a in attempts(d)}
    assert finished_on == {victim["NodeID"], head["NodeID"]}  # undisturbed runs on both
    assert numbers(out) == local
    # loopback only: no process of the cluster has a socket on any other address (the
    # victim's are gone; the head's, its workers' included, are checked)
    assert non_loopback_sockets(set(cluster.pids())) == []


def test_the_socket_probe_sees_a_listener_that_is_not_loopback() -> None:
    """The control for the loopback check above: sockets this process opens on the wildcard
    address are reported, a loopback one is not."""
    with socket.socket() as inside, socket.socket(socket.AF_INET6) as outward, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        inside.bind(("127.0.0.1", 0))
        inside.listen()
        assert non_loopback_sockets({os.getpid()}) == []
        outward.bind(("::", 0))
        outward.listen()
        udp.bind(("0.0.0.0", 0))
        found = non_loopback_sockets({os.getpid()})
        assert len(found) == 2 and any("tcp6 :::" in f for f in found), found
        assert any(f"udp 0.0.0.0:{udp.getsockname()[1]}" in f for f in found), found


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
