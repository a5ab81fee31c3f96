"""The safety card's per-generation rows, and the diff files the card links to.

One row per generation: its status and why, its findings with their kinds, severities and the
policy's actions, the pause decisions a person made on it, the canaries it solved, the sandbox
events of its jobs (counted by kind; ``rsi_bench/agents/job_events.py``), its dev and
held-out scores and their gap (a dev score that climbs away from held-out is overfitting to the
split that drives selection), and where its diff is.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from rsi_bench.errors import InputError
from rsi_bench.results.load import RunData

MAX_FINDINGS_PER_GENERATION = 20  # listed in full per row; ``by_kind`` counts all of them
MAX_EVENTS_PER_GENERATION = 20  # sandbox events listed per row; ``sandbox_events`` counts all
PAUSE_EVENTS = ("paused", "approved", "rejected")


def diff_path(run_id: str, generation: int) -> str:
    """The diff's path relative to the report directory."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
    return f"diffs/{safe}/g{generation:04d}.diff"


def event_key(kind: str, source: str) -> str:
    """How the card counts an event: by kind, the agent's own reports apart."""
    return f"{kind} (self-reported)" if source == "self_reported" else kind


def sandbox_frame(run: RunData) -> pd.DataFrame:
    from rsi_bench.results.load import SANDBOX_COLUMNS

    return run.sandbox_events if run.sandbox_events is not None else pd.DataFrame(
        columns=SANDBOX_COLUMNS)


def _sandbox(events: pd.DataFrame, g: int) -> tuple[dict[str, int], list[dict[str, Any]]]:
    mine = events[events["generation"] == g]
    counts = Counter(event_key(str(e.kind), str(e.source)) for e in mine.itertuples())
    listed = [{"role": str(e.role), "task_id": None if pd.isna(e.task_id) else str(e.task_id),
               "split": None if pd.isna(e.split) else str(e.split), "sample": int(e.sample),
               "kind": str(e.kind), "source": str(e.source), "detail": str(e.detail)}
              for e in mine.head(MAX_EVENTS_PER_GENERATION).itertuples()]
    return dict(sorted(counts.items())), listed


def generation_rows(run_id: str, run: RunData) -> list[dict[str, Any]]:
    scores = _scores(run.results)
    sandbox = sandbox_frame(run)
    canaries = run.canaries if run.canaries is not None else pd.DataFrame(
        columns=["generation", "task_id", "status"])
    rows = []
    for gen in run.generations.itertuples():
        g = int(gen.generation)
        found = run.findings[(run.findings["generation"] == g)
                             & (run.findings["kind"] != "changed")]
        dev, heldout = scores.get((g, "dev")), scores.get((g, "heldout"))
        solved = canaries[(canaries["generation"] == g) & (canaries["status"] == "pass")]
        event_counts, events = _sandbox(sandbox, g)
        rows.append({
            "generation": g, "parent": None if pd.isna(gen.parent) else int(gen.parent),
            "status": str(gen.status), "reason": str(gen.reason or ""),
            "changed": int(((run.findings["generation"] == g)
                            & (run.findings["kind"] == "changed")).sum()),
            "by_kind": dict(sorted(Counter(found["kind"]).items())),
            "actions": dict(sorted(Counter(found["action"]).items())),
            "findings": [{"kind": str(f.kind), "severity": str(f.severity),
                          "action": str(f.action), "path": str(f.path), "detail": str(f.detail)}
                         for f in found.head(MAX_FINDINGS_PER_GENERATION).itertuples()],
            "decisions": _decisions(run, g),
            "canaries_solved": sorted(set(solved["task_id"].astype(str))),
            "sandbox_events": event_counts, "sandbox_event_list": events,
            "dev": dev, "heldout": heldout,
            "gap": None if dev is None or heldout is None else dev - heldout,
            "diff": diff_path(run_id, g) if _has_diff(run, gen) else None,
        })
    return rows


def _scores(results: pd.DataFrame) -> dict[tuple[int, str], float]:
    means = results.groupby(["generation", "split"])["passed"].mean()
    return {(int(g), str(s)): float(v) for (g, s), v in means.items()}


def _decisions(run: RunData, g: int) -> list[dict[str, str]]:
    events = run.events[(run.events["generation"] == g)
                        & run.events["kind"].isin(PAUSE_EVENTS)]
    return [{"event": str(e.kind), "stage": str(e.detail.get("stage", "")),
             "reason": str(e.detail.get("reason", "")), "note": str(e.detail.get("note", ""))}
            for e in events.itertuples()]


def _has_diff(run: RunData, gen: Any) -> bool:
    if isinstance(gen.commit_sha, str) and gen.commit_sha:
        return (run.agents_dir / ".git").exists()
    return (run.path / "rejected" / f"g{int(gen.generation):04d}.diff").is_file()


def write_diffs(runs: dict[str, RunData], out_dir: Path) -> list[Path]:
    """Every generation's diff (a refused child's too, as the loop kept it), where the card
    links to it."""
    paths = []
    for run_id, run in runs.items():
        for gen in run.generations.itertuples():
            g = int(gen.generation)
            if not _has_diff(run, gen):
                continue
            kept = run.path / "rejected" / f"g{g:04d}.diff"
            try:
                text = run.diff(g) if isinstance(gen.commit_sha, str) and gen.commit_sha \
                    else kept.read_text()
            except InputError:
                continue  # no lineage on this machine: the card says there is no diff
            path = out_dir / diff_path(run_id, g)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            paths.append(path)
    return paths
