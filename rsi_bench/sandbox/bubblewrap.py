"""The bubblewrap backend, for machines without Docker.

Each process runs in fresh pid, network, ipc, uts and mount namespaces built by ``bwrap``: the
host's /usr read-only, a private /scratch (a host temporary directory), tmpfs /tmp, a new /proc,
no environment, and only the capabilities the judge runner needs. Untrusted code runs as an
unprivileged uid with rlimits (memory, processes, file size, CPU time).

What it lacks compared to docker: there is no cgroup, so memory and process limits hold per job
(rlimits) rather than for the whole sandbox. bwrap must run as root (no user namespace), because
the runner switches the job to another uid.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox.base import Limits, SandboxSpec
from rsi_bench.sandbox.image import RUNNER_FILES
from rsi_bench.sandbox.local import ProcessSandbox

RUNNER_INSIDE = "/opt/rsi-bench/runner.py"
CAPS = ["CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]
SYSTEM_PYTHON = "/usr/bin/python3"


def _switch_user(uid: int, limits: Limits, cmd: list[str]) -> list[str]:
    """Run ``cmd`` as ``uid`` under rlimits: with no cgroup, these are the limits that hold."""
    code = (
        "import os, resource as r, sys\n"
        f"for k, v in ((r.RLIMIT_NPROC, {limits.pids}), (r.RLIMIT_AS, {limits.memory_mb << 20}),"
        " (r.RLIMIT_CORE, 0)):\n"
        "    r.setrlimit(k, (v, v))\n"
        f"os.setgroups([]); os.setgid({uid}); os.setuid({uid})\n"
        "os.execvp(sys.argv[1], sys.argv[1:])"
    )
    return [SYSTEM_PYTHON, "-I", "-S", "-c", code, *cmd]


class BubblewrapSandbox(ProcessSandbox):
    backend = "bubblewrap"
    pid_namespace = True

    def __init__(self, spec: SandboxSpec, bwrap: str) -> None:
        super().__init__(spec)
        self.bwrap = bwrap
        self.runner_path = RUNNER_INSIDE
        self.work_root = "/scratch"
        self.scratch = ("/scratch", "/tmp", "/dev/shm")
        self.python = SYSTEM_PYTHON
        self._runner_host = Path(__file__).resolve().parent.parent / "judge" / "runner.py"
        os.chown(self.host_dir, spec.uid, spec.uid)  # /scratch belongs to the job uid, as on docker

    def _host_path(self, path: str) -> str:
        if path.startswith("/scratch"):
            return path.replace("/scratch", str(self.host_dir), 1)
        return path

    def _parents(self) -> list[str]:
        """World-readable parent directories for every mount point: bwrap would make them 0700,
        and the job uid could not reach what is mounted below them."""
        inside = [RUNNER_INSIDE, *self.spec.mounts.values()]
        parents = sorted({str(p) for path in inside for p in Path(path).parents if str(p) != "/"},
                         key=lambda p: p.count("/"))
        return [arg for p in parents for arg in ("--perms", "0755", "--dir", p)]

    def _runner_binds(self) -> list[str]:
        inside = Path(RUNNER_INSIDE).parent
        return [arg for path in RUNNER_FILES
                for arg in ("--ro-bind", str(path), str(inside / path.name))]

    def wrap(self, cmd: list[str], user: int | None, cwd: str) -> tuple[list[str], str | None]:
        uid = self.spec.uid if user is None else user
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                "--ro-bind", "/usr", "/usr", "--perms", "1777", "--tmpfs", "/tmp",
                "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
                "--bind", str(self.host_dir), "/scratch",
                *self._parents(), *self._runner_binds(),
                "--hostname", "sandbox", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
                "--setenv", "LANG", "C.UTF-8", "--chdir", cwd, "--cap-drop", "ALL"]
        for name in ("bin", "lib", "lib64", "sbin"):
            if os.path.islink(f"/{name}"):
                args += ["--symlink", os.readlink(f"/{name}"), f"/{name}"]
            elif os.path.isdir(f"/{name}"):
                args += ["--ro-bind", f"/{name}", f"/{name}"]
        for host, inside in self.spec.mounts.items():
            args += ["--ro-bind", host, inside]
        for key, value in self.spec.env.items():
            args += ["--setenv", key, value]
        for cap in CAPS:  # setuid() to a non-root uid clears them all for untrusted code
            args += ["--cap-add", cap]
        if uid != 0:
            cmd = _switch_user(uid, self.spec.limits, cmd)
        if cmd and cmd[0] == "python3":
            cmd = [SYSTEM_PYTHON, *cmd[1:]]
        return [*args, "--", *cmd], None


class BubblewrapBackend:
    name = "bubblewrap"

    def check(self) -> None:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap is not installed: apt-get install bubblewrap")
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "the bubblewrap sandbox needs root (it switches jobs to an unprivileged uid "
                "without a user namespace); run as root or use --sandbox docker"
            )
        if not os.path.exists(SYSTEM_PYTHON):
            raise SandboxUnavailable(f"the bubblewrap sandbox needs {SYSTEM_PYTHON}")
        probe = BubblewrapSandbox(SandboxSpec(run_label="probe"), bwrap)
        try:
            result = probe.exec(["python3", "-S", "-c", "pass"], user=0, timeout=30)
        finally:
            probe.close()
        if result.exit_code != 0:
            reason = result.stderr.decode(errors="replace").strip()[:200]
            raise SandboxUnavailable(f"bubblewrap cannot create its namespaces here: {reason}")

    def create(self, spec: SandboxSpec) -> BubblewrapSandbox:
        self.check()
        return BubblewrapSandbox(spec, shutil.which("bwrap") or "bwrap")
