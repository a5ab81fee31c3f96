"""Control of a run from outside it: the kill switch, and pausing a flagged child until a
person decides.

**Kill switch.** ``rsi-bench stop RUN`` (a ``STOP`` file in the run directory) or a first
SIGTERM / SIGINT asks the run to stop: no job starts after that, the jobs in flight finish and
are committed, and the run ends with ``Stopped``; the next ``rsi-bench run`` on the directory
resumes it. A second SIGTERM or SIGINT stops at once: the run's containers are removed and the
process exits, losing at most the jobs in flight (every commit is atomic, DESIGN invariant 5).

**Pause.** A pause, an approval and a rejection are events in the run's store (``paused``,
``approved``, ``rejected``, each with the generation), so the decision is part of the run's
record and a resumed run reads it back: the last of them for a generation is its state.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from rsi_bench.errors import InputError, RsiBenchError
from rsi_bench.store import Store
from rsi_bench.store.runs import RunStore

T = TypeVar("T")
WATCH_S = 0.25  # how long the main thread waits between chances to run a signal handler

PAUSE_EVENTS = ("paused", "approved", "rejected")


class RunHalted(RsiBenchError):
    """The run stopped before its end, on purpose; re-running the command resumes it."""

    exit_code = 3


class Stopped(RunHalted):
    exit_code = 3

    def __init__(self, run_dir: Path, why: str) -> None:
        super().__init__(f"{run_dir}: stopped ({why}) after the jobs in flight; every "
                         "committed result is kept; re-run the same command to resume")


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


STOP_FILE = "STOP"
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def request_stop(run_dir: Path) -> Path:
    """Ask the run in ``run_dir`` (or every seed run under it) to stop after its jobs in
    flight."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a run directory")
    path = run_dir / STOP_FILE
    path.write_text(f"stop requested at {time.time():.0f}\n")
    return path


class KillSwitch:
    """The stop files of a run and its stop signals. ``stopping`` is polled between jobs;
    ``check`` raises Stopped once it is set."""

    def __init__(self, run_dir: Path, stop_dirs: Iterable[Path] = ()) -> None:
        self.run_dir = run_dir
        self.files = [d / STOP_FILE for d in dict.fromkeys([run_dir, *stop_dirs])]
        self.signalled: int | None = None
        self.on_hard_stop: Callable[[], None] = lambda: None
        self._previous: dict[int, Any] = {}

    def clear(self) -> None:
        """A stop requested before this attempt started was for the attempt it stopped."""
        for path in self.files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread; the stop file still works
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signalled is None:
            self.signalled = signum
            print(f"rsi-bench: {signal.Signals(signum).name}: stopping after the jobs in flight "
                  "(send it again to stop at once)", file=sys.stderr, flush=True)
            return
        print(f"rsi-bench: {signal.Signals(signum).name} again: stopping now", file=sys.stderr,
              flush=True)
        try:
            self.on_hard_stop()
        finally:
            os._exit(128 + signum)

    def run_watched(self, body: Callable[[], T]) -> T:
        """Run ``body`` in a worker thread while the main thread waits in short slices.

        Python runs signal handlers only in the main thread, between bytecodes; the kernel may
        hand a process-directed signal to any thread, and then a main thread blocked in a long
        call (a solve waiting on its container) would not see it until the call returns. A main
        thread that only waits sees every signal within ``WATCH_S``."""
        if threading.current_thread() is not threading.main_thread():
            return body()
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = body()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                outcome["error"] = exc

        worker = threading.Thread(target=target, name="rsi-bench-loop", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(WATCH_S)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]  # type: ignore[no-any-return]

    @property
    def stopping(self) -> bool:
        return self.signalled is not None or any(p.exists() for p in self.files)

    def check(self) -> None:
        if not self.stopping:
            return
        why = (f"{signal.Signals(self.signalled).name} received" if self.signalled is not None
               else "rsi-bench stop")
        raise Stopped(self.run_dir, why)
