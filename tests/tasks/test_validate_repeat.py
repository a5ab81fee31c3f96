"""`tasks validate --repeat N`: a verdict that changes between judgings fails validation and
names its task; verdicts that repeat pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rsi_bench.judge import Job, Verdict
from rsi_bench.tasks import load_suite
from rsi_bench.tasks.validate import disagreements

TASK = load_suite("rsi-io").get("rsi-io/flipped_lamps")


def test_disagreements_name_the_task_the_check_and_every_round() -> None:
    jobs = [Job(TASK, TASK.reference, 0), Job(TASK, TASK.brute_force, 4),
            Job(TASK, "print(0)\n", 5)]
    same = [[Verdict(TASK.id, "pass", 1.0, "13 tests", key=0),
             Verdict(TASK.id, "timeout", 9.0, f"test {t} of 40: exceeded the time limit (CPU)",
                     key=4),
             Verdict(TASK.id, "fail", 0.1, "test 1 of 13: wrong answer", key=5)]
            for t in (12, 13)]  # which test a timeout hit depends on load: not a disagreement
    assert disagreements(jobs, same) == []
    changed = [same[0], [*same[1][:2], Verdict(TASK.id, "fail", 0.1,
                                               "test 2 of 13: wrong answer", key=5)]]
    assert disagreements(jobs, changed) == [
        f"DISAGREE {TASK.id} (wrong variant fails): round 1: fail: test 1 of 13: wrong answer; "
        "round 2: fail: test 2 of 13: wrong answer"]
    flipped = [same[0], [Verdict(TASK.id, "fail", 1.0, "test 3 of 13: wrong answer"),
                         *same[1][1:]]]
    (line,) = disagreements(jobs, flipped)
    assert line.startswith(f"DISAGREE {TASK.id} (reference): round 1: pass: 13 tests;")


# A reference whose answer alternates between judgings: it keeps a count, per program, in a
# directory of the host (only the local backend, which isolates nothing, lets it), and answers
# right on odd counts. STEADY answers right every time: the control.
STEADY = "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"
COUNTER = """import hashlib, os, sys
key = hashlib.sha256(open(__file__, "rb").read()).hexdigest()
path = os.path.join({store!r}, key)
count = int(open(path).read()) + 1 if os.path.exists(path) else 1
with open(path, "w") as f:
    f.write(str(count))
print(sum(map(int, sys.stdin.read().split())) + (count + 1) % 2)
"""


def suite(root: Path, reference: str) -> Path:
    directory = root / "counter"
    directory.mkdir()
    body = "\n".join([
        'schema_version = 1', 'kind = "io"', 'time_limit_s = 2.0',
        "prompt = '''Print the sum of the numbers.'''",
        f"reference = '''\n{reference}\ndef main():\n    pass\n'''",
        "brute_force = '''\nimport sys\nprint(sum(map(int, sys.stdin.read().split())))\n'''",
        '[[tests]]', 'input = "1 2\\n"', 'output = "3\\n"'])
    (directory / "add.toml").write_text(body + "\n")
    return directory


def validate(directory: Path, repeat: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rsi_bench.cli", "tasks", "validate", "--suite", str(directory),
         "--sandbox", "local", "--workers", "1", "--repeat", str(repeat)],
        capture_output=True, text=True, env=os.environ.copy(), timeout=600)


def test_a_verdict_that_changes_between_judgings_fails_validation(tmp_path: Path) -> None:
    store = tmp_path / "counts"
    store.mkdir()
    flaky = validate(suite(tmp_path, COUNTER.format(store=str(store))), 2)
    assert flaky.returncode == 1, flaky.stdout + flaky.stderr
    assert ("DISAGREE counter/add (reference): round 1: pass: 1 tests; "
            "round 2: fail: test 1 of 1: wrong answer") in flaky.stderr
    assert "FAIL counter/add (reference, round 2): fail" in flaky.stderr
    assert "with differing verdicts" in flaky.stdout
    assert len(os.listdir(store)) >= 1  # the counter did count: the program ran each round


def test_verdicts_that_repeat_pass(tmp_path: Path) -> None:
    steady = validate(suite(tmp_path, STEADY), 3)
    assert steady.returncode == 0, steady.stdout + steady.stderr
    assert "reference checks pass in each of 3 judgings, verdicts identical" in steady.stdout
    assert "DISAGREE" not in steady.stderr
