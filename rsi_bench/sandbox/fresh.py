"""Fresh state between the jobs of one sandbox: whatever a job can write that outlives it is
wiped, and what cannot be wiped is named.

Standard library only: the judge runner and the warm agent server load this file by path inside
the sandbox, and run it as root after every process of the job's uid is dead.

The roots are the writable directories (the work dir, /tmp, /dev/shm, and /dev/mqueue where it
exists). ``Fresh(roots)`` makes each root-owned with mode 1777, so a job can neither chmod it,
chown it, set extended attributes on it, nor set its times to anything but "now"; it records
what each looks like. ``wipe()`` empties every root and puts back its owner, mode, times and
extended attributes. ``leftovers(uid)`` clears the uid's kernel keyrings (where the sandbox lets
it have any: docker's seccomp profile refuses the calls), then names whatever still differs from
the record, and what no wipe reaches: live processes of the uid, keys, System V IPC objects,
abstract unix sockets. A sandbox with leftovers is dirty: the host replaces it before its next
job.

Not covered: a root's ctime (the kernel sets it on every change, the restore included; it shows
when the last wipe ran, not what a job did).
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from typing import Any

MQUEUE = "/dev/mqueue"
IPC_TABLES = ("/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg")
ROOT_MODE = 0o1777
KEYCTL = {"x86_64": 250, "aarch64": 219}.get(platform.machine())
KEYCTL_CLEAR, USER_KEYRING, USER_SESSION_KEYRING = 7, -4, -5
# how long a cleared key may take to disappear (measured: 10-20 ms idle; over 1 s when the
# machine is loaded); waited only while a key is still visible
KEY_GC_S = 5.0


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:  # a file system without extended attributes
        return {}
    found = {}
    for name in names:
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            found[name] = b"<unreadable>"
    return found


def _record(path: str) -> tuple[int, int, int, int, int, dict[str, bytes]]:
    st = os.lstat(path)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns, _xattrs(path))


FIELDS = ("mode", "owner", "group", "access time", "modification time", "extended attributes")


def _empty(top: str) -> None:
    """Remove everything under ``top`` (never following a symlink), keeping ``top`` itself."""
    try:
        entries = list(os.scandir(top))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass  # named by leftovers()


class Fresh:
    def __init__(self, roots: list[str]) -> None:
        present = [r for r in dict.fromkeys([*roots, MQUEUE]) if os.path.isdir(r)]
        self.roots = present
        self.unowned: set[str] = set()  # roots no one inside owns: their times move with wipes
        if os.getuid() == 0:
            for root in present:  # a job may not own the directory it works in
                st = os.lstat(root)
                if (st.st_uid, st.st_mode & 0o7777) == (0, ROOT_MODE):
                    continue
                try:
                    os.chown(root, 0, 0)
                    os.chmod(root, ROOT_MODE)
                except PermissionError:
                    # In a user namespace a mount made from outside belongs to a uid the
                    # namespace does not map: no one inside owns it, so no job can change it
                    # either (sticky: no xattrs, no chmod, no times), which is what we need.
                    if st.st_uid != _overflow_uid() or not st.st_mode & 0o1000:
                        raise
                    self.unowned.add(root)
        self.record = {root: _record(root) for root in present}
        if os.getuid() == 0:
            _libc()  # loaded before any job, not in the first job's time

    def restore(self, root: str) -> None:
        """Put back what a job could change about ``root`` itself (only what differs: a root no
        one inside owns cannot be touched, and never needs to be)."""
        mode, uid, gid, atime, mtime, xattrs = self.record[root]
        now = _xattrs(root)
        for name in now:
            if name not in xattrs:
                os.removexattr(root, name, follow_symlinks=False)
        for name, value in xattrs.items():
            if now.get(name) != value:
                os.setxattr(root, name, value, follow_symlinks=False)
        st = os.lstat(root)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(root, uid, gid, follow_symlinks=False)
        if st.st_mode & 0o7777 != mode & 0o7777:
            os.chmod(root, mode & 0o7777)
        if (st.st_atime_ns, st.st_mtime_ns) != (atime, mtime) and root not in self.unowned:
            os.utime(root, ns=(atime, mtime), follow_symlinks=False)


    def wipe(self) -> None:
        for root in self.roots:
            _empty(root)
            try:
                self.restore(root)
            except OSError:
                pass  # named by leftovers()

    def leftovers(self, uid: int, survivors: int | None = None) -> list[str]:
        """What the next job could still see of the last one; empty when nothing.

        ``survivors``: the caller's count of the uid's live processes, taken after the last of
        them was killed (only root starts one, and nothing here does), else counted here."""
        found = []
        if survivors is None:
            survivors = sum(p.isdigit() and _owned_live(p, uid) for p in os.listdir("/proc"))
        if survivors:
            found.append(f"{survivors} processes of uid {uid} survived")
        for root in self.roots:
            try:
                if os.listdir(root):
                    found.append(f"{root} could not be emptied")
                self.restore(root)  # listing it moved its access time
                now = _record(root)
            except OSError as exc:
                found.append(f"{root} cannot be checked ({exc.strerror})")
                continue
            found += [f"{root}: its {name} changed" for name, a, b in
                      zip(FIELDS, now, self.record[root], strict=True)
                      if a != b and not (root in self.unowned and name.endswith(" time"))]
        keys = 0 if survivors else _clear_keys(uid)  # with survivors, the sandbox is replaced
        if keys:
            found.append(f"{keys} keys in the kernel keyrings of uid {uid}")
        for table, rows in _sysv_ipc_objects().items():
            if rows > 0:
                found.append(f"{rows} System V IPC objects in {table}")
        sockets = _abstract_sockets()
        if sockets:
            found.append(f"{sockets} abstract unix sockets")
        return found


# Under gVisor there is no /proc/sysvipc; the kernel's own counters answer instead:
# shmctl(SHM_INFO).used_ids, msgctl(MSG_INFO).msgpool (queues in use), semctl(SEM_INFO).semusz.
IPC_INFO_CALLS = {"/proc/sysvipc/shm": ("shmctl", 14, 0), "/proc/sysvipc/msg": ("msgctl", 12, 0),
                  "/proc/sysvipc/sem": ("semctl", 19, 7)}


def _sysv_ipc_objects() -> dict[str, int]:
    """System V IPC objects that exist, per kind; a kind that cannot be counted counts as one
    (the sandbox is then replaced rather than trusted)."""
    counts = {}
    for table in IPC_TABLES:
        try:
            with open(table) as f:
                counts[table] = len(f.read().splitlines()) - 1
            continue
        except OSError:
            pass
        try:
            import ctypes

            libc = _libc()
            if libc is None:
                raise OSError("no libc")
            name, command, field = IPC_INFO_CALLS[table]
            buf = (ctypes.c_int * 64)()
            args = (0, command, buf) if name != "semctl" else (0, 0, command, buf)
            counts[table] = buf[field] if getattr(libc, name)(*args) >= 0 else 1
        except (OSError, AttributeError):
            counts[table] = 1
    return counts


def _owned_live(pid: str, uid: int) -> bool:
    try:
        if os.stat(f"/proc/{pid}").st_uid != uid:
            return False
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def _clear_keys(uid: int) -> int:
    """Empty the user keyrings of ``uid``; return how many of its keys are left visible.

    Only the uid itself can clear them (the kernel finds a user keyring by the caller's real
    uid), so this process becomes it for the few system calls that takes and then root again:
    real and effective uid ``uid``, saved uid 0, which is how it can come back. It holds
    nothing a job may see (the judge runs this in the zygote, which never holds a test), no
    process of the uid is alive (``leftovers`` checks that first, and only root makes them),
    and changing uid makes a process non-dumpable for good, so nothing could read its memory
    even then. A fork per job did the same at a hundred times the cost."""
    if KEYCTL is None or os.getuid() != 0 or uid == 0:
        return 0
    libc = _libc()
    groups = os.getgroups()
    os.setgroups([])
    try:
        os.setresgid(uid, uid, 0)
        os.setresuid(uid, uid, 0)
        if libc is not None:  # else nothing is cleared, and every key is counted below
            for ring in (USER_KEYRING, USER_SESSION_KEYRING):
                libc.syscall(KEYCTL, KEYCTL_CLEAR, ring)  # refused by seccomp: nothing to clear
        keys, until = _visible_keys(), time.monotonic() + KEY_GC_S
        while keys and time.monotonic() < until:  # an unlinked key lives until it is collected
            time.sleep(0.005)
            keys = _visible_keys()
        return keys
    finally:  # a process that cannot become root again fails here, and its sandbox with it
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        os.setgroups(groups)


_LIBC: list[Any] = []  # libc through ctypes, loaded on first use (None where it cannot be)


def _libc() -> Any:
    if not _LIBC:
        try:
            import ctypes

            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        except (ImportError, OSError):
            _LIBC.append(None)
    return _LIBC[0]


def _visible_keys() -> int:
    """Keys (not keyrings) that this process can see."""
    try:
        with open("/proc/keys") as f:
            return sum(1 for line in f if len(line.split()) > 7 and line.split()[7] != "keyring")
    except OSError:  # no keys here (docker masks the file; gVisor has none)
        return 0


def _abstract_sockets() -> int:
    """Bound abstract unix sockets in this network namespace (the runners bind none)."""
    try:
        with open("/proc/net/unix") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return 0  # they die with their processes, which are checked above
    return sum(1 for row in rows if len(row.split()) > 7 and row.split()[7].startswith("@"))


def load(path: str) -> type[Fresh]:
    """``Fresh`` from this file at ``path`` (isolated interpreters put no directory on
    sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rsi_bench_fresh", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Fresh  # type: ignore[no-any-return]


def _overflow_uid() -> int:
    try:
        with open("/proc/sys/kernel/overflowuid") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65534
