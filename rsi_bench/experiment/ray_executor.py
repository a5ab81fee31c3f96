"""The Ray executor of `rsi-bench experiment --executor ray`: each (condition, seed) run is one
Ray task that calls the same ``run_once`` on the node where it lands.

Storage: shared. Every node must see the experiment directory at the same path (one machine, or
a shared filesystem); a task writes its run directory there. Shipping run directories back to
the driver as archives (no shared storage) is not implemented.

Retries: a node that dies mid-run is a Ray system failure, so the task is run again (up to
``MAX_RETRIES`` times) on a node that is alive, and ``run_once`` resumes the run directory from
its last committed work. Two attempts never write at once: ``run_once`` holds the run directory's
``.lock`` (flock) while it runs, and a new attempt waits for the dead attempt's lock to be
released (the kernel releases it when that process is gone) before it starts.

Keys: each task's ``run_once`` starts its own broker on its node, with that node's environment;
nothing travels with the task but the run's config and its directory's path.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rsi_bench.errors import InputError

MAX_RETRIES = 3
LOCK_WAIT_S = 300.0  # how long a retried attempt waits for a dead attempt's run lock
ATTEMPTS = "ray-attempts.jsonl"  # one line per attempt that started in a run directory
INSTALL_LINE = ("--executor ray needs Ray: pip install 'rsi-bench[ray]'")

Echo = Callable[[str], None]


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_LINE) from None
    return ray


def _wait_for_lock(run_dir: Path, timeout: float) -> None:
    """Wait until no live process holds the run directory's lock (a dead attempt's is released
    by the kernel once its process is gone): a blocking flock, woken by that release."""
    run_dir.mkdir(parents=True, exist_ok=True)
    f = (run_dir / ".lock").open("w")
    free = threading.Event()

    def take() -> None:  # after a timeout it stays blocked, then lets go at once
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
            fcntl.flock(f, fcntl.LOCK_UN)
        finally:
            f.close()
            free.set()

    threading.Thread(target=take, daemon=True, name="run-lock-wait").start()
    if not free.wait(timeout):
        raise InputError(f"{run_dir} is still in use by another attempt after {int(timeout)} s")


def run_task(config: Any, run_dir: str, stop_dir: str) -> dict[str, Any]:
    """One attempt of one run, on the node where Ray placed it. Returns the outcome; a run that
    raises is an outcome ("error"), never a Ray retry: only a lost node is retried."""
    import ray

    from rsi_bench.experiment.runner import finished
    from rsi_bench.loop.runner import run_once

    path = Path(run_dir)
    node = ray.get_runtime_context().get_node_id()
    try:
        _wait_for_lock(path, LOCK_WAIT_S)
        with (path / ATTEMPTS).open("a") as f:
            f.write(json.dumps({"node_id": node, "pid": os.getpid(),
                                "host": socket.gethostname(), "at": time.time()}) + "\n")
        # only a live process that is not an attempt (`rsi-bench run` on this directory) can
        # take the lock between the wait and here: then this attempt stops, named, as it should
        rows = run_once(config, path, None, stop_dirs=(Path(stop_dir),))
    except Exception as exc:  # noqa: BLE001 - per run: named by the driver
        return {"node_id": node, "error": f"{type(exc).__name__}: {exc}"}
    if not finished(rows, config.generations):
        return {"node_id": node, "error": "it stopped before its last generation"}
    return {"node_id": node, "error": None}


def node_check(backend: str) -> tuple[str, bool, str]:
    """On one node: what `rsi-bench sandbox doctor` checks for this backend (docker and the
    judge image, for real)."""
    from rsi_bench.errors import RsiBenchError
    from rsi_bench.sandbox.admin import _check

    host = socket.gethostname()
    try:
        check = _check(backend)
    except RsiBenchError as exc:
        return host, False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a check reports, it does not crash
        return host, False, f"{type(exc).__name__}: {exc}"
    return host, check.ok, check.detail


class Connection:
    """A driver joined to the cluster, with the node checks already sent: the caller does other
    work (the plan) while the nodes check themselves; ``nodes()`` waits for the verdicts."""

    def __init__(self, ray: Any, address: str | None, backends: set[str]) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = ray
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        try:
            self.alive = [n for n in ray.nodes() if n.get("Alive")]
            if not self.alive:
                raise InputError("the Ray cluster has no alive node")
            remote = ray.remote(num_cpus=0, max_retries=0)(node_check)
            self.pending = []
            for node in self.alive:  # once per node (and backend), pinned there
                strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
                for backend in sorted(backends):
                    self.pending.append(
                        (node, backend, remote.options(scheduling_strategy=strategy).remote(
                            backend)))
        except BaseException:
            ray.shutdown()
            raise

    def nodes(self) -> list[dict[str, Any]]:
        """The alive nodes, once every one has passed; else one line naming the first that
        failed."""
        for node, backend, ref in self.pending:
            _, ok, detail = self.ray.get(ref)
            if not ok:
                raise InputError(f"Ray node {node['NodeManagerAddress']} ({node['NodeID'][:12]}) "
                                 f"fails the sandbox check for {backend}: {detail}; run "
                                 "`rsi-bench sandbox doctor` there")
        return self.alive

    def close(self) -> None:
        self.ray.shutdown()


def connect(spec: Any, address: str | None) -> Connection:
    """Join the cluster and send every node its sandbox check for the experiment's backends."""
    ray = import_ray()
    backends = {spec.run_config(c, s).backend for c in spec.conditions for s in spec.seeds}
    return Connection(ray, address, backends)


def run_all_ray(spec: Any, out_dir: Path, *, address: str | None, echo: Echo,
                connection: Connection | None = None) -> list[Path]:
    """Run (or resume) every (condition, seed) as a Ray task; the run directories in spec
    order. Same contract as ``runner.run_all``. Nothing is scheduled before every node passed
    its check. ``connection`` (from ``connect``, closed here) or ``address`` to join."""
    from rsi_bench.experiment.runner import finished_runs, prepare

    connection = connection or connect(spec, address)
    ray = connection.ray
    try:
        prepare(spec, out_dir)
        out_dir = out_dir.resolve()
        plan = [(c, s) for c in spec.conditions for s in spec.seeds]
        names = [spec.run_name(c, s) for c, s in plan]
        configs = {spec.run_name(c, s): spec.run_config(c, s) for c, s in plan}
        nodes = connection.nodes()
        echo(f"ray: {len(nodes)} node(s) passed the sandbox check")
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES,
                            retry_exceptions=False)(run_task)
        refs = {remote.remote(configs[n], str(out_dir / "runs" / n), str(out_dir)): n
                for n in names}
        problems: dict[str, str] = {}
        waiting = list(refs)
        while waiting:  # woken by each finished task, no polling
            ready, waiting = ray.wait(waiting, num_returns=1)
            name = refs[ready[0]]
            try:
                outcome = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - out of retries: an infrastructure event
                problems[name] = f"its Ray task failed ({type(exc).__name__}: {exc})"
                echo(f"[{name}] failed on Ray")
                continue
            if outcome["error"]:
                problems[name] = outcome["error"]
                echo(f"[{name}] did not finish: {outcome['error']}")
            else:
                echo(f"[{name}] finished on node {outcome['node_id'][:12]}")
    finally:
        connection.close()
    return finished_runs(out_dir, names, problems)
