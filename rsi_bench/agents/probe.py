"""Sandbox events of one agent job, as the container's root sees them. Standard library only;
the agent runner loads this file by path (it sits beside the runner in the container).

The runner (root) reads the counters below before it forks the agent's process and again after
every process of the agent's uid is dead, and watches the uid's tasks while the job runs. The
agent runs as another uid: it can make these counters move, never make them go back, and it
cannot reach the runner's reply. What each source can see, per backend:

- ``network``: the sandbox's own network namespace counters (``/proc/net/snmp``, ``snmp6``):
  every backend has its own namespace (docker ``--network none``, bubblewrap
  ``--unshare-net``; gVisor keeps its own counters, which count failed TCP opens but not a UDP
  datagram with no route);
- ``pids``: the agent's uid reached its task limit (its processes' threads, counted every
  0.25 s, when the agent's process ends and before the uid is killed: a burst of processes that
  all end between two counts is not seen; and the pids controller's ``max`` count where a
  cgroup is mounted: docker on runc);
- ``memory``: the memory controller's OOM kills and limit hits (docker on runc only: gVisor and
  bubblewrap show no cgroup inside; there a job's memory is bounded by ``RLIMIT_AS``, whose
  refusals only the agent's own process sees), and an agent process killed by SIGKILL that the
  runner did not send;
- ``cpu``: the agent's process was killed for its CPU time limit (SIGXCPU);
- ``time``: the job ran out of the agent's own time;
- ``output``: the agent's reply went over the runner's cap, or its prints over the output cap
  (only their tail is kept);
- ``process``: processes of the agent's uid were still alive when its own process had ended
  (a daemon left for a later job, a child never waited for); the runner kills them, and every
  backend shows them.
"""

from __future__ import annotations

import os
import signal
import time

SNMP = ("/proc/net/snmp", "/proc/net/snmp6")
# counters that move only when something in the namespace sends, or tries to
NET_KEYS = ("Ip.OutRequests", "Ip.OutNoRoutes", "Ip.OutDiscards", "Tcp.ActiveOpens",
            "Tcp.AttemptFails", "Tcp.OutRsts", "Udp.OutDatagrams", "Udp.NoPorts",
            "Icmp.OutMsgs", "Ip6OutRequests", "Ip6OutNoRoutes", "Udp6OutDatagrams",
            "Udp6NoPorts")
# (file, counter, kind) in cgroup v1 and v2 layouts, as mounted in the container
CGROUP = (("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill", "memory"),
          ("/sys/fs/cgroup/memory/memory.failcnt", "", "memory"),
          ("/sys/fs/cgroup/memory.events", "oom_kill", "memory"),
          ("/sys/fs/cgroup/memory.events", "max", "memory"),
          ("/sys/fs/cgroup/pids/pids.events", "max", "pids"),
          ("/sys/fs/cgroup/pids.events", "max", "pids"))
SAMPLE_S = 0.25


def net_counters() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in SNMP:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        if path.endswith("6"):  # one "name value" pair a line
            for line in lines:
                parts = line.split()
                if len(parts) == 2 and parts[1].isdigit():
                    found[parts[0]] = int(parts[1])
            continue
        for head, values in zip(lines[::2], lines[1::2], strict=False):
            prefix = head.split(":", 1)[0]
            for name, value in zip(head.split()[1:], values.split()[1:], strict=False):
                if value.lstrip("-").isdigit():
                    found[f"{prefix}.{name}"] = int(value)
    return found


def cgroup_counters() -> dict[str, int]:
    found: dict[str, int] = {}
    for path, key, _kind in CGROUP:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if not key:
            if text.strip().isdigit():
                found[path] = int(text.strip())
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
                found[f"{path}:{key}"] = int(parts[1])
    return found


def _tasks(uid: int) -> int:
    """Live tasks (threads) of ``uid``: what its RLIMIT_NPROC counts."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            # a zombie holds its slot until it is reaped; a dead task holds none
            count += 1 if fields[0] == b"Z" else 0 if fields[0] == b"X" else int(fields[17])
        except (OSError, IndexError, ValueError):
            pass
    return count


class Probe:
    """``Probe(uid, nproc)`` before the fork; ``sample()`` while the job runs; ``events(...)``
    once every process of the uid is dead."""

    def __init__(self, uid: int, nproc: int, enabled: bool = True) -> None:
        """``enabled=False`` where the sandbox is the host (the ``local`` backend): its counters
        and its uid are everyone's, so nothing here would be the job's."""
        self.uid, self.nproc, self.enabled = uid, nproc, enabled
        self.net = net_counters() if enabled else {}
        self.cgroup = cgroup_counters() if enabled else {}
        self.peak, self._at = 0, 0.0

    def sample(self, force: bool = False, reaped: int = 0) -> None:
        """``reaped``: tasks of the uid the runner has just reaped (the agent's process, which
        held a slot until then)."""
        now = time.monotonic()
        if self.enabled and (force or now - self._at >= SAMPLE_S):
            self._at = now
            self.peak = max(self.peak, _tasks(self.uid) + reaped)

    def events(self, *, timed_out: bool, exit_status: int | None, result_bytes: int,
               result_cap: int, output_bytes: int, output_cap: int,
               outlived: int = 0) -> list[dict[str, str]]:
        """``outlived``: processes of the uid the runner killed after the agent's own process
        had ended (a daemon, a child it never waited for)."""
        out: list[dict[str, str]] = []
        if not self.enabled:
            return out

        def add(kind: str, detail: str) -> None:
            out.append({"kind": kind, "detail": detail[:300], "source": "container_root"})

        net = net_counters()
        moved = {k: net.get(k, 0) - self.net.get(k, 0) for k in NET_KEYS
                 if net.get(k, 0) != self.net.get(k, 0)}
        if moved:
            add("network", "network counters moved: " + ", ".join(
                f"{k} +{v}" for k, v in sorted(moved.items())))
        after = cgroup_counters()
        for path, key, kind in CGROUP:
            name = f"{path}:{key}" if key else path
            if after.get(name, 0) > self.cgroup.get(name, 0):
                add(kind, f"{os.path.basename(path)} {key or 'count'} "
                    f"+{after[name] - self.cgroup.get(name, 0)}")
        if self.peak >= self.nproc:
            add("pids", f"the agent's uid reached its limit of {self.nproc} tasks")
        if timed_out:
            add("time", "the job ran out of the agent's own time")
        elif exit_status is not None and os.WIFSIGNALED(exit_status):
            sig = os.WTERMSIG(exit_status)
            if sig == signal.SIGXCPU:
                add("cpu", "the agent's process was killed for its CPU time limit")
            elif sig == signal.SIGKILL:
                add("memory", "the agent's process was killed by SIGKILL, which the runner "
                    "did not send (the OOM killer's signal)")
        if outlived:
            add("process", f"{outlived} processes of the agent's uid outlived its process "
                "(the runner killed them)")
        if result_bytes > result_cap:
            add("output", f"the agent's reply is over {result_cap} bytes")
        if output_bytes > output_cap:
            add("output", f"the agent printed {output_bytes} bytes, over the {output_cap} "
                "kept (its last 4 KiB are)")
        return out
