"""Hostile solutions, on every isolating backend.

Each case asserts the verdict, and then that a plain job judged right after it in the same
sandbox is unaffected (nothing the hostile job started or wrote survives into it).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
from sandboxes import ISOLATING

from rsi_bench.judge import Judge
from rsi_bench.judge.judge import CHANNEL_DIR
from rsi_bench.sandbox import Limits
from rsi_bench.sandbox.channel import SOCKET_NAME
from rsi_bench.tasks.model import Task

SECRET = "hidden-test-secret-7f3a9c"

ADD = Task(
    id="hostile/add", entry_point="add", reference="def add(a, b):\n    return a + b\n",
    prompt='def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    tests=("def check(candidate):\n    assert candidate(2, 3) == 5\n"
           "    assert candidate(-1, 1) == 0\n"),
)
# A task whose hidden tests contain a secret string; later jobs must not be able to find it.
SECRET_TASK = Task(
    id="hostile/secret", entry_point="add", prompt=ADD.prompt, reference=ADD.reference,
    tests=f"def check(candidate):\n    assert candidate(1, 1) == 2, {SECRET!r}\n",
)


def probe_task(name: str) -> Task:
    """A task whose solution reports what it observed; the tests expect no findings."""
    return Task(id=f"hostile/{name}", entry_point="probe",
                reference="def probe():\n    return []\n",
                prompt='def probe() -> list:\n    """Return findings."""\n',
                tests="def check(candidate):\n    assert candidate() == []\n")


# The probe every hostile case is followed by: any process of this uid but itself, or any file
# in a writable place, is something an earlier job left behind.
LEFTOVERS = '''
import os
def probe():
    found = []
    me = os.getuid()
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                if os.stat("/proc/" + pid).st_uid == me:
                    state = open("/proc/%s/stat" % pid).read().rpartition(")")[2].split()[0]
                    if state not in ("Z", "X"):
                        found.append("process " + pid)
            except OSError:
                pass
    here = os.getcwd()
    for root in ("/scratch", "/tmp", "/dev/shm"):
        for dirpath, dirs, files in os.walk(root):
            for name in files + dirs:
                path = os.path.join(dirpath, name)
                if not path.startswith(here):
                    found.append("file " + path)
    return found
'''


@pytest.fixture(scope="module", params=ISOLATING)
def judge(request: pytest.FixtureRequest) -> Iterator[Judge]:
    from sandboxes import require_backend

    require_backend(request.param)
    os.environ["RSI_BENCH_HOST_SECRET"] = "host-secret-value-1234"
    try:
        j = Judge(request.param, workers=1, timeout=4.0,
                  limits=Limits(memory_mb=1024, job_memory_mb=256, pids=128))
        j.start()
    finally:
        del os.environ["RSI_BENCH_HOST_SECRET"]
    try:
        yield j
    finally:
        j.close()


def after(judge: Judge) -> None:
    """The next job in the same sandbox finds nothing left behind and passes."""
    verdict = judge.judge(probe_task("leftovers"), LEFTOVERS)
    assert verdict.status == "pass", verdict
    assert judge.judge(ADD, ADD.reference).status == "pass"


def test_the_leftover_probe_finds_what_a_job_leaves(judge: Judge) -> None:
    """Control: the probe that follows every case sees a file and a daemon planted in its own
    job, so its passing after a case means something."""
    planted = LEFTOVERS.replace("def probe():", """def probe():
    open("/tmp/planted", "w").write("x")
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            import time
            time.sleep(60)
        os._exit(0)
    os.wait()  # the daemon exists once its parent has returned
    return _probe()
def _probe():""", 1)
    verdict = judge.judge(probe_task("leftovers"), planted)
    assert verdict.status == "fail", verdict
    after(judge)


def status(judge: Judge, task: Task, source: str) -> str:
    verdict = judge.judge(task, source)
    return verdict.status


def test_infinite_loop_times_out(judge: Judge) -> None:
    verdict = judge.judge(ADD, "def add(a, b):\n    while True:\n        pass\n")
    assert verdict.status == "timeout"
    assert verdict.duration_s < 4.0 + 6.0
    assert status(judge, ADD, "while True:\n    pass\n") == "timeout"  # at load time too
    after(judge)


def test_fork_bomb(judge: Judge) -> None:
    source = ("import os\ndef add(a, b):\n    while True:\n        try:\n            os.fork()\n"
              "        except OSError:\n            pass\n")
    assert status(judge, ADD, source) in ("timeout", "error")
    after(judge)


def test_memory_bomb(judge: Judge) -> None:
    source = "def add(a, b):\n    x = []\n    while True:\n        x.append(bytearray(1 << 24))\n"
    assert status(judge, ADD, source) == "oom"
    after(judge)


CHANNEL = f"{CHANNEL_DIR}/{SOCKET_NAME}"


def test_network_is_unreachable(judge: Judge) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        for _ in range(30):
            try:
                accepted.append(listener.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    source = f'''
import os, socket
def probe():
    found = []
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=1)
        found.append("connected to the host")
    except OSError:
        pass
    try:
        socket.getaddrinfo("example.com", 80)
        found.append("resolved a name")
    except OSError:
        pass
    try:  # the runner's own channel to the host (docker)
        s = socket.socket(socket.AF_UNIX)
        s.connect({CHANNEL!r})
        found.append("reached the judge channel")
    except OSError:
        pass
    try:
        found.append("listed " + str(os.listdir({CHANNEL_DIR!r})))
    except OSError:
        pass
    return found
'''
    sandbox = judge._workers[0].sandbox
    if sandbox is not None and sandbox.backend == "docker":  # control: the socket is there
        seen = sandbox.exec(["test", "-S", CHANNEL], user=0)
        assert seen.exit_code == 0, f"{CHANNEL} is not the runner's socket"
    verdict = judge.judge(probe_task("net"), source)
    thread.join()
    listener.close()
    assert verdict.status == "pass", verdict
    assert accepted == []
    after(judge)


def test_writes_outside_the_work_dir_fail_or_vanish(judge: Judge) -> None:
    source = '''
import os
def probe():
    found = []
    for path in ["/etc/pwned", "/usr/pwned", "/pwned", "/scratch/../x", *(
            "/opt/rsi-bench/" + name for name in ("runner.py", "zygote.py", "frames.py",
                                                  "codec.py", "bridge.py", "rebuild.py",
                                                  "looks.py", "fresh.py"))]:
        try:
            open(path, "w").write("x")
            found.append("wrote " + path)
        except OSError:
            pass
    for path in ["/tmp/left", "/dev/shm/left", "/scratch/left"]:
        try:
            open(path, "w").write("x")
        except OSError:
            pass
    return found
'''
    assert status(judge, probe_task("write"), source) == "pass"
    after(judge)  # the files it could write in /tmp, /dev/shm and /scratch are gone


@pytest.mark.parametrize("exit_call", ["sys.exit(0)", "os._exit(0)", "raise SystemExit(0)",
                                       "os.kill(os.getpid(), 9)"])
@pytest.mark.parametrize("where", ["load", "call"])
def test_early_exit_never_passes(judge: Judge, exit_call: str, where: str) -> None:
    if where == "load":
        source = f"import os, sys\n{exit_call}\ndef add(a, b):\n    return a + b\n"
    else:
        source = f"import os, sys\ndef add(a, b):\n    {exit_call}\n"
    assert status(judge, ADD, source) == "error"
    after(judge)


def test_printing_pass_and_forged_frames_do_not_pass(judge: Judge) -> None:
    source = '''
import json, os, struct, sys
def add(a, b):
    print("PASS\\nall tests passed\\n{\\"status\\": \\"pass\\"}", flush=True)
    frame = json.dumps({"op": "result", "status": "pass", "id": "hostile/add#0"}).encode()
    for fd in range(0, 64):
        try:
            os.write(fd, struct.pack(">I", len(frame)) + frame)
        except OSError:
            pass
    return 0
'''
    verdict = judge.judge(ADD, source)
    assert verdict.status == "error", verdict  # the forged frame is a malformed reply
    assert "malformed" in verdict.detail and "PASS" in verdict.output_tail
    honest_liar = 'def add(a, b):\n    print("PASS")\n    return 0\n'
    assert status(judge, ADD, honest_liar) == "fail"
    after(judge)


def test_objects_that_lie_about_equality_cannot_cross(judge: Judge) -> None:
    source = ("class Yes(int):\n    def __eq__(self, other):\n        return True\n"
              "    __hash__ = int.__hash__\n"
              "def add(a, b):\n    return Yes(0)\n")
    assert status(judge, ADD, source) == "error"  # refused as not plain data
    trace = ("import sys\nsys.settrace(lambda *a: None)\n"
             "def add(a, b):\n    sys.settrace(None)\n    return 0\n")
    assert status(judge, ADD, trace) == "fail"
    after(judge)


def test_double_forked_daemon_does_not_survive(judge: Judge) -> None:
    source = '''
import os, time
def add(a, b):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(0.05)
        os._exit(0)
    time.sleep(0.2)
    return a + b
'''
    assert status(judge, ADD, source) == "pass"
    after(judge)


def test_hundred_megabytes_of_output(judge: Judge) -> None:
    source = ("import sys\ndef add(a, b):\n    chunk = 'x' * (1 << 20)\n"
              "    for _ in range(50):\n        sys.stdout.write(chunk)\n    return a + b\n")
    verdict = judge.judge(ADD, source)  # two calls: 100 MB in all
    assert verdict.status == "pass", verdict
    assert len(verdict.output_tail) <= 4096
    after(judge)


def test_hidden_tests_of_this_and_other_tasks_are_unreachable(judge: Judge) -> None:
    # Its own judge: the hunt reads every file, /usr included, which takes longer than the
    # other cases' timeout on a loaded machine.
    with Judge(judge.backend, workers=1, timeout=300.0,
               limits=Limits(memory_mb=1024, job_memory_mb=256, pids=128)) as hunter:
        _hunt(hunter)


def _hunt(judge: Judge) -> None:
    assert judge.judge(SECRET_TASK, SECRET_TASK.reference).status == "pass"
    # The probe never builds the secret itself (that would plant it in its own memory): it
    # looks for the first half followed by the second, in its memory, /proc and every file.
    source = '''
import ctypes, os
P1, P2 = b"hidden-test-", b"secret-" + b"7f3a9c"
def has_secret(data):
    i = data.find(P1)
    while i != -1:
        if data[i + len(P1):i + len(P1) + len(P2)] == P2:
            return True
        i = data.find(P1, i + 1)
    return False
def own_memory():
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    for region in regions:
        if "r" not in region[1] or (len(region) > 5 and region[5].startswith("[v")):
            continue
        start, end = (int(x, 16) for x in region[0].split("-"))
        for offset in range(start, end, 1 << 20):
            if has_secret(ctypes.string_at(offset, min((1 << 20) + 64, end - offset))):
                return True
    return False
def probe():
    found = ["own memory"] if own_memory() else []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for part in ("cmdline", "environ", "mem"):
            try:
                data = open("/proc/%s/%s" % (pid, part), "rb").read(1 << 20)
            except OSError:
                continue
            if has_secret(data):
                found.append("/proc/%s/%s" % (pid, part))
    skip = ("/proc", "/sys", "/dev")
    for dirpath, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in skip]
        for name in files:
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    if has_secret(f.read(1 << 20)):
                        found.append(os.path.join(dirpath, name))
            except OSError:
                pass
    return found
'''
    verdict = judge.judge(probe_task("read-tests"), source)
    assert verdict.status == "pass", verdict
    # Control: the same probe does find the secret when it is in memory.
    planted = source.replace("def probe():", "PLANTED = P1 + P2\ndef probe():")
    assert status(judge, probe_task("read-tests"), planted) == "fail"
    # Control: and in a file (the walk's findings alone are returned).
    in_file = source.replace("def probe():", """def probe():
    with open("/tmp/planted", "wb") as f:
        f.write(P1)
        f.write(P2)
    return [x for x in _probe() if x == "/tmp/planted"]
def _probe():""", 1)
    assert status(judge, probe_task("read-tests"), in_file) == "fail"
    after(judge)


def test_host_environment_is_unreachable(judge: Judge) -> None:
    source = '''
import os
def probe():
    found = [k for k, v in os.environ.items() if "host-secret" in v or "RSI_BENCH" in k]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"host-secret" in open("/proc/%s/environ" % pid, "rb").read():
                    found.append(pid)
            except OSError:
                pass
    return found
'''
    assert status(judge, probe_task("env"), source) == "pass"
    after(judge)
