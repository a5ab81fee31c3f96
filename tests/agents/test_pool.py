"""Warm agent containers (SolvePool): many solves share one container, yet a solve sees nothing
an earlier one left: no file, no process, no memory, no IPC object. What emptying cannot remove
gets the container replaced. Run on every isolating backend."""

from __future__ import annotations

import json

import pytest
from agent_world import RUN_LABEL, SEED, World, make_agent
from sandboxes import ISOLATING, require_backend

from rsi_bench.agents.pool import SolvePool

# Leaves files in every scratch dir, a detached daemon and a module global; reports what it finds
# of all three, plus the System V shared memory segments of its IPC namespace.
TRACES = """
    import json, os, time
    CALLS = [0]
    def solve(task_view, model):
        CALLS[0] += 1
        name = task_view.entry_point
        for top in ("/scratch", "/tmp", "/dev/shm"):
            open(f"{top}/{name}.secret", "w").write(task_view.prompt)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "300"])
            os._exit(0)
        os.wait()
        found = sorted(os.path.join(d, f) for top in ("/scratch", "/tmp", "/dev/shm")
                       for d, _, files in os.walk(top) for f in files)
        for _ in range(500):  # until its own daemon has exec'd
            sleepers = 0
            for pid in os.listdir("/proc"):
                try:
                    if pid.isdigit() and open(f"/proc/{pid}/cmdline", "rb").read() == (
                            b"sleep\\x00300\\x00"):
                        sleepers += 1
                except OSError:
                    pass
            if sleepers:
                break
            time.sleep(0.01)
        def shm_segments():
            try:
                with open("/proc/sysvipc/shm") as f:
                    return len(f.read().splitlines()) - 1
            except FileNotFoundError:  # gVisor: the kernel's counter (SHM_INFO's used_ids)
                import ctypes
                info = (ctypes.c_int * 64)()
                assert ctypes.CDLL(None).shmctl(0, 14, info) >= 0
                return info[0]
        segments = shm_segments()
        if name == "chunk" and open("/agent/mode.txt").read() == "IPC":
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.shmget(0x5253, 4096, 0o1666) >= 0, ctypes.get_errno()
        planted = shm_segments()  # the control: the count sees a new segment
        return json.dumps({"files": found, "sleepers": sleepers, "calls": CALLS[0],
                           "segments": segments, "planted": planted})
    def improve(workspace, feedback, model):
        pass
"""


def pool_of(world: World, backend: str, mode: str = "", **kwargs: object) -> SolvePool:
    require_backend(backend)
    agent = make_agent(world.tmp / f"traces-{backend}", TRACES)
    (agent / "mode.txt").write_text(mode)
    return SolvePool(agent, broker=world.broker, generation=0, backend=backend,
                     run_label=RUN_LABEL, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ISOLATING)
def test_a_warm_container_shows_each_solve_a_clean_slate(world: World, backend: str) -> None:
    with pool_of(world, backend) as pool:
        first = pool.solve(world.task("chunk").view())
        box = pool._workers[0].attached.sandbox
        second = pool.solve(world.task("median").view())
        assert pool._workers[0].attached.sandbox is box  # the same container, reused
        sockets = list(pool._workers[0].socket_dir.iterdir())
    assert first.status == second.status == "ok", (first.detail, second.detail)
    seen = [json.loads(o.solution or "") for o in (first, second)]
    for report, name in zip(seen, ("chunk", "median"), strict=True):
        assert report["files"] == sorted(f"{t}/{name}.secret" for t in
                                         ("/scratch", "/tmp", "/dev/shm"))
        assert report["sleepers"] == 1  # its own daemon only: the earlier one was killed
        assert report["calls"] == 1  # a fresh interpreter: no module state carried over
    assert sockets == []  # the broker socket exists only while a solve runs


@pytest.mark.parametrize("backend", ISOLATING)
def test_ipc_objects_left_behind_get_the_container_replaced(world: World, backend: str) -> None:
    with pool_of(world, backend, mode="IPC") as pool:
        first = pool.solve(world.task("chunk").view())
        assert pool._workers[0].attached.sandbox is None  # dirty: stopped, not reused
        second = pool.solve(world.task("median").view())
    assert first.status == second.status == "ok", (first.detail, second.detail)
    assert json.loads(first.solution or "")["planted"] == 1  # the count can see one
    assert json.loads(second.solution or "")["segments"] == 0


@pytest.mark.parametrize("backend", ISOLATING)
def test_each_solve_is_billed_to_its_own_task(world: World, backend: str) -> None:
    require_backend(backend)
    with SolvePool(SEED, broker=world.broker, generation=3, backend=backend,
                   run_label=RUN_LABEL) as pool:
        outcomes = [pool.solve(world.task(t).view(), sample=s)
                    for t, s in (("chunk", 0), ("median", 1))]
    assert [o.status for o in outcomes] == ["ok", "ok"]
    assert [o.model_calls for o in outcomes] == [1, 1]
    rows = world.store.read().execute(
        "SELECT role, task_id, generation FROM model_calls ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [("solve", "rsi-core/chunk", 3),
                                        ("solve", "rsi-core/median", 3)]


@pytest.mark.docker
def test_a_hanging_solve_times_out_and_the_pool_goes_on(world: World) -> None:
    require_backend("docker")
    agent = make_agent(world.tmp / "hang", """
        def solve(task_view, model):
            while task_view.entry_point == "chunk":
                pass
            return "def median(xs):\\n    return sorted(xs)[len(xs) // 2]\\n"
        def improve(workspace, feedback, model):
            pass
    """)
    with SolvePool(agent, broker=world.broker, generation=0, timeout=2.0,
                   run_label=RUN_LABEL) as pool:
        hung = pool.solve(world.task("chunk").view())
        after = pool.solve(world.task("median").view())
    assert hung.status == "timeout" and "killed" in hung.detail
    assert after.status == "ok" and "def median" in (after.solution or "")


def test_an_agent_without_a_manifest_is_invalid_without_a_container(world: World) -> None:
    (world.tmp / "empty").mkdir()
    with SolvePool(world.tmp / "empty", broker=world.broker, generation=0,
                   run_label=RUN_LABEL) as pool:
        outcome = pool.solve(world.task("chunk").view())
        assert pool._workers == []
    assert outcome.status == "invalid" and "agent.toml" in outcome.detail


# Looks everywhere it can read (files, other processes' command lines, environments and
# memory) for the first task's id and code. The first solve leaves a note and hunts too: the
# control that the hunt finds what is there.
HUNT = """
    import json, os
    WANTED = [b"rsi-core/" + b"chunk", b"def " + b"chunk("]  # not literally in this file
    SKIP = ("/proc", "/sys", "/dev", "/agent")
    def solve(task_view, model):
        if task_view.entry_point == "chunk":
            open("/tmp/note", "wb").write(WANTED[0])
        hits = []
        for dirpath, dirs, files in os.walk("/"):
            dirs[:] = [d for d in dirs if os.path.join(dirpath, d) not in SKIP]
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    data = open(path, "rb").read(1 << 22)
                except OSError:
                    continue
                hits += [path for w in WANTED if w in data]
        for pid in filter(str.isdigit, os.listdir("/proc")):
            for leaf in ("cmdline", "environ", "mem"):
                try:
                    data = open(f"/proc/{pid}/{leaf}", "rb").read(1 << 22)
                except OSError:
                    continue
                hits += [f"/proc/{pid}/{leaf}" for w in WANTED if w in data]
        return json.dumps(hits)
    def improve(workspace, feedback, model):
        pass
"""


@pytest.mark.parametrize("backend", ISOLATING)
def test_a_later_solve_finds_no_trace_of_an_earlier_task(world: World, backend: str) -> None:
    require_backend(backend)
    agent = make_agent(world.tmp / f"hunt-{backend}", HUNT)
    with SolvePool(agent, broker=world.broker, generation=0, backend=backend,
                   run_label=RUN_LABEL) as pool:
        first = pool.solve(world.task("chunk").view())
        box = pool._workers[0].attached.sandbox
        later = pool.solve(world.task("median").view())
        assert pool._workers[0].attached.sandbox is box
    assert first.status == later.status == "ok", later.detail
    assert json.loads(first.solution or "") == ["/tmp/note"]  # the control: found
    assert json.loads(later.solution or "") == []
