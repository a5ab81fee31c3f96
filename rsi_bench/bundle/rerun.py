"""The checks of ``verify`` that rebuild things: the lineage from its git bundle, every verdict
in the judge, and the whole loop from the recorded model calls."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rsi_bench.bundle.outcome import Check, Say
from rsi_bench.bundle.pack import git, query, read_config, read_json
from rsi_bench.bundle.trees import agent_hash, commit_files, compare, disk_files, write_files
from rsi_bench.errors import InputError


# ---------------------------------------------------------------------------- 3. lineage
def _generations(store: Path) -> list[sqlite3.Row]:
    return query(store, "SELECT * FROM generations ORDER BY generation")


def check_lineage(root: Path, runs: list[str]) -> Check:
    check = Check("lineage")
    commits = diffs = 0
    for run in runs:
        base = root / "runs" / run
        repo = base.parent / f".{run}.git"
        try:
            _open_lineage(base / "lineage.git", repo)
        except InputError as exc:
            check.fail(f"{run}: lineage.git is not a readable git bundle ({exc})")
            continue
        try:
            hashes = read_json(base / "hashes.json", f"runs/{run}/hashes.json")
            for gen in _generations(base / "run.sqlite"):
                if gen["commit_sha"] is None:
                    continue
                ref = f"refs/generations/g{gen['generation']:04d}"
                try:
                    sha = git(repo, "rev-parse", ref).strip()
                except InputError:
                    check.fail(f"{run}: generation {gen['generation']} has no commit in "
                               "lineage.git")
                    continue
                commits += 1
                if sha != gen["commit_sha"]:
                    check.fail(f"{run}: generation {gen['generation']} is commit {sha[:12]} in "
                               f"lineage.git but {gen['commit_sha'][:12]} in run.sqlite")
                if gen["parent"] is not None:
                    diffs += 1
                    name = f"diffs/g{gen['generation']:04d}.diff"
                    want = git(repo, "diff", "--binary",
                                f"refs/generations/g{gen['parent']:04d}", ref)
                    path = base / name
                    if not path.is_file():
                        check.fail(f"{run}: {name} is missing")
                    elif path.read_text(encoding="utf-8") != want:
                        check.fail(f"{run}: {name} differs from the lineage's own diff of "
                                   f"generation {gen['parent']} -> {gen['generation']}")
            for problem in _check_agents(repo, base, hashes):
                check.fail(f"{run}: {problem}")
        finally:
            shutil.rmtree(repo, ignore_errors=True)
    check.summary = f"{commits} generation commits, {diffs} diffs, final agents"
    return check


def _check_agents(repo: Path, base: Path, hashes: dict[str, Any]) -> Iterator[str]:
    """``final-agent/`` is the selected generation's commit, file by file, and both agents
    match ``hashes.json``: a changed, added or missing file is named."""
    selected = int(hashes.get("selected_generation", -1))
    try:
        want = commit_files(repo, f"refs/generations/g{selected:04d}")
        seed = commit_files(repo, "refs/generations/g0000")
    except InputError as exc:
        yield f"the selected generation {selected} cannot be read from lineage.git ({exc})"
        return
    got = disk_files(base / "final-agent")
    for problem in compare(want, got, f"generation {selected}'s commit"):
        yield f"final-agent/{problem}"
    if agent_hash(got) != hashes.get("final_agent"):
        yield "final-agent/ does not match hashes.json (final_agent)"
    if agent_hash(seed) != hashes.get("seed_agent"):
        yield "generation 0's commit does not match hashes.json (seed_agent)"


# ---------------------------------------------------------------------------- 4. re-judge
def _results(store: Path) -> list[sqlite3.Row]:
    return query(store, "SELECT * FROM results ORDER BY generation, task_id, sample")


def run_backend(sandbox: str, runtime: str | None, recorded: dict[str, Any]) -> str:
    """Where a bundled run is checked again: in the runtime it was made with (its config's
    ``runtime``), unless the command line names one (``--runtime runc`` or ``docker:runsc``)."""
    from rsi_bench.sandbox import parse_backend, with_runtime

    kind, own = parse_backend(sandbox)
    return with_runtime(kind, runtime or own or str(recorded.get("runtime") or ""))


def check_rejudge(root: Path, runs: list[str], sandbox: str,
                  runtime: str | None = None) -> Check:
    from rsi_bench.judge import Job, Judge
    from rsi_bench.tasks import load_suite

    check = Check("re-judge")
    judged, where = 0, set()
    for run in runs:
        store = root / "runs" / run / "run.sqlite"
        config = read_config(store).get("run", {})
        tasks = {t.id: t for t in load_suite(config.get("suite", "rsi-core"))}
        rows = [r for r in _results(store) if r["solution"] is not None]
        jobs, keys = [], []
        for r in rows:
            if r["task_id"] not in tasks:
                check.fail(f"{run}: task {r['task_id']} is not in the suite")
                continue
            jobs.append(Job(tasks[r["task_id"]], r["solution"], r["sample"]))
            keys.append(r)
        backend = run_backend(sandbox, runtime, config)
        where.add(backend)
        with Judge(backend, workers=int(config.get("concurrency", 2)),
                   timeout=float(config.get("judge_timeout", 10.0))) as judge:
            verdicts = judge.judge_many(jobs)
        for r, verdict in zip(keys, verdicts, strict=True):
            judged += 1
            where_ = f"{run}: generation {r['generation']}, task {r['task_id']}, sample " \
                f"{r['sample']}"
            if verdict.status != r["status"]:
                check.fail(f"{where_}: recorded {r['status']}, judged {verdict.status}")
            elif "tests_json" in r.keys() and json.loads(r["tests_json"] or "{}") and \
                    json.loads(r["tests_json"]) != verdict.test_outcomes:
                changed = sorted(k for k, v in json.loads(r["tests_json"]).items()
                                 if verdict.test_outcomes.get(k) != v)
                check.fail(f"{where_}: recorded per-test outcomes differ from the judged ones "
                           f"({', '.join(changed[:3]) or 'other test ids'})")
    check.summary = f"{judged} recorded solutions judged again (on {', '.join(sorted(where))})"
    return check


# ---------------------------------------------------------------------------- 5. replay
def check_replay(root: Path, runs: list[str], scratch: Path, sandbox: str, say: Say,
                 runtime: str | None = None) -> Check:
    from rsi_bench.loop.config import RunConfig
    from rsi_bench.loop.runner import Loop

    check = Check("replay")
    compared = 0
    for run in runs:
        base = root / "runs" / run
        recorded = read_config(base / "run.sqlite").get("run", {})
        seed_agent = scratch / f"{run}-seed-agent"
        _export_tree_from_bundle(base / "lineage.git", "refs/generations/g0000", seed_agent)
        values = {k: v for k, v in recorded.items() if k != "schema_version"}
        values.update(model=f"replay/{(base / 'calls.jsonl').resolve()}",
                      agent=str(seed_agent.resolve()), sandbox="docker", runtime="")
        values["sandbox"] = run_backend(sandbox, runtime, recorded)
        try:
            config = RunConfig(**values)
        except TypeError as exc:
            check.fail(f"{run}: the recorded config is not one this rsi-bench runs ({exc})")
            continue
        loop = Loop(config, scratch / run, _progress(run, say))
        try:
            loop.run()
        except Exception as exc:  # noqa: BLE001 - a replay miss or any failure is the finding
            check.fail(f"{run}: the replay stopped: {type(exc).__name__}: {exc}")
            continue
        finally:
            loop.close()
        problems = list(_compare_runs(base / "run.sqlite", scratch / run / "run.sqlite"))
        compared += len(_results(base / "run.sqlite"))
        for problem in problems:
            check.fail(f"{run}: {problem}")
    check.summary = f"{compared} results and every generation replayed from recorded calls"
    return check


def _progress(run: str, say: Say) -> Callable[[str, dict[str, Any]], None]:
    def progress(kind: str, info: dict[str, Any]) -> None:
        if kind == "evaluate" and info.get("todo"):
            say(f"  {run}: generation {info['generation']}")
    return progress


def _open_lineage(bundle: Path, repo: Path) -> None:
    """A bare repository holding the bundle's ``refs/generations/*``."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "--bare")
    git(repo, "fetch", "-q", str(bundle.resolve()), "refs/generations/*:refs/generations/*")


def _export_tree_from_bundle(bundle: Path, ref: str, dest: Path) -> None:
    repo = dest.with_name(dest.name + ".git")
    try:
        _open_lineage(bundle, repo)
        write_files(commit_files(repo, ref), dest)
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def _compare_runs(recorded: Path, replayed: Path) -> Iterator[str]:
    want = {g["generation"]: g for g in _generations(recorded)}
    got = {g["generation"]: g for g in _generations(replayed)}
    for g in sorted(set(want) | set(got)):
        if g not in got or g not in want:
            yield f"generation {g} exists in only one of recorded / replayed"
            continue
        for name in ("parent", "status", "reason", "commit_sha"):
            if want[g][name] != got[g][name]:
                yield (f"generation {g}: {name} recorded {want[g][name]!r}, replayed "
                       f"{got[g][name]!r}")
    want_r = {(r["generation"], r["task_id"], r["sample"]): r for r in _results(recorded)}
    got_r = {(r["generation"], r["task_id"], r["sample"]): r for r in _results(replayed)}
    for key in sorted(set(want_r) | set(got_r)):
        where = f"generation {key[0]}, task {key[1]}, sample {key[2]}"
        if key not in got_r or key not in want_r:
            yield f"{where}: in only one of recorded / replayed"
            continue
        for column in ("split", "status", "solve_status", "solution"):
            if want_r[key][column] != got_r[key][column]:
                shown = "differs" if column == "solution" else \
                    f"recorded {want_r[key][column]!r}, replayed {got_r[key][column]!r}"
                yield f"{where}: {column} {shown}"
