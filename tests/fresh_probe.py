"""What one job can leave for the next, seen from inside a sandbox: for judge solutions and agent
solves alike.

``LIB`` is stdlib-only source that a judge solution or an agent module includes. It knows, per
state channel, how to plant a mark (``plant``) and how to see it (``state``). A fresh-state test
runs three jobs in one sandbox: a baseline ``state``, a ``plant``, a later ``state``; the two
states must agree. Its control plants and looks in one job, and the look must see the change —
so a probe that could never fire is caught. Where a sandbox refuses the plant itself (docker's
seccomp profile refuses ``add_key``), the plant's answer says so and the test asserts that.
"""

from __future__ import annotations

import json

CHANNELS = ("xattr", "mode", "times", "files", "sysv", "mqueue", "keyring", "process",
            "abstract_socket")

LIB = r'''
import ctypes, hashlib, json, os, platform, socket, time

ROOTS = ("/scratch", "/tmp", "/dev/shm", "/dev/mqueue")
_libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY = {"x86_64": 248, "aarch64": 217}.get(platform.machine(), 248)
USER_KEYRING = -4
LEAK = "rsi-leak-" + os.urandom(6).hex()  # a new name for every plant: an old mark cannot hide it


def _meta(path):
    st = os.lstat(path)
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
    except OSError:
        names = []
    xattrs = {}
    for name in names:
        try:
            xattrs[name] = os.getxattr(path, name, follow_symlinks=False).hex()
        except OSError as exc:
            xattrs[name] = "unreadable %d" % exc.errno
    return st, xattrs


def _own(path):
    here = os.path.realpath(os.getcwd())
    return here not in ROOTS and (path == here or path.startswith(here + "/"))


def _alive(pid):
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def state(roots=ROOTS):
    """Every channel's state, as this job sees it (metadata is read before any listing)."""
    roots = [r for r in roots if os.path.isdir(r)]
    metas = {r: _meta(r) for r in roots}
    out = {
        "xattr": {r: x for r, (_st, x) in metas.items()},
        "mode": {r: [st.st_mode, st.st_uid, st.st_gid] for r, (st, _x) in metas.items()},
        "times": {r: [st.st_atime_ns, st.st_mtime_ns] for r, (st, _x) in metas.items()},
    }
    files = []
    for root in roots:
        for dirpath, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if not _own(os.path.join(dirpath, d))]
            files += [os.path.join(dirpath, n) for n in names + dirs
                      if not _own(os.path.join(dirpath, n))]
    out["files"] = sorted(set(files))
    sysv = {}
    # where there is no /proc/sysvipc (gVisor), the kernel's own counters: shmctl(SHM_INFO)
    # used_ids, msgctl(MSG_INFO) msgpool, semctl(SEM_INFO) semusz
    info = {"shm": ("shmctl", 14, 0), "msg": ("msgctl", 12, 0), "sem": ("semctl", 19, 7)}
    for table in ("shm", "sem", "msg"):
        try:
            with open("/proc/sysvipc/" + table) as f:
                sysv[table] = len(f.read().splitlines()[1:])
        except OSError:
            name, command, field = info[table]
            buf = (ctypes.c_int * 64)()
            args = (0, command, buf) if name != "semctl" else (0, 0, command, buf)
            sysv[table] = buf[field] if getattr(_libc, name)(*args) >= 0 else -1
    out["sysv"] = sysv
    out["mqueue"] = sorted(os.listdir("/dev/mqueue")) if os.path.isdir("/dev/mqueue") else []
    try:
        with open("/proc/net/unix") as f:
            out["abstract_socket"] = sorted(line.split()[-1] for line in f.read().splitlines()[1:]
                                            if line.split()[-1].startswith("@"))
    except OSError:
        out["abstract_socket"] = ["unreadable"]
    me = os.getuid()
    out["process"] = sum(1 for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()
                         and os.stat("/proc/" + p).st_uid == me and _alive(p))
    out["keyring"] = _keys()
    return out


def _keys():
    """The marks among the keys this uid can see (/proc/keys), or why they cannot be read."""
    try:
        with open("/proc/keys") as f:
            return sorted(line.split(None, 8)[-1] for line in f if "rsi-leak" in line)
    except OSError as exc:
        return "unreadable %d" % exc.errno


def _try(fn, *args):
    try:
        fn(*args)
        return True
    except OSError:
        return False


def _daemon(body):
    """A process that leaves the job's session and outlives it, unless someone kills it."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            body(w)
            while True:
                time.sleep(1)
        os._exit(0)
    os.wait()
    os.close(w)
    os.read(r, 1)  # the daemon is ready
    os.close(r)


def _listen(w):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0" + LEAK)
    s.listen()
    os.write(w, b"1")
    _listen.keep = s


def plant(channel, extra=(), text="held-out-text"):
    """Plant ``text`` in ``channel`` wherever this job can; say where it could."""
    data, targets, done = text.encode(), [r for r in ROOTS + tuple(extra) if os.path.isdir(r)], []
    if channel == "xattr":
        done = [t for t in targets if _try(os.setxattr, t, "user.leak", data)]
    elif channel == "mode":
        done = [t for t in targets if _try(os.chmod, t, 0o707)]
    elif channel == "times":
        stamp = 1_000_000_000 + sum(data)
        done = [t for t in targets if _try(os.utime, t, (stamp, stamp))]
        done += ["now:" + t for t in targets if _try(os.utime, t)]
    elif channel == "files":
        for t in targets:
            if _try(lambda p: open(p, "w").write(text), os.path.join(t, LEAK)):
                done.append(t)
    elif channel == "sysv":
        for name, args in (("shmget", (0, 4096, 0o1666)), ("semget", (0, 1, 0o1666)),
                           ("msgget", (0, 0o1666))):  # key 0: IPC_PRIVATE, always a new one
            if getattr(_libc, name)(*args) >= 0:
                done.append(name)
    elif channel == "mqueue":
        done = ["/dev/mqueue"] if _try(lambda: os.close(os.open(
            "/dev/mqueue/" + LEAK, os.O_CREAT | os.O_RDWR, 0o666))) else []
    elif channel == "keyring":
        key = _libc.syscall(ADD_KEY, b"user", LEAK.encode(), data, len(data), USER_KEYRING)
        done = ["user keyring"] if key >= 0 else ["refused %d" % ctypes.get_errno()]
    elif channel == "process":
        _daemon(lambda w: os.write(w, b"1"))
        done = ["daemon"]
    elif channel == "abstract_socket":
        _daemon(_listen)
        done = ["@" + LEAK]
    return done


def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def run(action, channel):
    """One job's part of a test, answered as a short string (it must fit a verdict's detail)."""
    if action == "state":
        return "state " + digest(state()[channel])
    if action == "plant":
        return "plant " + json.dumps(plant(channel))
    # control: plant and look in this one job; a directory of its own takes the plant where
    # the sandbox's own roots refuse it
    own = os.path.join(os.getcwd(), "control-%d" % os.getpid())
    os.mkdir(own)
    roots = ROOTS + (own,)
    before = state(roots)[channel]
    planted = plant(channel, extra=(own,))
    after = state(roots)[channel]
    return "control " + ("differs" if before != after else "same") + " " + json.dumps(planted)
'''

# An agent module whose solve acts by task: the plan (entry point -> [action, channel]) is in
# /agent/plan.json.
AGENT = LIB + r'''

def solve(task_view, model):
    with open("/agent/plan.json") as f:
        action, channel = json.load(f)[task_view.entry_point]
    return run(action, channel)


def improve(workspace, feedback, model):
    pass
'''


def judge_solution(action: str, channel: str, raised: bool = False) -> str:
    """A judge solution whose entry point ``probe`` answers with ``run(action, channel)``
    (returned, or with ``raised`` raised as a RuntimeError's message)."""
    body = f"run({action!r}, {channel!r})"
    body = f"raise RuntimeError({body})" if raised else f"return {body}"
    return LIB + f"\n\ndef probe():\n    {body}\n"


def closed(answer: str) -> bool:
    """True when a plant or control answer says the mark could be planted nowhere (a channel
    the sandbox does not have, or a call it refuses: docker's seccomp profile refuses
    ``add_key`` with EPERM, gVisor has no such call)."""
    planted = json.loads(answer[answer.index("["):])
    return all(p.startswith("refused ") for p in planted)
