"""The docker backend: one container per sandbox, created through the docker SDK.

Containers run ``sleep infinity`` under docker's init; work happens through ``exec``. Each has no
network, a read-only root, tmpfs work dirs, memory / pids / CPU limits, all capabilities dropped
but the few the judge runner needs to drop privileges and clean up, no-new-privileges, a clean
environment and our label.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import tarfile
import threading
import time
import uuid
from typing import Any

from rsi_bench.errors import SandboxUnavailable
from rsi_bench.sandbox.base import LABEL, CappedBuffer, ExecResult, SandboxSpec

# What the runner (root inside the container) keeps: switch to the job uid, kill its processes,
# create and purge its work dirs. Everything the job uid runs has no capability at all.
CAPABILITIES = ["SETUID", "SETGID", "KILL", "CHOWN", "DAC_OVERRIDE", "FOWNER"]
SETPRIV = ["setpriv"]  # util-linux, in every Debian image
# Under runsc the container's host cgroup holds gVisor's own processes, and on the ptrace
# platform they grow with every address space a guest ever made (measured with runsc 2022-12:
# ~55 at start, +~1,000 host pids per fork bomb held at 64 guest processes, never given back).
# A tight host limit kills gVisor itself (the whole sandbox dies: an infra failure, replaced);
# too wide a one lets a sandbox take the host's pids. So the host limit is a backstop (4,096
# for the default 256) and the guest's own limit is RLIMIT_NPROC, which gVisor enforces per
# sandbox (the runners set it for jobs; exec sets it below).
RUNSC_HOST_PIDS_PER_TASK = 16
KILL_ALL_OF_USER = ["python3", "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"]


def _client() -> Any:
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a core dependency
        raise SandboxUnavailable("the docker SDK is missing: pip install docker") from exc
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to a user
        raise SandboxUnavailable(
            "the Docker daemon is not reachable "
            f"({type(exc).__name__}); start it (`sudo dockerd &` or `systemctl start docker`) "
            "or use `--sandbox bubblewrap`"
        ) from exc
    return client


class DockerBackend:
    """``runtime`` is a container runtime registered with dockerd (``runsc`` for gVisor); empty
    means dockerd's default (runc)."""

    def __init__(self, runtime: str = "") -> None:
        self._client: Any = None
        self.runtime = runtime
        self.name = f"docker:{runtime}" if runtime else "docker"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _client()
        return self._client

    def check(self, image: str | None = None) -> None:
        from rsi_bench.sandbox.image import check_image

        check_image(self.client, image)
        if self.runtime:
            from rsi_bench.sandbox.runtime import check_registered

            check_registered(self.client, self.runtime)

    def create(self, spec: SandboxSpec) -> DockerSandbox:
        from rsi_bench.sandbox.image import judge_image

        image = spec.image or judge_image()
        if spec.environment:
            from rsi_bench.sandbox.image import check_environment_image

            check_environment_image(self.client, image)
            if self.runtime:
                from rsi_bench.sandbox.runtime import check_registered

                check_registered(self.client, self.runtime)
        else:
            self.check(image)
        lim = spec.limits
        container = self.client.containers.run(
            image,
            command=["sleep", "infinity"],
            name=f"rsi-bench-{spec.run_label}-{uuid.uuid4().hex[:10]}",
            detach=True,
            init=True,
            network_mode="none",
            read_only=True,
            tmpfs={
                # root-owned and sticky, like /tmp (docker takes the mode from the image's
                # /scratch): a job cannot chmod, chown or tag (xattrs) the directory it works
                # in, nor set its times to anything but "now"
                "/scratch": f"size={lim.work_mb}m,mode=1777,exec",
                "/tmp": "size=64m,mode=1777",
            },
            shm_size="16m",
            mem_limit=f"{lim.memory_mb}m",
            memswap_limit=f"{lim.memory_mb}m",
            pids_limit=lim.pids if not self.runtime else RUNSC_HOST_PIDS_PER_TASK * lim.pids,
            nano_cpus=int(lim.cpus * 1e9),
            cap_drop=["ALL"],
            cap_add=CAPABILITIES,
            security_opt=["no-new-privileges"],
            environment=dict(spec.env),
            volumes={h: {"bind": c, "mode": "ro"} for h, c in spec.mounts.items()},
            labels={LABEL: "1", f"{LABEL}.run": spec.run_label},
            user="0",
            working_dir="/scratch",
            hostname="sandbox",
            runtime=self.runtime or None,
        )
        return DockerSandbox(self.client, container, spec, image, self.name, self.runtime)


class DockerSandbox:
    work_root = "/scratch"
    scratch = ("/scratch", "/tmp", "/dev/shm")
    pid_namespace = True

    def __init__(self, client: Any, container: Any, spec: SandboxSpec, image: str,
                 backend: str = "docker", runtime: str = "") -> None:
        self.client, self.container, self.spec, self.image = client, container, spec, image
        self.backend, self.runtime = backend, runtime
        self._image_id: str = client.images.get(image).id
        from rsi_bench.sandbox.image import RUNNER_IN_IMAGE

        self.runner_path = RUNNER_IN_IMAGE
        # exec streams still being read: close() ends them, so that a thread blocked on one
        # returns when another removes the container (under runsc the stream of a process
        # killed with its sandbox is not always closed by dockerd)
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()

    def describe(self) -> dict[str, str]:
        # The runtime as dockerd reports it for this container, not as we asked for it.
        runtime = self.container.attrs.get("HostConfig", {}).get("Runtime") or "runc"
        return {"backend": self.backend, "runtime": runtime, "image": self.image,
                "image_id": self._image_id}

    def _start(self, cmd: list[str], user: int, cwd: str, env: dict[str, str] | None) -> Any:
        api = self.client.api
        if user != 0 and self.runtime:
            # runsc starts an exec'd process with the container's capabilities whatever its
            # uid (runc clears them); a uid change from root makes the kernel drop them all.
            cmd = [*self._guest_limits(), *SETPRIV, f"--reuid={user}", f"--regid={user}",
                   "--clear-groups", "--", *cmd]
            user = 0
        exec_id = api.exec_create(
            self.container.id, cmd, stdin=True, stdout=True, stderr=True, tty=False,
            user=str(user), workdir=cwd, environment=env or {},
        )["Id"]
        sock = api.exec_start(exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)
        return exec_id, raw

    def _guest_limits(self) -> list[str]:
        """prlimit for a process exec'd under runsc: its process count (the cgroup counts
        gVisor's own host processes, see above; init and sleep are the two not counted here) and
        its address space (a host OOM kill would take the whole gVisor sandbox with it)."""
        lim = self.spec.limits
        nproc, memory = max(1, lim.pids - 2), (lim.memory_mb * 3 // 4) << 20
        return ["prlimit", f"--nproc={nproc}:{nproc}", f"--as={memory}:{memory}", "--"]

    def exec(
        self,
        cmd: list[str],
        *,
        input: bytes | None = None,
        timeout: float = 30.0,
        user: int | None = None,
        cwd: str = "/scratch",
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        uid = self.spec.uid if user is None else user
        start = time.monotonic()
        exec_id, raw = self._start(cmd, uid, cwd, env)
        with self._live_lock:
            self._live.add(raw)
        try:
            if input:
                raw.sendall(input)
            raw.shutdown(socket.SHUT_WR)
            out = CappedBuffer(self.spec.limits.output_bytes)
            err = CappedBuffer(self.spec.limits.output_bytes)
            timed_out = not _demux(raw, out, err, start + timeout)
        finally:
            with self._live_lock:
                self._live.discard(raw)
            raw.close()
        if timed_out:
            self._kill_user(uid)
            code = None
        else:
            code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        return ExecResult(code, out.getvalue(), err.getvalue(), timed_out,
                          time.monotonic() - start, out.truncated or err.truncated)

    def _kill_user(self, uid: int) -> None:
        """Kill every process of ``uid`` in the container: a timeout ends the whole tree."""
        if uid == 0:
            try:
                self.container.kill()
            except Exception:  # noqa: BLE001 - already dead (under runsc a fork bomb can end
                pass  # the whole gVisor sandbox): the same outcome as killing it
            return
        for _ in range(5):
            _id, raw = self._start(KILL_ALL_OF_USER, uid, "/", None)
            raw.shutdown(socket.SHUT_WR)
            _demux(raw, CappedBuffer(0), CappedBuffer(0), time.monotonic() + 10)
            raw.close()
            if not self._has_processes_of(uid):
                return

    def _has_processes_of(self, uid: int) -> bool:
        probe = ["python3", "-S", "-c",
                 f"import os,sys; sys.exit(any(os.stat('/proc/'+p).st_uid=={uid} "
                 "for p in os.listdir('/proc') if p.isdigit()))"]
        _id, raw = self._start(probe, 0, "/", None)
        raw.shutdown(socket.SHUT_WR)
        _demux(raw, CappedBuffer(0), CappedBuffer(0), time.monotonic() + 10)
        raw.close()
        return bool(self.client.api.exec_inspect(_id).get("ExitCode"))

    def write_file(self, path: str, data: bytes) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(os.path.basename(path))
            info.size, info.mode = len(data), 0o644
            info.uid = info.gid = self.spec.uid
            tar.addfile(info, io.BytesIO(data))
        # put_archive cannot write into tmpfs mounts, so unpack with tar inside the container.
        result = self.exec(["tar", "-x", "-C", os.path.dirname(path) or "/"],
                           input=buf.getvalue(), user=self.spec.uid)
        if result.exit_code != 0:
            raise OSError(f"cannot write {path} in the sandbox: {result.stderr.decode()[-300:]}")

    def read_file(self, path: str) -> bytes:
        result = self.exec(["cat", path], user=self.spec.uid)
        if result.exit_code != 0:
            raise FileNotFoundError(path)
        return result.stdout

    def stream(self, cmd: list[str], *, user: int = 0) -> DockerStream:
        _id, raw = self._start(cmd, user, "/scratch", None)
        return DockerStream(raw)

    def close(self) -> None:
        with self._live_lock:
            live = list(self._live)
        for raw in live:  # first: a reader blocked on one returns at once
            try:
                raw.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone is fine; cleanup sweeps leftovers
            pass


class DockerStream:
    """Bridges docker's multiplexed exec socket to plain file descriptors."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        out_r, self._out_w = os.pipe()
        self.stdout_fd = out_r
        self._err = CappedBuffer(1 << 16)
        self._pump = threading.Thread(target=self._run, daemon=True)
        self._pump.start()
        in_r, self.stdin_fd = os.pipe()
        self._feed = threading.Thread(target=self._forward, args=(in_r,), daemon=True)
        self._feed.start()

    def _run(self) -> None:
        sink = _FdSink(self._out_w)
        try:
            _demux(self.raw, sink, self._err, None)
        except OSError:
            pass  # the host closed its end before the output ended: nothing is left to deliver
        finally:
            os.close(self._out_w)

    def _forward(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 1 << 16):
                self.raw.sendall(chunk)
            self.raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            os.close(fd)

    def stderr_tail(self) -> bytes:
        return self._err.getvalue()[-4096:]

    def close(self) -> None:
        for fd in (self.stdin_fd, self.stdout_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.raw.close()
        except OSError:
            pass


class _FdSink:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


def _demux(raw: socket.socket, out: Any, err: Any, deadline: float | None) -> bool:
    """Split docker's stream frames (8-byte header) into ``out``/``err``; False on timeout."""
    buf = b""
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            raw.settimeout(left)
        try:
            chunk = raw.recv(1 << 16)
        except TimeoutError:
            return False
        except OSError:
            return True
        if not chunk:
            return True
        buf += chunk
        while len(buf) >= 8:
            kind, size = buf[0], struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + size:
                break
            payload, buf = buf[8 : 8 + size], buf[8 + size :]
            (err if kind == 2 else out).write(payload)
