"""``rsi-bench bundle``: pack a run so that anyone can re-check every number in it.

A bundle is one ``.tar.gz`` holding, for each run (a loop seed):

=============================  ================================================================
``MANIFEST.json``              schema and version, rsi-bench version, and the SHA-256 of every
                               other file (a file not listed, or listed and missing, is refused)
``runs/<name>/run.sqlite``     (``<name>`` is the run's condition and seed, e.g. ``self-s2``)
                               the run's store: config, generations, every result with its
                               solution, every recorded model call, events (a consistent copy)
``runs/<name>/calls.jsonl``    the recorded model calls in replay format (``replay/<file>``)
``runs/<name>/lineage.git``    the agents' git history (``git bundle``): one commit per
                               generation under ``refs/generations/gNNNN``
``runs/<name>/diffs/gNNNN.diff``  every self-modification, parent to child, as a patch
``runs/<name>/final-agent/``   the selected generation's files (best dev score), written from
                               its lineage commit: every byte its containers mounted
``runs/<name>/hashes.json``    suite name and content hash, judge image and runner SHA-256,
                               the seed and final agents' hashes (``trees.agent_hash``: every
                               file, nothing skipped), the run's config fingerprint
``results.json``               every statistic and verdict, as ``rsi-bench report`` writes it
=============================  ================================================================

``rsi-bench verify BUNDLE`` re-checks all of it (``rsi_bench.bundle.verify``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rsi_bench import __version__
from rsi_bench.bundle.trees import agent_hash, commit_files, write_files
from rsi_bench.errors import InputError
from rsi_bench.store import read_only_uri

SCHEMA = "rsi-bench/bundle"
VERSION = 1
MANIFEST = "MANIFEST.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise InputError(f"git {' '.join(args[:2])} in {repo} failed: {done.stderr.strip()[:200]}")
    return done.stdout


def run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories named on the command line; a multi-seed run dir gives its seeds."""
    from rsi_bench.results.load import find_runs

    found: list[Path] = []
    for path in paths:
        found.extend(find_runs(path))
    if not found:
        raise InputError("no run directories given")
    for run in found:
        if not (run / "run.sqlite").is_file():
            raise InputError(f"{run}: not a run directory (no run.sqlite)")
    names = [run_name(p) for p in found]
    if len(set(names)) != len(names):
        raise InputError(f"two runs are the same condition and seed ({', '.join(sorted(names))})"
                         "; bundle them separately")
    return found


def run_name(run_dir: Path) -> str:
    """A run's name inside a bundle: its condition and loop seed, e.g. ``self-s2``."""
    run = read_config(run_dir / "run.sqlite").get("run", {})
    return f"{run.get('improver', 'run')}-s{run.get('seed', 0)}"


def _copy_store(src: Path, dest: Path) -> None:
    """A consistent copy of a live or finished SQLite store (the backup API, not a file copy)."""
    source = sqlite3.connect(read_only_uri(src), uri=True)
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
    finally:
        source.close()


def query(store: Path, sql: str) -> list[sqlite3.Row]:
    """Rows from a store, opened read-only (a bundle's or a run's store is never written)."""
    db = sqlite3.connect(read_only_uri(store), uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def read_config(store: Path) -> dict[str, Any]:
    return {r["key"]: json.loads(r["value_json"])
            for r in query(store, "SELECT key, value_json FROM run_config")}


def pack_run(run_dir: Path, dest: Path) -> None:
    """Write one run's store, calls, lineage and diffs into ``dest``."""
    from rsi_bench.store import Store
    from rsi_bench.store.model_calls import export_jsonl

    dest.mkdir(parents=True)
    _copy_store(run_dir / "run.sqlite", dest / "run.sqlite")
    store = Store(dest / "run.sqlite")
    try:
        with (dest / "calls.jsonl").open("w", encoding="utf-8") as f:
            for line in export_jsonl(store):
                f.write(line + "\n")
        db = store.read()
        gens = db.execute("SELECT generation, parent, commit_sha FROM generations "
                          "WHERE commit_sha IS NOT NULL ORDER BY generation").fetchall()
    finally:
        store.close()
    agents = run_dir / "agents"
    if not (agents / ".git").exists():
        raise InputError(f"{run_dir}: no agents/ lineage repository; only runs made by "
                         "`rsi-bench run` can be bundled")
    git(agents, "bundle", "create", str((dest / "lineage.git").resolve()), "--all")
    diffs = dest / "diffs"
    diffs.mkdir()
    for generation, parent, _ in gens:
        if parent is not None:
            patch = git(agents, "diff", "--binary", f"refs/generations/g{parent:04d}",
                        f"refs/generations/g{generation:04d}")
            (diffs / f"g{generation:04d}.diff").write_text(patch, encoding="utf-8")


def finish_run(run_dir: Path, dest: Path, selected: int) -> dict[str, Any]:
    """Add the selected generation's files and the run's hashes; return the hashes."""
    from rsi_bench.tasks import load_suite

    agents = run_dir / "agents"
    final = commit_files(agents, f"refs/generations/g{selected:04d}")  # exactly what ran
    write_files(final, dest / "final-agent")
    config = read_config(dest / "run.sqlite")
    run = config.get("run", {})
    suite = load_suite(run.get("suite", "rsi-core"))
    judges = {json.dumps(json.loads(r[0]), sort_keys=True) for r in query(
        dest / "run.sqlite", "SELECT DISTINCT judge_json FROM results WHERE judge_json != '{}'")}
    hashes = {
        "suite": {"name": suite.name, "content_hash": suite.content_hash()},
        "judge": sorted(json.loads(j) for j in judges),
        "seed_agent": agent_hash(commit_files(agents, "refs/generations/g0000")),
        "final_agent": agent_hash(final),
        "selected_generation": selected,
        "fingerprint": config.get("fingerprint"),
        "model": run.get("model"),
    }
    (dest / "hashes.json").write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n")
    return hashes


def bundle(paths: Iterable[str | Path], out: Path) -> dict[str, Any]:
    """Pack runs into ``out`` (a .tar.gz); return the manifest."""
    from rsi_bench.results.analysis import analyze
    from rsi_bench.results.export import results_dict

    runs = run_dirs(paths)
    with tempfile.TemporaryDirectory(prefix="rsi-bench-bundle-") as tmp:
        root = Path(tmp) / "bundle"
        root.mkdir()
        names = {run_name(run_dir): run_dir for run_dir in runs}
        for name, run_dir in names.items():
            pack_run(run_dir, root / "runs" / name)
        # one analysis of the bundled stores: its numbers are results.json, and its selection
        # (best dev score, ties to the earliest) names each run's final agent
        analysis = analyze([root / "runs" / name for name in names])
        runs_meta = {name: finish_run(run_dir, root / "runs" / name,
                                      analysis.selections[name].selected)
                     for name, run_dir in names.items()}
        results = results_dict(analysis)
        (root / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        files = {p.relative_to(root).as_posix(): sha256_file(p)
                 for p in sorted(root.rglob("*")) if p.is_file()}
        manifest = {"schema": SCHEMA, "version": VERSION, "rsi_bench": __version__,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "runs": runs_meta, "files": files}
        (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False,
                            filter=_normalise)
        os.replace(partial, out)
    return manifest


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owner and time carry no meaning in a bundle: drop them."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    return info


def unpack(bundle_path: Path, dest: Path) -> Path:
    """Extract a bundle safely (regular files under ``dest`` only); return its root."""
    if not bundle_path.is_file():
        raise InputError(f"{bundle_path}: no such bundle")
    try:
        with tarfile.open(bundle_path, "r:*") as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    raise InputError(f"{bundle_path}: {member.name} is not a regular file; "
                                     "a bundle holds regular files only")
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError):
        raise InputError(f"{bundle_path}: not a readable bundle (expected the .tar.gz that "
                         "`rsi-bench bundle` writes)") from None
    return dest


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"bundle has no {what} ({path.name})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"bundle's {path.name} is not valid JSON ({exc})") from None
