"""What ``verify`` reports: one ``Check`` per step, with the problems it found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MAX_SHOWN = 10


@dataclass
class Check:
    name: str
    status: str = "ok"  # ok | FAIL | skip
    summary: str = ""
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.status = "FAIL"
        self.problems.append(problem)

    def lines(self) -> list[str]:
        head = f"{self.status:<4}  {self.name}: {self.summary}"
        shown = [f"      - {p}" for p in self.problems[:MAX_SHOWN]]
        if len(self.problems) > MAX_SHOWN:
            shown.append(f"      ... and {len(self.problems) - MAX_SHOWN} more")
        return [head, *shown]


@dataclass
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "FAIL" for c in self.checks)

    def lines(self) -> list[str]:
        out = [line for check in self.checks for line in check.lines()]
        failed = [c.name for c in self.checks if c.status == "FAIL"]
        out.append("verified: every check passed" if not failed
                   else f"NOT verified: {', '.join(failed)} failed")
        return out


Say = Callable[[str], None]
