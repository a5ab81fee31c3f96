"""A real multi-node Ray cluster on this machine, on loopback only: a head and more nodes, each
its own `ray start` processes, for tests/experiment/test_ray.py and benchmarks/ray_executor.py.

Loopback: Ray turns 127.0.0.1 into this machine's outward address unless multi-node clusters are
off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, in every process of the cluster and in the drivers:
then every address Ray derives itself is 127.0.0.1); with them off `ray start --address`
refuses to add a node, so each node runs the same `ray start` with that one refusal lifted (in
that process only) and its localhost rewriting turned off. Every port a node would otherwise
take from a fixed default (client server 10001, agent 52365, metrics 44217/44227, workers
10002-19999) is a free one chosen here or left to the kernel (port 0), so two clusters on one
machine never meet.

Processes: each `ray start` runs in its own session, and every process of its node (raylet,
agents, workers, which rename themselves ``ray::...``) inherits that session: the cluster is
exactly the processes of its sessions, and ``stop`` ends them all and waits until none is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
            # the autoscaler's and the dashboard's metrics ports have no `ray start` option
            "AUTOSCALER_METRIC_PORT": "0", "DASHBOARD_METRIC_PORT": "0"}
RAY_START = ("import sys; from ray._private import ray_constants, services; "
             "services.resolve_ip_for_localhost = lambda host: host; "
             "ray_constants.ENABLE_RAY_CLUSTER = True; "
             "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_pids(sessions: set[int]) -> dict[int, str]:
    """Every live (not zombie) process in one of ``sessions``, with its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[3]) not in sessions:
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found[int(entry.name)] = cmd.strip()
    return found


def _address(hex_addr: str) -> tuple[str, int]:
    """/proc/net/{tcp,udp}{,6} ``ADDR:PORT`` (hex, host byte order in 32-bit words)."""
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(words) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, words), int(port, 16)


def _loopback(host: str) -> bool:
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


def non_loopback_sockets(pids: set[int]) -> list[str]:
    """The internet sockets (TCP, UDP; v4, v6) of ``pids`` whose local address, or peer
    address when connected, is not loopback (a wildcard listener counts: it listens outward)."""
    table = {}
    for name in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                f = line.split()
                table[f[9]] = (name, _address(f[1]), _address(f[2]))
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if not target.startswith("socket:["):
                        continue
                    entry = table.get(target[8:-1])
                    if entry is None:  # a unix socket, or gone
                        continue
                    kind, (lhost, lport), (rhost, rport) = entry
                    connected = rport != 0
                    if not _loopback(lhost) or (connected and not _loopback(rhost)):
                        found.append(f"pid {pid} {kind} {lhost}:{lport} -> {rhost}:{rport}")
    return found


class Cluster:
    """``Cluster(nodes=2).start()``; ``address`` for ``ray.init`` and ``--address``."""

    def __init__(self, nodes: int = 2, cpus: int = 1) -> None:
        self.n_nodes, self.cpus = nodes, cpus
        # a short private temp dir: Ray's unix sockets live under it (path length limit)
        self.temp = tempfile.mkdtemp(prefix="rsray", dir="/tmp")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **LOOPBACK}
        self.sessions: list[int] = []  # one per node, the head's first

    def _ray_start(self, *args: str) -> None:
        # port 0: the kernel picks a free one when the process binds it (no race)
        ports = [f"--{p}-port=0" for p in (
            "node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc",
            "runtime-env-agent", "metrics-export", "min-worker", "max-worker")]
        proc = subprocess.Popen(
            [sys.executable, "-c", RAY_START, "start", *args, "--node-ip-address=127.0.0.1",
             f"--num-cpus={self.cpus}", "--disable-usage-stats", *ports],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        self.sessions.append(proc.pid)
        out, _ = proc.communicate(timeout=180)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{out[-3000:]}")

    def start(self) -> Cluster:
        try:
            self._ray_start("--head", f"--port={self.port}", f"--temp-dir={self.temp}",
                            "--include-dashboard=false",
                            f"--ray-client-server-port={free_port()}")
            for _ in range(self.n_nodes - 1):
                self._ray_start(f"--address={self.address}")
            deadline = time.monotonic() + 120
            while len(self.alive_nodes()) < self.n_nodes:
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster's nodes never all joined")
                time.sleep(0.5)
        except BaseException:
            self.stop()
            raise
        return self

    def nodes(self) -> list[dict[str, Any]]:
        code = (f"import json, ray; ray.init(address={self.address!r}, "
                "logging_level='ERROR', log_to_driver=False); "
                "print(json.dumps(ray.nodes()))")
        out = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True,
                             text=True, timeout=120, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n["Alive"]]

    def pids(self) -> dict[int, str]:
        return session_pids(set(self.sessions))

    def raylet_pid(self, node: dict[str, Any]) -> int:
        node_id = f"--node_id={node['NodeID']}"
        pids = [p for p, cmd in self.pids().items()
                if cmd.split(" ")[0].endswith("/raylet") and node_id in cmd.split(" ")]
        assert len(pids) == 1, pids
        return pids[0]

    def head_session_pids(self) -> set[int]:
        return set(session_pids({self.sessions[0]})) if self.sessions else set()

    def stop(self) -> dict[int, str]:
        """End every process of the cluster (SIGTERM, then SIGKILL for what is left after a few
        seconds); remove the temp dir. Returns what was still alive (nothing, normally)."""
        sessions = set(self.sessions)
        for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 20.0)):
            for pid in session_pids(sessions):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while session_pids(sessions) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not session_pids(sessions):
                break
        shutil.rmtree(self.temp, ignore_errors=True)
        return session_pids(sessions)


if __name__ == "__main__":  # python tests/ray_cluster.py: start one, print it, stop on Enter
    cluster = Cluster().start()
    print(json.dumps({"address": cluster.address, "pids": cluster.pids()}, indent=1))
    with contextlib.suppress(KeyboardInterrupt, EOFError):
        input("Enter stops it> ")
    print("left:", cluster.stop())
