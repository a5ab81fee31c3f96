"""The host side of the judge: a pool of warm sandboxes, each running one runner.

``Judge`` hands jobs to workers; a worker sends the job to its runner and waits for the result
frame under a host-enforced wall clock. A runner that misses the wall clock, dies, or reports
that it could not clean up after a job is replaced by a fresh sandbox before the next job.

A repo task whose hidden JSON names an ``environment`` (a SWE-bench instance) is judged in a
sandbox made from that image instead (docker only), with the host's runner files mounted into
it and ``repo_env.py`` started (see there); it takes one of the workers' slots while it runs,
and up to ``workers`` such sandboxes are kept warm, one per image, for the next job of the same
image. A missing environment image is an infrastructure outcome (``JudgeStartError``), never a
verdict.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from rsi_bench.errors import RsiBenchError, SandboxUnavailable
from rsi_bench.judge.io_frame import io_frame
from rsi_bench.judge.repo_frame import repo_frame
from rsi_bench.judge.runner import PROTOCOL, recv_frame, send_frame
from rsi_bench.judge.verdict import Verdict
from rsi_bench.sandbox import Limits, Sandbox, SandboxSpec, backend_kind, get_backend
from rsi_bench.sandbox.channel import Attached, ChannelError
from rsi_bench.sandbox.image import (
    ENV_RUNNER,
    ENV_RUNNER_FILES,
    RUNNER_DIR_IN_IMAGE,
    runner_sha256,
)
from rsi_bench.sandbox.uids import UidLease
from rsi_bench.tasks.model import Task

CHANNEL_DIR = "/run/rsi-bench"  # where the runner's socket is mounted (root-only, 0700)
HOST_GRACE_S = 5.0  # on top of the job timeout, before the host kills the sandbox
FRESH = Path(__file__).resolve().parent.parent / "sandbox" / "fresh.py"
FRESH_IN = "/opt/rsi-bench/fresh.py"  # beside the runner; it wipes and checks after each job
ENV_SCRIPT = f"{RUNNER_DIR_IN_IMAGE}/{ENV_RUNNER.name}"  # the runner in an environment image
# an environment's sandbox: whole repositories (copied to /scratch, a tmpfs charged to the
# container's memory) and their own test suites, at least these limits
ENV_MEMORY_MB, ENV_JOB_MEMORY_MB, ENV_WORK_MB = 6144, 3072, 2048


class JudgeError(RsiBenchError):
    """The judge itself failed (not the solution): a runner crashed twice on the same job."""


class JudgeStartError(JudgeError, SandboxUnavailable):
    """A judge sandbox or its runner did not start: before any solution was sent to it, so
    an infrastructure outcome (``rsi_bench.infra``), never a verdict."""


def environment(task: Task) -> dict | None:
    """A repo task's environment (``{"image", "repo", "python"}``), or None: the judge image."""
    if task.kind != "repo":
        return None
    found = json.loads(task.tests).get("environment")
    return found if isinstance(found, dict) else None


def environment_limits(limits: Limits) -> Limits:
    return replace(limits, memory_mb=max(limits.memory_mb, ENV_MEMORY_MB),
                   job_memory_mb=max(limits.job_memory_mb, ENV_JOB_MEMORY_MB),
                   work_mb=max(limits.work_mb, ENV_WORK_MB))


@dataclass(frozen=True)
class Job:
    task: Task
    solution: str  # a complete program
    key: int = 0


def task_seed(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big")


class _Worker:
    """One sandbox and its runner, under a uid of its own (leased while the sandbox lives)."""

    def __init__(self, backend_name: str, spec: SandboxSpec, script: str = "") -> None:
        self.backend_name, self.spec = backend_name, spec
        self.script = script  # what the interpreter runs; default: the sandbox's runner
        self.attached = Attached(backend_name, spec, CHANNEL_DIR)
        self.lease: UidLease | None = None
        self.jobs = 0

    @property
    def sandbox(self) -> Sandbox | None:
        return self.attached.sandbox

    def start(self) -> None:
        def command(sandbox: Sandbox) -> list[str]:
            # -I without -S: the site module adds the image's system package directories
            # (root-owned, read-only), where Debian installs the libraries a solution may import.
            cmd = ["python3", "-I", self.script or sandbox.runner_path,
                   "--uid", str(sandbox.spec.uid),
                   "--work-root", sandbox.work_root,
                   "--reap", "uid" if sandbox.pid_namespace else "group"]
            for path in sandbox.scratch if sandbox.pid_namespace else ():
                cmd += ["--clean", path]
            return cmd + (["--fresh", FRESH_IN] if sandbox.pid_namespace else [])

        if self.lease is None:
            self.lease = UidLease("judge")
        self.attached.spec = replace(self.spec, uid=self.lease.uid,
                                     mounts={**self.spec.mounts, str(FRESH): FRESH_IN})
        try:
            self.attached.start(command)
            hello = recv_frame(self.attached.out_fd, time.monotonic() + 60)
        except (ChannelError, TimeoutError, EOFError, ValueError, OSError) as exc:
            tail = self.attached.stderr_tail()
            self.stop()
            raise JudgeStartError(f"the judge runner did not start in the sandbox: {tail}"
                                  ) from exc
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            self.stop()
            raise JudgeError(f"the judge runner speaks another protocol: {hello!r}")

    def stop(self) -> None:
        self.attached.stop()
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def run(self, job: Job, timeout: float, limits: Limits) -> dict:
        if self.attached.stream is None:
            self.start()
        self.jobs += 1
        frame = {
            "op": "job", "id": f"{job.task.id}#{job.key}", "solution": job.solution,
            "entry_point": job.task.entry_point, "tests": job.task.tests,
            "prelude": job.task.prompt, "seed": task_seed(job.task.id), "timeout": timeout,
            "memory_mb": limits.job_memory_mb,
        }
        if job.task.kind == "repo":  # a diff; pytest runs the hidden tests, per job
            frame, timeout = repo_frame(frame["id"], job.task, job.solution,
                                        limits.job_memory_mb)
        if job.task.kind == "io":  # a program on stdin/stdout: its own limits, per test
            frame, timeout = io_frame(frame["id"], job.task, job.solution)
        start = time.monotonic()
        try:
            send_frame(self.attached.in_fd, frame)
            result = recv_frame(self.attached.out_fd, start + timeout + HOST_GRACE_S)
        except TimeoutError:
            self.restart()
            return {"status": "timeout", "duration_s": time.monotonic() - start,
                    "detail": f"killed by the host after {timeout + HOST_GRACE_S:.0f} s"}
        except (EOFError, OSError, ValueError) as exc:
            self.restart()
            return {"status": "internal", "detail": f"runner lost: {exc!r}"}
        assert isinstance(result, dict)
        if result.get("dirty"):
            self.restart()
        return result


class Judge:
    """Judge solutions in isolated sandboxes. Use as a context manager.

    >>> with Judge("docker", workers=2) as judge:            # doctest: +SKIP
    ...     verdicts = judge.judge_many([Job(task, source)])
    """

    def __init__(self, backend: str = "docker", *, workers: int = 2, timeout: float = 10.0,
                 limits: Limits | None = None, run_label: str = "adhoc", image: str = "") -> None:
        if workers < 1:
            raise RsiBenchError("workers must be at least 1")
        self.backend, self.timeout = backend, timeout
        self.limits = limits or Limits()
        get_backend(backend).check()  # fail fast, with the backend's own one-line reason
        self._workers = [
            _Worker(backend, SandboxSpec(image=image, limits=self.limits, run_label=run_label))
            for _ in range(workers)
        ]
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()
        self._describe: dict[str, str] = {}
        self.runner_sha256 = runner_sha256()
        self.run_label = run_label
        self.env_limits = environment_limits(self.limits)
        self.env_runner_sha256 = runner_sha256(files=ENV_RUNNER_FILES)
        self._env_idle: OrderedDict[str, _Worker] = OrderedDict()  # warm, by image
        self._env_lock = threading.Lock()

    @property
    def workers(self) -> int:
        return len(self._workers)

    def __enter__(self) -> Judge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            with ThreadPoolExecutor(len(self._workers)) as pool:
                # a worker an earlier, failed start left running is kept as it is
                list(pool.map(lambda w: w.attached.stream or w.start(), self._workers))
            for worker in self._workers:
                self._idle.put(worker)
            sandbox = self._workers[0].sandbox
            self._describe = sandbox.describe() if sandbox else {}
            self._started = True

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        with self._env_lock:
            kept = list(self._env_idle.values())
            self._env_idle.clear()
        for worker in kept:
            worker.stop()
        self._started = False

    def judge(self, task: Task, solution: str, *, key: int = 0) -> Verdict:
        return self.judge_many([Job(task, solution, key)])[0]

    def judge_many(self, jobs: Iterable[Job],
                   on_result: Callable[[Verdict], None] | None = None) -> list[Verdict]:
        """Judge every job (in parallel across workers); verdicts come back in job order."""
        self.start()
        jobs = list(jobs)
        if len(jobs) == 1:  # the loop judges one solution at a time: no threads needed
            verdict = self._one(jobs[0])
            if on_result is not None:
                on_result(verdict)
            return [verdict]
        with ThreadPoolExecutor(len(self._workers)) as pool:
            futures = [pool.submit(self._one, job) for job in jobs]
            verdicts = []
            for future in futures:
                verdict = future.result()
                if on_result is not None:
                    on_result(verdict)
                verdicts.append(verdict)
        return verdicts

    def _one(self, job: Job) -> Verdict:
        env = environment(job.task)
        worker = self._idle.get()  # an environment's job takes a slot too: the same parallelism
        try:
            if env is not None:
                result, image_id = self._in_environment(job, env)
                digest = self.env_runner_sha256
            else:
                result = worker.run(job, self.timeout, self.limits)
                if result.get("status") == "internal":
                    result = worker.run(job, self.timeout, self.limits)  # once more
                    if result.get("status") == "internal":
                        raise JudgeError(f"judging {job.task.id} failed twice: "
                                         f"{result.get('detail')}")
                image_id, digest = self._describe.get("image_id", ""), self.runner_sha256
        finally:
            self._idle.put(worker)
        return Verdict(
            task_id=job.task.id, key=job.key, status=result["status"],
            duration_s=float(result.get("duration_s", 0.0)), detail=result.get("detail", ""),
            output_tail=result.get("output_tail", ""), calls=int(result.get("calls", 0)),
            backend=self.backend, image_id=image_id,
            runner_sha256=digest, tests=_tests(result.get("tests")),
        )

    def _in_environment(self, job: Job, env: dict) -> tuple[dict, str]:
        """Judge ``job`` in a sandbox of its environment image: (result frame, image id)."""
        image = str(env.get("image") or "")
        if backend_kind(self.backend) != "docker":
            raise JudgeError(f"judging {job.task.id}: it runs in its environment image {image}, "
                             f"which only the docker sandbox (runc or runsc) can start, not "
                             f"{self.backend}: use --sandbox docker")
        with self._env_lock:
            worker = self._env_idle.pop(image, None)
        if worker is None:
            mounts = {str(path): f"{RUNNER_DIR_IN_IMAGE}/{path.name}" for path in ENV_RUNNER_FILES}
            spec = SandboxSpec(image=image, limits=self.env_limits, run_label=self.run_label,
                               mounts=mounts, environment=True)
            worker = _Worker(self.backend, spec, script=ENV_SCRIPT)
            try:
                worker.start()
            except SandboxUnavailable as exc:  # the image is missing, or its runner did not start
                raise JudgeStartError(f"judging {job.task.id}: {exc}") from exc
        try:
            result = worker.run(job, self.timeout, self.env_limits)
            if result.get("status") == "internal":
                worker.restart()
                result = worker.run(job, self.timeout, self.env_limits)
                if result.get("status") == "internal":
                    raise JudgeError(f"judging {job.task.id} in {image} failed twice: "
                                     f"{result.get('detail')}")
            sandbox = worker.sandbox
            image_id = sandbox.describe().get("image_id", "") if sandbox else ""
        except BaseException:
            worker.stop()
            raise
        with self._env_lock:  # kept warm for the next job of this image; the oldest goes
            evicted = [self._env_idle.pop(image)] if image in self._env_idle else []
            self._env_idle[image] = worker
            while len(self._env_idle) > len(self._workers):
                evicted.append(self._env_idle.popitem(last=False)[1])
        for old in evicted:
            old.stop()
        return result, image_id


def _tests(found: object) -> tuple[tuple[str, str], ...]:
    """A repo job's per-test outcomes, as the runner reported them (node id order)."""
    if not isinstance(found, dict):
        return ()
    return tuple((str(node), str(outcome)) for node, outcome in found.items())


def judge_all(tasks: Sequence[Task], solutions: Sequence[str], **kwargs: object) -> list[Verdict]:
    """Convenience: judge ``solutions[i]`` on ``tasks[i]`` with a temporary Judge."""
    with Judge(**kwargs) as judge:  # type: ignore[arg-type]
        return judge.judge_many(Job(t, s) for t, s in zip(tasks, solutions, strict=True))


__all__ = ["Job", "Judge", "JudgeError", "JudgeStartError", "Verdict", "judge_all"]
