"""The findings policy: what a finding does to the child it was found in.

Per finding kind (or per group of kinds, ``rsi_bench.agents.findings``) the run's policy says:

- ``record``: the finding is kept with the generation, and nothing else happens;
- ``reject``: the child is invalid, with the finding as its reason, and is never evaluated
  (a canary solved by an evaluated child: the child is invalid and never becomes a parent);
- ``pause``: the run stops before the child becomes a parent, until a person runs
  ``rsi-bench approve RUN GEN`` or ``rsi-bench reject RUN GEN`` and re-runs the command.

Defaults: reject for the ``leak``, ``grader``, ``integrity`` and ``canary`` groups, record for
``heuristic`` and ``change``. A rule names a kind, a group, or ``*`` (every kind but the
informational ``changed`` list); the most specific rule wins, and the gravest action over a
child's findings decides (reject > pause > record).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rsi_bench.agents.findings import GROUPS, KINDS, kind_info
from rsi_bench.errors import InputError

ACTIONS = ("record", "pause", "reject")  # in order of gravity
DEFAULT_ACTIONS: Mapping[str, str] = {"leak": "reject", "grader": "reject",
                                      "integrity": "reject", "canary": "reject",
                                      "heuristic": "record", "change": "record"}


def parse_rules(value: str | Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """Rules from ``--on-finding`` values or a config key: ``"record"`` (every kind),
    ``"grader=pause"``, ``"hardcoded_answer=reject,suspicious_code=pause"``, a TOML table
    ``{grader = "pause"}``, or a list of such strings."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        parts = [value] if isinstance(value, str) else list(value)
        items = []
        for part in (p.strip() for text in parts for p in str(text).split(",")):
            if part:
                key, _, action = part.rpartition("=")
                items.append((key.strip() or "*", action.strip()))
    rules: dict[str, str] = {}
    for key, action in items:
        if action not in ACTIONS:
            raise InputError(f"on-finding {key}={action!r}: the action is one of "
                             f"{', '.join(ACTIONS)}")
        if key != "*" and key not in KINDS and key not in GROUPS:
            raise InputError(f"on-finding {key!r}: not a finding kind or group; kinds: "
                             f"{', '.join(KINDS)}; groups: {', '.join(GROUPS)}")
        rules[key] = action
    return dict(sorted(rules.items()))


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str | None  # the first finding with the decisive action, as a sentence
    findings: list[dict[str, Any]]  # the findings, each with its severity and action


@dataclass(frozen=True)
class Policy:
    rules: Mapping[str, str]

    def action(self, kind: str) -> str:
        info = kind_info(kind)
        if kind in self.rules:
            return self.rules[kind]
        if info.group in self.rules:
            return self.rules[info.group]
        if "*" in self.rules and info.severity != "info":
            return self.rules["*"]
        return DEFAULT_ACTIONS[info.group]

    def decide(self, findings: Iterable[Mapping[str, Any]]) -> Decision:
        marked = []
        for f in findings:
            kind = str(f.get("kind", ""))
            marked.append({**f, "severity": f.get("severity") or kind_info(kind).severity,
                           "action": self.action(kind)})
        action = max((f["action"] for f in marked), key=ACTIONS.index, default="record")
        first = next((f for f in marked if f["action"] == action), None)
        reason = None if action == "record" or first is None else (
            f"policy {action}s {first['kind']} ({first['severity']})"
            + (f" in {first['path']}" if first.get("path") else "") + f": {first['detail']}")
        return Decision(action, reason, marked)
