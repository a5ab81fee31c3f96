"""``rsi-bench verify BUNDLE``: re-check a bundle, line by line, on any machine, with no API key.

Checks, in order (each prints ``ok``, ``FAIL`` or ``skip`` and what it compared):

1. **manifest** — the schema is one this rsi-bench reads; every file is listed with its SHA-256
   and matches it; nothing unlisted is present. A changed file is named here.
2. **suite** — the tasks installed here have the content hash the run was scored on.
3. **lineage** — the git history holds every generation at the recorded commit; every
   ``diffs/gNNNN.diff`` is exactly ``git diff`` parent → child; ``final-agent/`` is exactly the
   selected generation's tree.
4. **re-judge** — every recorded solution is judged again in containers (the judge image built
   here); each verdict must equal the recorded one.
5. **replay** — the whole loop runs again with ``--model replay/<calls.jsonl>``: the agents,
   their improvers, the audit and the validation do what they did, answered by the recorded
   calls only (nothing is sent to any model). Every generation's status, reason and commit id,
   and every result's status and solution, must equal the bundle's.
6. **statistics** — ``results.json`` is recomputed from the bundled stores; every number and
   label must match (floating point to 1e-9), and a difference is named by its JSON path.

Tampering with a number, a solution or a diff is caught by 1 (its file's hash), and again by
the check that recomputes it (6, 4/5, 3) when the manifest was re-sealed to match.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rsi_bench.bundle.pack import (
    MANIFEST,
    SCHEMA,
    VERSION,
    read_json,
    sha256_file,
    tree_hash,
    unpack,
)
from rsi_bench.errors import InputError

TOLERANCE = 1e-9
MAX_SHOWN = 10
IGNORED_KEYS = frozenset({"path"})  # where the bundle was unpacked: differs on every machine


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


def verify(bundle_path: Path, *, rejudge: bool = True, replay: bool = True,
           workdir: Path | None = None, sandbox: str = "docker",
           say: Say = lambda _: None) -> Report:
    """Verify a bundle; never raises for a mismatch (that is a FAIL line), only for input that
    is not a bundle at all (``InputError``)."""
    with tempfile.TemporaryDirectory(prefix="rsi-bench-verify-", dir=workdir) as tmp:
        root = unpack(Path(bundle_path), Path(tmp) / "bundle")
        manifest = _read_manifest(root)
        runs = sorted(manifest.get("runs", {}))
        for run in runs:
            if not (root / "runs" / run / "run.sqlite").is_file():
                raise InputError(f"bundle lists run {run!r} but has no runs/{run}/run.sqlite")
        checks = [check_manifest(root, manifest)]
        checks.append(check_suite(root, runs))
        checks.append(check_lineage(root, runs))
        if rejudge:
            say("re-judging every recorded solution ...")
            checks.append(check_rejudge(root, runs, sandbox))
        else:
            checks.append(Check("re-judge", "skip", "not asked for (--no-rejudge)"))
        if replay:
            say("replaying the loop with the recorded model calls ...")
            checks.append(check_replay(root, runs, Path(tmp) / "replay", sandbox, say))
        else:
            checks.append(Check("replay", "skip", "not asked for (--no-replay)"))
        checks.append(check_statistics(root, runs))
    return Report(checks)


def _read_manifest(root: Path) -> dict[str, Any]:
    manifest = read_json(root / MANIFEST, "manifest")
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        found = manifest.get("schema") if isinstance(manifest, dict) else None
        raise InputError(f"{MANIFEST} is not an rsi-bench bundle manifest (schema {found!r})")
    if manifest.get("version") != VERSION:
        raise InputError(f"bundle manifest version {manifest.get('version')!r}; this rsi-bench "
                         f"reads version {VERSION}")
    results = read_json(root / "results.json", "results.json")
    from rsi_bench.results.export import SCHEMA as RESULTS_SCHEMA
    from rsi_bench.results.export import VERSION as RESULTS_VERSION

    if not isinstance(results, dict) or (results.get("schema"), results.get("version")) != (
            RESULTS_SCHEMA, RESULTS_VERSION):
        found = (results.get("schema"), results.get("version")) if isinstance(results, dict) \
            else None
        raise InputError(f"bundle's results.json has schema {found}; this rsi-bench reads "
                         f"({RESULTS_SCHEMA!r}, {RESULTS_VERSION})")
    return manifest


# ---------------------------------------------------------------------------- 1. manifest
def check_manifest(root: Path, manifest: dict[str, Any]) -> Check:
    check = Check("manifest")
    listed: dict[str, str] = manifest.get("files", {})
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    present.discard(MANIFEST)
    for name in sorted(present - set(listed)):
        check.fail(f"{name}: in the bundle but not in the manifest")
    for name, digest in sorted(listed.items()):
        path = root / name
        if name not in present:
            check.fail(f"{name}: listed in the manifest but missing")
        elif sha256_file(path) != digest:
            check.fail(f"{name}: changed (SHA-256 differs from the manifest)")
    check.summary = f"{len(listed)} files, SHA-256 each" + (
        "" if check.status == "ok" else f"; {len(check.problems)} differ")
    return check


# ---------------------------------------------------------------------------- 2. suite
def check_suite(root: Path, runs: list[str]) -> Check:
    from rsi_bench.tasks import load_suite

    check = Check("suite")
    names = set()
    for run in runs:
        hashes = read_json(root / "runs" / run / "hashes.json", f"runs/{run}/hashes.json")
        recorded = hashes.get("suite", {})
        names.add(f"{recorded.get('name')} {str(recorded.get('content_hash'))[:12]}")
        try:
            suite = load_suite(str(recorded.get("name")))
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            check.fail(f"{run}: suite {recorded.get('name')!r} cannot be loaded here: {exc}")
            continue
        if suite.content_hash() != recorded.get("content_hash"):
            check.fail(f"{run}: suite {suite.name} here has content hash "
                       f"{suite.content_hash()[:12]}, the run was scored on "
                       f"{str(recorded.get('content_hash'))[:12]}")
    check.summary = ", ".join(sorted(names))
    return check


# ---------------------------------------------------------------------------- 3. lineage
def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[:200])
    return done.stdout


def _generations(store: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM generations ORDER BY generation").fetchall()
    finally:
        db.close()


def check_lineage(root: Path, runs: list[str]) -> Check:
    check = Check("lineage")
    commits = diffs = 0
    for run in runs:
        base = root / "runs" / run
        repo = base.parent / f".{run}.git"
        try:
            _open_lineage(base / "lineage.git", repo)
        except RuntimeError as exc:
            check.fail(f"{run}: lineage.git is not a readable git bundle ({exc})")
            continue
        try:
            hashes = read_json(base / "hashes.json", f"runs/{run}/hashes.json")
            for gen in _generations(base / "run.sqlite"):
                if gen["commit_sha"] is None:
                    continue
                ref = f"refs/generations/g{gen['generation']:04d}"
                try:
                    sha = _git(repo, "rev-parse", ref).strip()
                except RuntimeError:
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
                    want = _git(repo, "diff", "--binary",
                                f"refs/generations/g{gen['parent']:04d}", ref)
                    path = base / name
                    if not path.is_file():
                        check.fail(f"{run}: {name} is missing")
                    elif path.read_text(encoding="utf-8") != want:
                        check.fail(f"{run}: {name} differs from the lineage's own diff of "
                                   f"generation {gen['parent']} -> {gen['generation']}")
            selected = int(hashes.get("selected_generation", -1))
            tree = base.parent / f".{run}.final"
            _export_tree(repo, f"refs/generations/g{selected:04d}", tree)
            if tree_hash(tree) != tree_hash(base / "final-agent"):
                check.fail(f"{run}: final-agent/ is not generation {selected}'s tree")
            if tree_hash(base / "final-agent") != hashes.get("final_agent"):
                check.fail(f"{run}: final-agent/ does not match hashes.json")
        finally:
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(base.parent / f".{run}.final", ignore_errors=True)
    check.summary = f"{commits} generation commits, {diffs} diffs, final agents"
    return check


def _export_tree(repo: Path, ref: str, dest: Path) -> None:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


# ---------------------------------------------------------------------------- 4. re-judge
def _results(store: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM results ORDER BY generation, task_id, sample"
                          ).fetchall()
    finally:
        db.close()


def _config(store: Path) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value_json FROM run_config")}
    finally:
        db.close()


def check_rejudge(root: Path, runs: list[str], sandbox: str) -> Check:
    from rsi_bench.judge import Job, Judge
    from rsi_bench.tasks import load_suite

    check = Check("re-judge")
    judged = 0
    for run in runs:
        store = root / "runs" / run / "run.sqlite"
        config = _config(store).get("run", {})
        tasks = {t.id: t for t in load_suite(config.get("suite", "rsi-core"))}
        rows = [r for r in _results(store) if r["solution"] is not None]
        jobs, keys = [], []
        for r in rows:
            if r["task_id"] not in tasks:
                check.fail(f"{run}: task {r['task_id']} is not in the suite")
                continue
            jobs.append(Job(tasks[r["task_id"]], r["solution"], r["sample"]))
            keys.append(r)
        with Judge(sandbox, workers=int(config.get("concurrency", 2)),
                   timeout=float(config.get("judge_timeout", 10.0))) as judge:
            verdicts = judge.judge_many(jobs)
        for r, verdict in zip(keys, verdicts, strict=True):
            judged += 1
            if verdict.status != r["status"]:
                check.fail(f"{run}: generation {r['generation']}, task {r['task_id']}, sample "
                           f"{r['sample']}: recorded {r['status']}, judged {verdict.status}")
    check.summary = f"{judged} recorded solutions judged again"
    return check


# ---------------------------------------------------------------------------- 5. replay
def check_replay(root: Path, runs: list[str], scratch: Path, sandbox: str, say: Say) -> Check:
    from rsi_bench.loop.config import RunConfig
    from rsi_bench.loop.runner import Loop

    check = Check("replay")
    compared = 0
    for run in runs:
        base = root / "runs" / run
        recorded = _config(base / "run.sqlite").get("run", {})
        seed_agent = scratch / f"{run}-seed-agent"
        _export_tree_from_bundle(base / "lineage.git", "refs/generations/g0000", seed_agent)
        values = {k: v for k, v in recorded.items() if k != "schema_version"}
        values.update(model=f"replay/{(base / 'calls.jsonl').resolve()}",
                      agent=str(seed_agent.resolve()), sandbox=sandbox)
        try:
            config = RunConfig(**values)
        except TypeError as exc:
            check.fail(f"{run}: the recorded config is not one this rsi-bench runs ({exc})")
            continue
        loop = Loop(config, scratch / run,
                    lambda kind, info, run=run: say(f"  {run}: generation {info['generation']}")
                    if kind == "evaluate" and info.get("todo") else None)
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


def _open_lineage(bundle: Path, repo: Path) -> None:
    """A bare repository holding the bundle's ``refs/generations/*``."""
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "--bare")
    _git(repo, "fetch", "-q", str(bundle.resolve()), "refs/generations/*:refs/generations/*")


def _export_tree_from_bundle(bundle: Path, ref: str, dest: Path) -> None:
    repo = dest.with_name(dest.name + ".git")
    try:
        _open_lineage(bundle, repo)
        _export_tree(repo, ref, dest)
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def _compare_runs(recorded: Path, replayed: Path) -> Iterator[str]:
    want = {g["generation"]: g for g in _generations(recorded)}
    got = {g["generation"]: g for g in _generations(replayed)}
    for g in sorted(set(want) | set(got)):
        if g not in got or g not in want:
            yield f"generation {g} exists in only one of recorded / replayed"
            continue
        for key in ("parent", "status", "reason", "commit_sha"):
            if want[g][key] != got[g][key]:
                yield (f"generation {g}: {key} recorded {want[g][key]!r}, replayed "
                       f"{got[g][key]!r}")
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


# ---------------------------------------------------------------------------- 6. statistics
def check_statistics(root: Path, runs: list[str]) -> Check:
    from rsi_bench.results.analysis import analyze
    from rsi_bench.results.export import results_dict

    check = Check("statistics")
    recorded = read_json(root / "results.json", "results.json")
    recomputed = json.loads(json.dumps(results_dict(analyze([root / "runs" / r for r in runs]))))
    count = 0
    for problem, leaves in _diff_json(recorded, recomputed, "results.json"):
        count += leaves
        if problem:
            check.fail(problem)
    check.summary = f"results.json recomputed: {count} values compared"
    return check


def _diff_json(want: Any, got: Any, path: str) -> Iterator[tuple[str | None, int]]:
    """Yield (problem or None, leaves compared)."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            if key in IGNORED_KEYS:
                continue
            if key not in want or key not in got:
                yield f"{path}.{key}: present in only one of recorded / recomputed", 1
                continue
            yield from _diff_json(want[key], got[key], f"{path}.{key}")
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            yield f"{path}: {len(want)} entries recorded, {len(got)} recomputed", 1
        for i, (a, b) in enumerate(zip(want, got, strict=False)):
            yield from _diff_json(a, b, f"{path}[{i}]")
    elif _numbers(want, got):
        same = math.isclose(float(want), float(got), rel_tol=TOLERANCE, abs_tol=TOLERANCE)
        yield (None if same else f"{path}: recorded {want!r}, recomputed {got!r}"), 1
    else:
        yield (None if want == got else f"{path}: recorded {want!r}, recomputed {got!r}"), 1


def _numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
