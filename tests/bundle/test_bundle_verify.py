"""Bundles verify anywhere without a key, and any tampering makes `verify` fail and say where."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from bundles import repack, unpacked
from sandboxes import require_backend

pytestmark = pytest.mark.docker

RUN = ["--model", "simulated", "--suite", "rsi-core", "--limit", "8", "--generations", "2",
       "--sealed", "0.25", "--concurrency", "2", "--solve-timeout", "15",
       "--improve-timeout", "60", "--seed", "4"]
KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}  # verify needs no key
    return subprocess.run([sys.executable, "-m", "rsi_bench.cli", *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_backend("docker")
    root = tmp_path_factory.mktemp("made-here")
    done = cli("run", *RUN, "--run-dir", str(root / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    out = root / "run.tar.gz"
    done = cli("bundle", str(root / "run"), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rsi-bench verify" in done.stdout
    return out


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name -> its whole block of output."""
    blocks: dict[str, str] = {}
    current = None
    for line in done.stdout.splitlines():
        if line[:4].strip() in ("ok", "FAIL", "skip") and ": " in line:
            current = line[6:].split(":", 1)[0]
            blocks[current] = line
        elif current is not None:
            blocks[current] += "\n" + line
    return blocks


def test_verifies_in_another_directory_with_no_key(bundle_file: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "another" / "machine"
    elsewhere.mkdir(parents=True)
    copy = shutil.copy(bundle_file, elsewhere / "submission.tar.gz")
    done = cli("verify", str(copy), cwd=elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    checks = lines(done)
    assert set(checks) == {"manifest", "suite", "lineage", "re-judge", "replay", "statistics"}
    assert all(block.startswith("ok") for block in checks.values()), done.stdout
    assert "verified: every check passed" in done.stdout
    # every recorded solution: 6 dev/held-out tasks per evaluated generation, plus the 2 sealed
    # tasks on generation 0 and on the selected generation (once when that is generation 0)
    stores = list(unpacked(bundle_file, tmp_path / "b").glob("runs/*/run.sqlite"))
    with sqlite3.connect(stores[0]) as db:
        (solutions,) = db.execute(
            "SELECT COUNT(*) FROM results WHERE solution IS NOT NULL").fetchone()
        (evaluated,) = db.execute(
            "SELECT COUNT(*) FROM generations WHERE status = 'evaluated'").fetchone()
        (sealed,) = db.execute(
            "SELECT COUNT(DISTINCT generation) FROM results WHERE split = 'sealed'").fetchone()
    assert len(stores) == 1 and sealed in (1, 2) and solutions == 6 * evaluated + 2 * sealed
    assert f"{solutions} recorded solutions judged again" in checks["re-judge"]


def test_tampered_number_is_named(bundle_file: Path, tmp_path: Path) -> None:
    root = unpacked(bundle_file, tmp_path / "b")
    results = json.loads((root / "results.json").read_text())
    # the first generation after the seed with a held-out score (the simulated improver may
    # make an invalid child, which has none; which one depends on the seed agent's text)
    index, generation = next((i, g) for i, g in enumerate(results["runs"][0]["generations"])
                             if i > 0 and "heldout" in g["scores"])
    old = generation["scores"]["heldout"]["score"]
    generation["scores"]["heldout"]["score"] = old + 0.125
    (root / "results.json").write_text(json.dumps(results))

    plain = cli("verify", "--no-replay", "--no-rejudge",
                str(repack(root, tmp_path / "plain.tar.gz", reseal=False)))
    assert plain.returncode == 1
    assert "results.json: changed" in lines(plain)["manifest"]

    forged = cli("verify", "--no-replay", "--no-rejudge",
                 str(repack(root, tmp_path / "forged.tar.gz", reseal=True)))
    assert forged.returncode == 1
    checks = lines(forged)
    assert checks["manifest"].startswith("ok")
    assert checks["statistics"].startswith("FAIL")
    where = f"results.json.runs[0].generations[{index}].scores.heldout.score"
    assert where in checks["statistics"]
    assert "NOT verified: statistics failed" in forged.stdout


def test_tampered_solution_is_caught_by_replay_and_rejudge(bundle_file: Path,
                                                           tmp_path: Path) -> None:
    root = unpacked(bundle_file, tmp_path / "b")
    store = next(root.glob("runs/*/run.sqlite"))
    with sqlite3.connect(store) as db:
        # the first child with solutions (which children the simulated model makes invalid
        # follows the seed agent's files, which its draws hash)
        gen, task, status = db.execute(
            "SELECT generation, task_id, status FROM results WHERE generation > 0 "
            "AND solution IS NOT NULL ORDER BY generation, task_id LIMIT 1").fetchone()
        db.execute("UPDATE results SET solution = 'def nothing():\n    return None\n', "
                   "status = ? WHERE generation = ? AND task_id = ?",
                   ("pass" if status != "pass" else status, gen, task))
    forged = cli("verify", str(repack(root, tmp_path / "forged.tar.gz", reseal=True)))
    assert forged.returncode == 1
    checks = lines(forged)
    assert f"generation {gen}, task {task}, sample 0: solution differs" in checks["replay"]
    if status != "pass":  # the forged "pass" does not survive the judge
        assert f"generation {gen}, task {task}, sample 0: recorded pass" in checks["re-judge"]
        assert checks["statistics"].startswith("FAIL")


def test_tampered_diff_is_named(bundle_file: Path, tmp_path: Path) -> None:
    root = unpacked(bundle_file, tmp_path / "b")
    diff = sorted(root.glob("runs/*/diffs/g*.diff"))[0]  # the first child's with a diff
    diff.write_text(diff.read_text() + "+# an edit the agent never made\n")
    forged = cli("verify", "--no-replay", "--no-rejudge",
                 str(repack(root, tmp_path / "forged.tar.gz", reseal=True)))
    assert forged.returncode == 1
    assert f"diffs/{diff.name} differs from the lineage" in lines(forged)["lineage"]


def _plant_hook(agent: Path) -> str:
    (agent / "prompts" / ".git" / "hooks").mkdir(parents=True, exist_ok=True)
    (agent / "prompts" / ".git" / "hooks" / "x.py").write_text("ANSWER = 'forged'\n")
    return "prompts/.git/hooks/x.py: not in generation"


def _edit_prompt(agent: Path) -> str:
    path = agent / "prompts" / "solve.md"
    path.write_text(path.read_text() + "\nan instruction the run never had\n")
    return "prompts/solve.md: differs from generation"


def _add_module(agent: Path) -> str:
    (agent / "helper.py").write_text("import os\n")
    return "helper.py: not in generation"


def _drop_manifest(agent: Path) -> str:
    (agent / "agent.toml").unlink()
    return "agent.toml: missing (it is in generation"


@pytest.mark.parametrize("tamper", [_plant_hook, _edit_prompt, _add_module, _drop_manifest],
                         ids=["git-hook", "edited-file", "added-file", "removed-file"])
def test_tampered_final_agent_is_named_even_when_resealed(bundle_file: Path, tmp_path: Path,
                                                          tamper: object) -> None:
    """Any change to the bundled agent, its MANIFEST lines rewritten to match, fails verify
    and names the file (a `.git` hook used to pass: the agent hash skipped `.git`)."""
    root = unpacked(bundle_file, tmp_path / "b")
    agent = next(root.glob("runs/*/final-agent"))
    says = tamper(agent)  # type: ignore[operator]
    forged = cli("verify", "--no-replay", "--no-rejudge",
                 str(repack(root, tmp_path / "forged.tar.gz", reseal=True)))
    assert forged.returncode == 1, forged.stdout
    checks = lines(forged)
    assert checks["manifest"].startswith("ok")
    assert f"final-agent/{says}" in checks["lineage"], checks["lineage"]
    assert "final-agent/ does not match hashes.json" in checks["lineage"]


def test_unlisted_agent_file_and_forged_hashes_are_named(bundle_file: Path,
                                                         tmp_path: Path) -> None:
    root = unpacked(bundle_file, tmp_path / "b")
    run = next(root.glob("runs/*"))
    _plant_hook(run / "final-agent")  # no MANIFEST line: the manifest names it
    plain = cli("verify", "--no-replay", "--no-rejudge",
                str(repack(root, tmp_path / "plain.tar.gz", reseal=False)))
    assert plain.returncode == 1
    assert "final-agent/prompts/.git/hooks/x.py: in the bundle but not in the manifest" in \
        lines(plain)["manifest"]
    shutil.rmtree(run / "final-agent" / "prompts" / ".git")
    hashes = json.loads((run / "hashes.json").read_text())
    hashes["seed_agent"] = "0" * 64  # a forged seed: it was never checked before
    (run / "hashes.json").write_text(json.dumps(hashes))
    forged = cli("verify", "--no-replay", "--no-rejudge",
                 str(repack(root, tmp_path / "forged.tar.gz", reseal=True)))
    assert forged.returncode == 1
    assert "generation 0's commit does not match hashes.json (seed_agent)" in \
        lines(forged)["lineage"]


@pytest.mark.parametrize("damage, says", [
    ("not-a-tar", "not a readable bundle"),
    ("no-manifest", "bundle has no manifest"),
    ("foreign-manifest", "not an rsi-bench bundle manifest"),
    ("foreign-results", "results.json has schema"),
    ("missing-store", "has no runs/"),
])
def test_bad_bundles_get_one_line(bundle_file: Path, tmp_path: Path, damage: str,
                                  says: str) -> None:
    target = tmp_path / "bad.tar.gz"
    if damage == "not-a-tar":
        target.write_bytes(b"this is not a bundle\n")
    else:
        root = unpacked(bundle_file, tmp_path / "b")
        if damage == "no-manifest":
            (root / "MANIFEST.json").unlink()
        elif damage == "foreign-manifest":
            (root / "MANIFEST.json").write_text(json.dumps({"schema": "other/thing"}))
        elif damage == "foreign-results":
            (root / "results.json").write_text(json.dumps({"schema": "rsi-bench/results",
                                                           "version": 99}))
        else:
            next(root.glob("runs/*/run.sqlite")).unlink()
        repack(root, target, reseal=False)
    done = cli("verify", str(target))
    assert done.returncode == 2
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and says in err[0], done.stderr


def _forms(text: str) -> list[bytes]:
    """The text as stored raw, and as it appears inside a JSON string (request records)."""
    return [text.strip().encode(), json.dumps(text.strip())[1:-1].encode()]


def test_no_idiomatic_reference_is_in_the_bundle(bundle_file: Path) -> None:
    """A bundle carries what the agent made and saw; the tasks' second references are neither."""
    from rsi_bench.tasks import load_suite

    tasks = list(load_suite("rsi-core"))
    assert all(t.idiomatic_reference for t in tasks)
    with tarfile.open(bundle_file) as tar:
        blobs = [(m.name, tar.extractfile(m).read())  # type: ignore[union-attr]
                 for m in tar.getmembers() if m.isfile()]
    # The control: the scan does find what an agent was shown (a prompt it solved).
    assert any(form in data for t in tasks for form in _forms(t.prompt) for _, data in blobs)
    for name, data in blobs:
        for task in tasks:
            assert not any(form in data for form in _forms(task.idiomatic_reference)), name
