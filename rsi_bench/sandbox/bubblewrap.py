"""The bubblewrap backend, for machines without Docker.

Each process runs in fresh pid, network, ipc, uts and mount namespaces built by ``bwrap``, inside
a user namespace of the sandbox's own (see userns.py). Nothing of the host is visible: the root
is the judge image's own root filesystem (materialised by `rsi-bench sandbox setup`, see
rootfs.py), read-only; besides it only a private /scratch (a host temporary directory), tmpfs
/tmp and /dev/shm, a new /proc, a minimal /dev and the files the sandbox is given (``mounts``,
read-only). No environment, only the capabilities the judge runner needs, and a seccomp filter
that closes the kernel keyring. Untrusted code runs as an unprivileged uid with rlimits (memory,
processes, file size, CPU time).

What it lacks compared to docker: there is no cgroup, so memory and process limits hold per job
(rlimits) rather than for the whole sandbox. It must run as real root: only root may map a range
of uids into a user namespace, and the runner needs root inside to switch jobs to another uid.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox.base import Limits, SandboxSpec
from rsi_bench.sandbox.image import RUNNER_IN_IMAGE
from rsi_bench.sandbox.local import ProcessSandbox
from rsi_bench.sandbox.rootfs import Rootfs, check_rootfs
from rsi_bench.sandbox.userns import UserNamespace, keyring_filter, seccomp_fd

CAPS = ["CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]
SYSTEM_PYTHON = "/usr/bin/python3"  # the root filesystem's, not the host's
OWN_MOUNTS = {"proc", "dev", "sys", "tmp", "scratch"}  # never taken from the root filesystem


def _enter(ns_fd: int, uid: int, limits: Limits, cmd: list[str]) -> list[str]:
    """Run ``cmd`` as ``uid`` of the sandbox's user namespace.

    bwrap leaves the process in that namespace as the host's uid 0, which the namespace does not
    map, holding the namespace's descriptor: close it, become the namespace's root (so that a
    further switch clears every capability), then, for a job, its uid under rlimits (with no
    cgroup, these are the limits that hold).
    """
    code = [
        "import os, resource as r, sys",
        f"os.close({ns_fd})",
        "os.setgroups([]); os.setresgid(0, 0, 0); os.setresuid(0, 0, 0)",
    ]
    if uid != 0:
        code += [
            f"for k, v in ((r.RLIMIT_NPROC, {limits.pids}), (r.RLIMIT_AS, "
            f"{limits.memory_mb << 20}), (r.RLIMIT_CORE, 0)):",
            "    r.setrlimit(k, (v, v))",
            f"os.setresgid({uid}, {uid}, {uid}); os.setresuid({uid}, {uid}, {uid})",
        ]
    code.append("os.execvp(sys.argv[1], sys.argv[1:])")
    return [SYSTEM_PYTHON, "-I", "-S", "-c", "\n".join(code), *cmd]


def root_layout(root: Path, destinations: list[str]) -> list[str]:
    """bwrap arguments that show ``root`` read-only at / and leave room for mount points.

    Every entry of ``root`` is bound on its own onto bwrap's empty root; a directory that holds
    a mount point becomes a fresh directory whose entries are bound on their own in turn, so a
    mount point never has to be created inside the (read-only, shared) root filesystem.
    """
    dests = {PurePosixPath(d) for d in destinations}
    ancestors = {p for d in dests for p in d.parents if p != PurePosixPath("/")}

    def level(inside: PurePosixPath) -> list[str]:
        args: list[str] = []
        host = root / inside.relative_to("/")
        for name in sorted(os.listdir(host)) if host.is_dir() else []:
            path, source = inside / name, host / name
            if (inside == PurePosixPath("/") and name in OWN_MOUNTS) or path in dests:
                continue
            if source.is_symlink():
                args += ["--symlink", os.readlink(source), str(path)]
            elif path in ancestors and source.is_dir():
                args += ["--perms", "0755", "--dir", str(path), *level(path)]
            else:
                args += ["--ro-bind", str(source), str(path)]
        return args

    args = level(PurePosixPath("/"))
    # Mount points below directories the root filesystem lacks: world-searchable, so the job
    # uid can reach what is mounted there (bwrap would create them 0700).
    missing = sorted((p for p in ancestors if not (root / p.relative_to("/")).exists()),
                     key=lambda p: len(p.parts))
    return args + [a for p in missing for a in ("--perms", "0755", "--dir", str(p))]


class BubblewrapSandbox(ProcessSandbox):
    backend = "bubblewrap"
    pid_namespace = True

    def __init__(self, spec: SandboxSpec, bwrap: str, rootfs: Rootfs, *,
                 seccomp: bool = True) -> None:
        """``seccomp=False`` leaves the keyring open: only for tests of the namespace layer."""
        super().__init__(spec)
        self.bwrap, self.rootfs = bwrap, rootfs
        self.runner_path = RUNNER_IN_IMAGE
        self.work_root = "/scratch"
        self.scratch = ("/scratch", "/tmp", "/dev/shm")
        self.python = SYSTEM_PYTHON
        self._filter = keyring_filter() if seccomp else None
        try:
            self.userns = UserNamespace()
            # /scratch belongs to the job uid, as on docker (seen from the host: its mapped uid).
            job = self.userns.host_uid(spec.uid)
            os.chown(self.host_dir, job, job)
            # /tmp and /dev/shm are host directories the namespace's root owns (a tmpfs bwrap
            # mounts belongs to no uid inside, so the wiper could not put back its times, which
            # any job may set to "now"): sticky and world-writable, like a fresh tmpfs.
            root = self.userns.host_uid(0)
            self._shared = {}
            for inside in ("/tmp", "/dev/shm"):
                where = Path(tempfile.mkdtemp(prefix=f"{self.host_dir.name}-",
                                              dir=self.host_dir.parent))
                os.chown(where, root, root)
                os.chmod(where, 0o1777)
                self._shared[inside] = where
        except BaseException:
            super().close()
            raise
        self._layout = root_layout(rootfs.root, ["/scratch", *spec.mounts.values()])
        for host, inside in spec.mounts.items():
            self._layout += ["--ro-bind", host, inside]

    def _host_path(self, path: str) -> str:
        if path.startswith("/scratch"):
            return path.replace("/scratch", str(self.host_dir), 1)
        return path

    def describe(self) -> dict[str, str]:
        return {"backend": self.backend, "image": self.rootfs.image,
                "image_id": self.rootfs.image_id}

    def write_file(self, path: str, data: bytes) -> None:
        super().write_file(path, data)
        job = self.userns.host_uid(self.spec.uid)
        os.chown(self._host_path(path), job, job)  # the job's own file, as on docker

    def wrap(self, cmd: list[str], user: int | None, cwd: str
             ) -> tuple[list[str], str | None, tuple[int, ...]]:
        uid = self.spec.uid if user is None else user
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                *self._layout, "--bind", str(self.host_dir), "/scratch",
                "--bind", str(self._shared["/tmp"]), "/tmp", "--proc", "/proc", "--dev", "/dev",
                "--bind", str(self._shared["/dev/shm"]), "/dev/shm", "--remount-ro", "/",
                "--hostname", "sandbox", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
                "--setenv", "LANG", "C.UTF-8", "--chdir", cwd, "--cap-drop", "ALL"]
        for key, value in self.spec.env.items():
            args += ["--setenv", key, value]
        for cap in CAPS:  # setuid() to a non-root uid clears them all for untrusted code
            args += ["--cap-add", cap]
        ns_fd = os.dup(self.userns.fd)  # bwrap joins it once the mounts are made
        fds: tuple[int, ...] = (ns_fd,)
        args += ["--userns2", str(ns_fd)]
        if self._filter is not None:
            fds += (seccomp_fd(self._filter),)
            args += ["--seccomp", str(fds[-1])]
        if cmd and cmd[0] == "python3":
            cmd = [SYSTEM_PYTHON, *cmd[1:]]
        return [*args, "--", *_enter(ns_fd, uid, self.spec.limits, cmd)], None, fds

    def close(self) -> None:
        super().close()
        for where in getattr(self, "_shared", {}).values():
            shutil.rmtree(where, ignore_errors=True)
        if hasattr(self, "userns"):
            self.userns.close()



class BubblewrapBackend:
    name = "bubblewrap"
    _probed: set[str] = set()  # root filesystems a sandbox was started on in this process

    def check(self) -> None:
        self._ready()

    def _ready(self) -> tuple[str, Rootfs]:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap is not installed: apt-get install bubblewrap")
        if shutil.which("unshare") is None:
            raise SandboxUnavailable("the bubblewrap sandbox needs unshare "
                                     "(apt-get install util-linux)")
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "the bubblewrap sandbox needs root (only root can map a range of uids into its "
                "user namespace); run as root or use --sandbox docker"
            )
        rootfs = check_rootfs()
        if rootfs.image_id not in self._probed:
            self._probe(bwrap, rootfs)
            self._probed.add(rootfs.image_id)
        return bwrap, rootfs

    @staticmethod
    def _probe(bwrap: str, rootfs: Rootfs) -> None:
        probe = BubblewrapSandbox(SandboxSpec(run_label="probe"), bwrap, rootfs)
        try:
            result = probe.exec(["python3", "-S", "-c", "pass"], user=0, timeout=30)
        finally:
            probe.close()
        if result.exit_code != 0:
            reason = result.stderr.decode(errors="replace").strip()[:200]
            raise SandboxUnavailable(f"bubblewrap cannot create its namespaces here: {reason}")

    def create(self, spec: SandboxSpec) -> BubblewrapSandbox:
        if spec.environment:
            raise SandboxUnavailable(f"the environment image {spec.image} needs the docker "
                                     "sandbox (runc or runsc): "
                                     "bubblewrap runs the judge's own root filesystem only")
        bwrap, rootfs = self._ready()
        return BubblewrapSandbox(spec, bwrap, rootfs)
