"""Tasks of kind io: the runner's checkers, and hostile programs on every isolating backend.

Each hostile program must not pass, and a plain program judged right after it in the same
sandbox must pass (nothing the hostile one started or wrote survives into it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rsi_bench.judge import Judge
from rsi_bench.judge.io_job import check
from rsi_bench.tasks.model import Task

SECRET = "sealed-answer-5b1e77"


def io_task(cases: list[tuple[str, str]], *, time_limit: float = 2.0, name: str = "t") -> Task:
    spec = {"checker": "tokens", "tolerance": 1e-6, "checker_program": "",
            "time_limit_s": time_limit, "memory_mb": 256, "generator": "", "generated": [],
            "small_size": 1, "cases": [{"input": i, "output": o} for i, o in cases]}
    return Task(id=f"io-hostile/{name}", prompt="Print the sum of the numbers.\n",
                entry_point="main", tests=json.dumps(spec), reference=SUM, kind="io")


SUM = "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n"
PLAIN = io_task([("1 2\n", "3"), ("5\n", "5")], name="plain")
# The second test's answer cannot be computed from its input: only reading it would pass.
SEALED = io_task([("1 2\n", "3"), ("4\n", SECRET)], name="sealed")


# ---------------------------------------------------------------- checkers (no sandbox)


def test_checkers() -> None:
    assert check({"checker": "exact"}, "", "a b\nc  \n\n", "a b\nc")
    assert not check({"checker": "exact"}, "", "a  b\nc", "a b\nc")
    assert check({"checker": "tokens"}, "", " 1\n2 ", "1 2\n")
    assert not check({"checker": "tokens"}, "", "1 2 3", "1 2")
    spec = {"checker": "float", "tolerance": 1e-6}
    assert check(spec, "", "1.0000001 2", "1 2.0")
    assert not check(spec, "", "1.01 2", "1 2")
    assert not check(spec, "", "nan", "1")
    assert not check(spec, "", "1", "1 2")
    program = {"checker": "program",
               "checker_program": "def check(input, output, expected):\n"
                                  "    return int(output) % int(input) == 0\n"}
    assert check(program, "3", "9", "3")
    assert not check(program, "3", "10", "3")
    assert not check(program, "3", "not a number", "3")  # the checker raised: wrong answer


# ---------------------------------------------------------------- hostile programs

FORGE = """import sys
data = sys.stdin.read()
print(3)  # the answer of the first test, for every test
"""
READ_TESTS = f"""import os, sys
needle = {SECRET[:6]!r}.encode()
found = set()
def scan(path):
    try:
        with open(path, "rb") as f:
            blob = f.read(1 << 24)
    except OSError:
        return
    i = blob.find(needle)
    if i >= 0:
        found.add(blob[i:i + 20].split()[0].decode(errors="replace"))
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for leaf in ("cmdline", "environ", "mem", "fd/0", "fd/1"):
            scan(f"/proc/{{pid}}/{{leaf}}")
for root in ("/opt/rsi-bench", "/scratch", "/tmp", "/dev/shm", "/run", "/proc/self/cwd"):
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            scan(os.path.join(dirpath, name))
data = sys.stdin.read().split()
print(min(found) if found else sum(map(int, data)))
"""
# Three tests whose answers are all different, and a program that knows every one of them (the
# worst case: the tests leaked) but prints, for each input, the answer of another test. It also
# writes a forged "pass" result frame on stdout and on every other descriptor it can. With the
# map of each input to its own answer (ANSWERS) the same program is right: the control.
THREE = io_task([("1 2\n", "3"), ("5\n", "5"), ("7 1\n", "8")], name="three")
ANSWERS = {"1 2": "3", "5": "5", "7 1": "8"}
SHIFTED = {"1 2": "5", "5": "8", "7 1": "3"}  # each input gets the next test's answer
FORGE_OTHER = """import json, os, struct, sys
answers = {answers!r}
print(answers[sys.stdin.read().strip()], flush=True)
frame = json.dumps({{"op": "result", "status": "pass", "detail": "3 tests"}}).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">I", len(frame)) + frame)
    except OSError:
        pass
"""
SLEEP = "import time\ntime.sleep(3600)\n"
BURN = "while True:\n    pass\n"
FORK_BOMB = """import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
HUGE = "import sys\nwhile True:\n    sys.stdout.write('9' * 65536)\n"

HOSTILE = {
    "forge": (FORGE, PLAIN),
    "forge-other-test": (FORGE_OTHER.format(answers=SHIFTED), THREE),
    "read-tests": (READ_TESTS, SEALED),
    "sleep": (SLEEP, PLAIN),
    "burn-cpu": (BURN, PLAIN),
    "fork-bomb": (FORK_BOMB, PLAIN),
    "huge-output": (HUGE, PLAIN),
}


@pytest.fixture(scope="module", params=["docker", "bubblewrap"])
def judge(request: pytest.FixtureRequest) -> Iterator[Judge]:
    from sandboxes import require_backend

    require_backend(request.param)
    with Judge(request.param, workers=1, timeout=30, run_label="test-io") as j:
        yield j


def test_reference_passes_and_a_wrong_answer_names_only_the_index(judge: Judge) -> None:
    assert judge.judge(PLAIN, SUM).status == "pass"
    verdict = judge.judge(SEALED, SUM)
    assert verdict.status == "fail"
    assert verdict.detail == "test 2 of 2: wrong answer"
    assert SECRET not in json.dumps(verdict.to_dict())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_does_not_pass(judge: Judge, name: str) -> None:
    program, task = HOSTILE[name]
    verdict = judge.judge(task, program)
    assert verdict.status != "pass", verdict
    if name in ("sleep", "burn-cpu"):
        assert verdict.status == "timeout", verdict
    if name == "huge-output":
        assert verdict.status == "error" and "output exceeds" in verdict.detail, verdict
    assert SECRET not in json.dumps(verdict.to_dict())
    assert judge.judge(PLAIN, SUM).status == "pass"  # the sandbox is as fresh as before


def test_forged_answers_pass_where_they_are_the_right_ones(judge: Judge) -> None:
    """The controls of "forge" and "forge-other-test": the same programs pass a task whose
    answers they print, so their failures come from judging each output against its own test."""
    assert judge.judge(THREE, FORGE_OTHER.format(answers=ANSWERS)).status == "pass"
    shifted = judge.judge(THREE, FORGE_OTHER.format(answers=SHIFTED))
    assert (shifted.status, shifted.detail) == ("fail", "test 1 of 3: wrong answer"), shifted
    threes = io_task([("1 2\n", "3"), ("0 3\n", "3")], name="threes")
    assert judge.judge(threes, FORGE).status == "pass"


# A program that plants a marker in every writable place and reports whether a marker of an
# earlier test is there. Within one test it also reads its own marker back: the control that
# shows the probe would see a planted file.
CARRY = """import os, sys
data = sys.stdin.read().split()
mine = "marker-" + data[0]
seen_own, earlier = False, []
for root in ("/scratch", "/tmp", "/dev/shm", os.getcwd()):
    try:
        with open(os.path.join(root, mine), "w") as f:
            f.write("x")
        seen_own = seen_own or os.path.exists(os.path.join(root, mine))
        earlier += [n for n in os.listdir(root) if n.startswith("marker-") and n != mine]
    except OSError:
        pass
print(data[0], "planted" if seen_own else "blind", "leak" if earlier else "clean")
"""


def test_nothing_written_in_one_test_reaches_the_next(judge: Judge) -> None:
    task = io_task([(f"{i}\n", f"{i} planted clean") for i in range(1, 4)], name="carry")
    verdict = judge.judge(task, CARRY)
    assert verdict.status == "pass", verdict


def test_repeated_judgings_agree(judge: Judge) -> None:
    programs = [SUM, FORGE, "import sys\nprint(int(sys.stdin.read().split()[0]))\n"]
    runs = [[judge.judge(PLAIN, p).status for p in programs] for _ in range(3)]
    assert runs[0] == runs[1] == runs[2] == ["pass", "fail", "fail"]
