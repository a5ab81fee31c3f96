"""Control of a run from outside it: pausing a flagged child until a person decides.

A pause, an approval and a rejection are events in the run's store (``paused``, ``approved``,
``rejected``, each with the generation), so the decision is part of the run's record and a
resumed run reads it back: the last of them for a generation is its state.
"""

from __future__ import annotations

from pathlib import Path

from rsi_bench.errors import InputError, RsiBenchError
from rsi_bench.store import Store
from rsi_bench.store.runs import RunStore

PAUSE_EVENTS = ("paused", "approved", "rejected")


class RunHalted(RsiBenchError):
    """The run stopped before its end, on purpose; re-running the command resumes it."""

    exit_code = 3


class Paused(RunHalted):
    exit_code = 4

    def __init__(self, run_dir: Path, generation: int, reason: str) -> None:
        self.generation, self.reason = generation, reason
        super().__init__(
            f"{run_dir}: generation {generation} is paused ({reason}); look at it (the report's "
            f"safety card, its diff), then `rsi-bench approve {run_dir} {generation}` or "
            f"`rsi-bench reject {run_dir} {generation}`, and re-run the same command")


def pause_state(runs: RunStore, generation: int) -> tuple[str, str]:
    """(``none`` | ``paused`` | ``approved`` | ``rejected``, the pause's reason)."""
    state, reason = "none", ""
    for event in runs.events():
        if event["generation"] == generation and event["kind"] in PAUSE_EVENTS:
            state = event["kind"]
            if state == "paused":
                reason = str(event["detail"].get("reason", ""))
    return state, reason


def pause(runs: RunStore, generation: int, stage: str, reason: str) -> None:
    runs.event("paused", generation, stage=stage, reason=reason)


def decide(run_dir: Path, generation: int, verdict: str, note: str = "") -> str:
    """A person's decision on a paused generation (``approved`` or ``rejected``); returns the
    pause's reason. Refused for a generation that is not waiting for one."""
    if not (run_dir / "run.sqlite").is_file():
        raise InputError(f"{run_dir} is not a run directory (no run.sqlite)")
    with Store(run_dir / "run.sqlite") as store:
        runs = RunStore(store)
        state, reason = pause_state(runs, generation)
        if state != "paused":
            what = "was never paused" if state == "none" else f"is already {state}"
            raise InputError(f"{run_dir}: generation {generation} {what}; nothing to decide")
        runs.event(verdict, generation, note=note, reason=reason)
    return reason
