"""The outcome of judging one solution on one task."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

STATUSES = ("pass", "fail", "error", "timeout", "oom", "invalid")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Verdict:
    """``pass`` only when the harness's own test driver ran ``check`` to completion.

    fail: a test failed (wrong answer, wrong type); error: the solution raised, exited or stopped
    answering; timeout / oom: a limit was hit; invalid: the program does not compile or does not
    define the entry point (a repo task: the diff does not apply, or touches what it may not).
    """

    task_id: str
    status: str
    duration_s: float
    detail: str = ""
    output_tail: str = ""
    key: int = 0  # which sample of this task (several per task are allowed)
    calls: int = 0  # calls the tests made into the solution
    backend: str = ""
    image_id: str = ""
    runner_sha256: str = ""
    tests: tuple[tuple[str, str], ...] = ()  # repo tasks: (pytest node id, outcome) per test

    @property
    def test_outcomes(self) -> dict[str, str]:
        return dict(self.tests)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self), "tests": dict(self.tests)}
