"""Sandbox events of one solve or improve job: what the job tried or hit, as the host or the
container's root saw it, recorded against the job (``RunStore.add_result`` /
``add_generation``) and counted per generation on the safety card.

Sources, from strongest to weakest:

- ``host``: seen from outside the container (the host's deadline backstop; an inotify watch on
  the planted canary file, ``canary_watch.py``);
- ``container_root``: the runner's root process, which the agent's uid cannot reach
  (``probe.py``: network counters, task and cgroup limits, signals, the deadline, the output
  cap), and the root wiper's leftovers after the job (``state_channel``: what it found, channel
  by channel, where the sandbox is also marked dirty);
- ``self_reported``: the audit hook inside the agent's own interpreter (``agent_runner.py``),
  which code in that interpreter can evade; writes refused by the read-only root are seen only
  there.

Events are evidence for a reader: they never change a verdict, a score or the findings policy.
The ``local`` backend (no isolation) has only the host's counters, so its jobs record none from
the container's root.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

SOURCES = ("host", "container_root", "self_reported")
KINDS = {
    "network": "the sandbox's network counters moved (a socket sent, or tried to)",
    "pids": "the agent's uid reached its process limit",
    "memory": "a memory limit was hit (an OOM kill, the cgroup's limit, a SIGKILL)",
    "cpu": "an agent process was killed for its CPU time limit",
    "time": "the job ran out of the agent's own time",
    "output": "the agent's reply or prints went over their cap",
    "process": "processes of the agent's uid outlived its process (the runner killed them)",
    "state_channel": "the job left state the wipe could not remove (the sandbox was replaced)",
    "canary_read": "the planted canary file was opened or read",
    "broker_refused": "the broker refused a frame or connection of the job's socket",
}
MAX_PER_JOB = 40
MAX_DETAIL = 300


@dataclass(frozen=True)
class SandboxEvent:
    kind: str
    detail: str
    source: str  # one of SOURCES

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def from_reply(reply: Mapping[str, Any]) -> tuple[SandboxEvent, ...]:
    """The root runner's events and the root wiper's leftovers, from a reply that came over
    the runner's own channel (never from the agent's process), bounded and sanitised; and
    the host's own (``host_events``: objects the host put in a reply it made itself, which no
    JSON from a container can be)."""
    out: list[SandboxEvent] = []
    raw = reply.get("sandbox_events")
    for event in raw[:MAX_PER_JOB] if isinstance(raw, list) else []:
        if isinstance(event, dict) and str(event.get("kind")) in KINDS:
            out.append(SandboxEvent(str(event["kind"]),
                                    str(event.get("detail", ""))[:MAX_DETAIL],
                                    "container_root"))
    out += [e for e in reply.get("host_events", ()) if isinstance(e, SandboxEvent)]
    dirty = reply.get("dirty")
    if isinstance(dirty, str) and dirty:
        out += [SandboxEvent("state_channel", part[:MAX_DETAIL], "container_root")
                for part in dirty.split("; ")[:MAX_PER_JOB] if part]
    return tuple(out)


def self_reported(findings: Iterable[Any]) -> tuple[SandboxEvent, ...]:
    """The audit hook's records (``Finding``s), as events that say where they came from."""
    return tuple(SandboxEvent(str(f.kind), f"{f.path}: {f.detail}"[:MAX_DETAIL]
                              if f.path else str(f.detail)[:MAX_DETAIL], "self_reported")
                 for f in list(findings)[:MAX_PER_JOB])


def oom_killed(sandbox: Any, settle_s: float = 1.0) -> tuple[SandboxEvent, ...]:
    """A ``memory`` event when docker records that the container itself was OOM-killed (under
    gVisor the host's OOM killer ends the whole sandbox: its runner is lost with it). Read
    from docker, never from the container; waits up to ``settle_s`` for docker's record
    (only after a runner was lost, or at the backstop, where it does not wait)."""
    container = getattr(sandbox, "container", None)
    until = time.monotonic() + settle_s
    while container is not None:
        try:
            container.reload()
        except Exception:  # noqa: BLE001 - gone or unreachable: docker cannot say
            return ()
        state = container.attrs.get("State") or {}
        if state.get("OOMKilled"):
            return (SandboxEvent("memory", "docker: the container was OOM-killed", "host"),)
        if not state.get("Running", True) or time.monotonic() >= until:
            return ()
        time.sleep(0.25)
    return ()


def host_timeout(detail: str) -> SandboxEvent:
    return SandboxEvent("time", f"the host's backstop stopped the job: {detail}"[:MAX_DETAIL],
                        "host")


HOOK_KINDS = ("grader_file", "hunt", "network", "write_outside", "read_outside", "process")


def job_rows(outcome: Any) -> list[dict[str, str]]:
    """A solve's or improve's events as store rows: the host's and the root's, then the audit
    hook's (labelled ``self_reported``)."""
    hook = [f for f in getattr(outcome, "events", ()) if f.kind in HOOK_KINDS]
    return [e.to_dict() for e in (*getattr(outcome, "sandbox_events", ()),
                                  *self_reported(hook))]
