"""``rsi-bench verify BUNDLE``: re-check a bundle, line by line, on any machine, with no API key.

Checks, in order (each prints ``ok``, ``FAIL`` or ``skip`` and what it compared):

1. **manifest** — the schema is one this rsi-bench reads; every file is listed with its SHA-256
   and matches it; nothing unlisted is present. A changed file is named here.
2. **suite** — the tasks installed here have the content hash the run was scored on.
3. **lineage** — the git history holds every generation at the recorded commit; every
   ``diffs/gNNNN.diff`` is exactly ``git diff`` parent → child; ``final-agent/`` is the selected
   generation's commit file by file (an added, missing or changed file is named: the commit is
   what its containers mounted), and the seed and final agents match ``hashes.json``.
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
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rsi_bench.bundle.outcome import Check, Report, Say
from rsi_bench.bundle.pack import MANIFEST, SCHEMA, VERSION, read_json, sha256_file, unpack
from rsi_bench.bundle.rerun import check_lineage, check_rejudge, check_replay
from rsi_bench.errors import InputError

TOLERANCE = 1e-9
IGNORED_KEYS = frozenset({"path"})  # where the bundle was unpacked: differs on every machine



def verify(bundle_path: Path, *, rejudge: bool = True, replay: bool = True,
           workdir: Path | None = None, sandbox: str = "docker", runtime: str | None = None,
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
            checks.append(check_rejudge(root, runs, sandbox, runtime))
        else:
            checks.append(Check("re-judge", "skip", "not asked for (--no-rejudge)"))
        if replay:
            say("replaying the loop with the recorded model calls ...")
            checks.append(check_replay(root, runs, Path(tmp) / "replay", sandbox, say, runtime))
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
