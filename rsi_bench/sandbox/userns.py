"""What the bubblewrap backend puts around bwrap: a user namespace of its own and a seccomp filter.

**User namespace.** The runner must be root inside (it drops each job to an unprivileged uid and
kills that uid's processes afterwards), so bwrap's own single-uid namespace is not enough. Each
sandbox instead gets a namespace created here, mapping uids and gids 0..65535 inside to a host
range that no other live sandbox holds (a slot claimed with a lock file, released when the
sandbox closes or its process dies). Inside root is therefore no host root, a job's uid is a host
uid nobody else uses (not docker's 60000, not another sandbox's), host files show as owned by
``nobody``, and the kernel keeps the namespace's user keyrings apart from every other one.

bwrap makes the mounts as the host's root (so it can read a root filesystem below a 0700 home)
and only then joins the namespace (``--userns2``); the namespaces it created stay owned by the
host, so even the sandbox's root cannot mount or remount anything in them. Writing a
multi-uid map needs real root on the host, which is why the bubblewrap backend requires it
(util-linux's ``unshare --map-users`` would need shadow's setuid ``newuidmap`` as well).

**Seccomp.** A process inherits its session keyring from whoever started it, and possession
grants access whatever the namespace: every sandbox would share the host's. As docker's default
profile does, a filter makes ``add_key``, ``request_key`` and ``keyctl`` fail with EPERM, for
every ABI the machine runs (x86-64, x32 and i386 on x86_64; arm64 and arm on aarch64).
"""

from __future__ import annotations

import errno
import os
import platform
import struct
import subprocess
import time
from pathlib import Path

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox.uids import first_free

HOST_UID_BASE = 1 << 30  # far above the ranges /etc/subuid, docker and distributions hand out
RANGE = 65536
SLOTS = 16384  # the highest host uid used is HOST_UID_BASE + SLOTS * RANGE - 1 < 2**31
LOCK_DIR = Path("/run/rsi-bench/userns")
CLONE_NEWUSER = 0x10000000

# seccomp_data: nr at offset 0, arch at offset 4 (include/uapi/linux/seccomp.h)
_LD_ABS, _JEQ, _RET = 0x20, 0x15, 0x06
_ALLOW, _KILL = 0x7FFF0000, 0x80000000
_ERRNO = 0x00050000
_X32 = 0x40000000
# add_key, request_key, keyctl per audit arch (arch/*/entry/syscalls, include/uapi/asm-generic)
_KEYRING_CALLS: dict[str, dict[int, tuple[int, ...]]] = {
    "x86_64": {0xC000003E: (248, 249, 250, _X32 | 248, _X32 | 249, _X32 | 250),
               0x40000003: (286, 287, 288)},
    "aarch64": {0xC00000B7: (217, 218, 219), 0x40000028: (309, 310, 311)},
}


def keyring_filter(machine: str | None = None) -> bytes:
    """A classic-BPF seccomp program (what ``bwrap --seccomp`` reads) that makes the keyring
    syscalls fail with EPERM; a call from an ABI it does not know kills the process."""
    machine = machine or platform.machine()
    table = _KEYRING_CALLS.get(machine)
    if table is None:
        raise SandboxUnavailable(f"no keyring seccomp filter for {machine}: the "
                                 "bubblewrap sandbox cannot close the keyring channel here")
    prog: list[tuple[int, int, int, int]] = [(_LD_ABS, 0, 0, 4)]
    for arch, calls in table.items():
        body = [(_LD_ABS, 0, 0, 0)]
        for nr in calls:
            body += [(_JEQ, 0, 1, nr), (_RET, 0, 0, _ERRNO | errno.EPERM)]
        body.append((_RET, 0, 0, _ALLOW))
        prog += [(_JEQ, 0, len(body), arch), *body]
    prog.append((_RET, 0, 0, _KILL))
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


def seccomp_fd(program: bytes) -> int:
    """A fresh readable descriptor holding ``program`` (bwrap reads it to the end, once)."""
    fd = os.memfd_create("rsi-bench-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class UserNamespace:
    """A user namespace mapping 0..65535 to a host range of its own; ``close()`` frees it."""

    def __init__(self) -> None:
        self.slot, self._lock = _claim_slot()
        self.host_base = HOST_UID_BASE + self.slot * RANGE
        try:
            self.fd = _create(self.host_base)
        except BaseException:
            os.close(self._lock)
            raise

    def host_uid(self, uid: int) -> int:
        return self.host_base + uid

    def close(self) -> None:
        for fd in (self.fd, self._lock):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fd = self._lock = -1


def _claim_slot() -> tuple[int, int]:
    """A slot no other live sandbox on this host holds, and the locked descriptor that holds
    it (the kernel drops the lock when the holder dies, so a crash leaks nothing)."""
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    held = first_free(LOCK_DIR, range(SLOTS), 0o600)  # the lowest: lock files stay few
    if held is not None:
        return held
    raise SandboxUnavailable(f"all {SLOTS} bubblewrap uid ranges are in use")


def _create(host_base: int) -> int:
    """Create the namespace (with a short-lived process that unshares into it), write its maps,
    and return a descriptor that keeps it alive."""
    holder = subprocess.Popen(["unshare", "--user", "--", "cat"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert holder.stdin is not None
    try:
        ours, deadline = os.readlink("/proc/self/ns/user"), time.monotonic() + 30
        while True:
            if holder.poll() is not None:
                err = holder.stderr.read().decode(errors="replace").strip() if holder.stderr \
                    else ""
                raise SandboxUnavailable(f"cannot create a user namespace: {err[-200:]}")
            try:
                if os.readlink(f"/proc/{holder.pid}/ns/user") != ours:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SandboxUnavailable("creating a user namespace did not finish in 30 s")
            time.sleep(0.001)
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{holder.pid}/{name}").write_text(f"0 {host_base} {RANGE}\n")
        return os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise SandboxUnavailable(f"cannot map uids into a user namespace: {exc}") from exc
    finally:
        holder.stdin.close()
        holder.wait()
        if holder.stderr is not None:
            holder.stderr.close()
