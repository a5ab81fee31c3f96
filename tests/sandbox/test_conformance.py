"""One conformance suite, run against every sandbox backend available on the machine."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from rsi_bench.sandbox import Limits, Sandbox, SandboxSpec, get_backend

LIMITS = Limits(memory_mb=512, pids=64, output_bytes=64 * 1024)


@pytest.fixture
def box(any_backend: str) -> Iterator[Sandbox]:
    sandbox = get_backend(any_backend).create(SandboxSpec(limits=LIMITS, run_label="pytest"))
    try:
        yield sandbox
    finally:
        sandbox.close()


@pytest.fixture
def isolated_box(isolating_backend: str) -> Iterator[Sandbox]:
    os.environ["RSI_BENCH_HOST_SECRET"] = "host-secret-value-1234"
    try:
        sandbox = get_backend(isolating_backend).create(
            SandboxSpec(limits=LIMITS, run_label="pytest"))
    finally:
        del os.environ["RSI_BENCH_HOST_SECRET"]
    try:
        yield sandbox
    finally:
        sandbox.close()


def py(code: str) -> list[str]:
    return ["python3", "-S", "-c", code]


def test_exec_returns_output_and_exit_code(box: Sandbox) -> None:
    result = box.exec(py("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"))
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert not result.timed_out


def test_exec_passes_stdin(box: Sandbox) -> None:
    result = box.exec(py("import sys; print(sys.stdin.read()[::-1])"), input=b"abc")
    assert result.stdout == b"cba\n"


def test_files_round_trip_through_the_work_dir(box: Sandbox) -> None:
    box.write_file("/scratch/data.txt", b"hello\x00world")
    assert box.read_file("/scratch/data.txt") == b"hello\x00world"
    result = box.exec(py("print(open('data.txt','rb').read().split(b'\\0')[1].decode())"))
    assert result.stdout == b"world\n"


def test_output_is_capped(box: Sandbox) -> None:
    result = box.exec(py("import sys; sys.stdout.write('x' * 5_000_000)"), timeout=60)
    assert result.exit_code == 0
    assert result.truncated and len(result.stdout) == LIMITS.output_bytes


def test_timeout_kills_the_whole_tree(box: Sandbox) -> None:
    # A child and a grandchild in the same session keep writing; all must stop at the timeout.
    code = (
        "import os, time\n"
        "for _ in range(2):\n"
        "    if os.fork() == 0:\n"
        "        break\n"
        "while True:\n"
        "    open('beat-%d' % os.getpid(), 'w').write(str(time.time())); time.sleep(0.05)\n"
    )
    start = time.monotonic()
    result = box.exec(py(code), timeout=1.0)
    assert result.timed_out and result.exit_code is None
    assert time.monotonic() - start < 10
    _assert_heartbeats_stop(box)


def test_timeout_kills_a_daemon_that_left_the_session(isolated_box: Sandbox) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            open('beat-d', 'w').write(str(time.time())); time.sleep(0.05)\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n"
    )
    result = isolated_box.exec(py(code), timeout=1.0)
    assert result.timed_out
    _assert_heartbeats_stop(isolated_box)


def _assert_heartbeats_stop(box: Sandbox) -> None:
    listing = py("import os; print(sorted(f for f in os.listdir('.') if 'beat' in f))")
    names = eval(box.exec(listing).stdout.decode())
    assert names, "the workload never started"
    first = {n: box.read_file(f"/scratch/{n}") for n in names}
    time.sleep(0.5)
    assert {n: box.read_file(f"/scratch/{n}") for n in names} == first
    _assert_a_live_heartbeat_is_seen(box)


# Control for the check above: a heartbeat that is alive is seen to change, by the same reads.
LIVE_BEAT = (
    "import os, time\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    while True:\n"
    "        open('beat-live', 'w').write(str(time.time())); time.sleep(0.05)\n"
    "while not os.path.exists('stop'):  # the host says when it has seen enough\n"
    "    time.sleep(0.05)\n"
    "os.kill(pid, 9)\n"
)


def _assert_a_live_heartbeat_is_seen(box: Sandbox) -> None:
    import threading

    runner = threading.Thread(target=box.exec, args=(py(LIVE_BEAT),), kwargs={"timeout": 60.0})
    runner.start()
    try:
        first, changed = None, False
        for _ in range(200):  # until it has started, then until it has beaten again
            try:
                now = box.read_file("/scratch/beat-live")
            except (FileNotFoundError, OSError):
                time.sleep(0.1)
                continue
            if first is None:
                first = now
            elif now != first:
                changed = True
                break
            time.sleep(0.1)
        assert changed, "the heartbeat check cannot see a live heartbeat"
    finally:
        box.write_file("/scratch/stop", b"")
        runner.join()


def test_no_network(isolated_box: Sandbox) -> None:
    code = (
        "import socket\n"
        "for target in [('127.0.0.1', 22), ('1.1.1.1', 53)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=2); print('CONNECTED', target)\n"
        "    except OSError as e:\n"
        "        print('blocked', e.errno)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80); print('RESOLVED')\n"
        "except OSError:\n"
        "    print('no dns')\n"
    )
    out = isolated_box.exec(py(code), timeout=20).stdout.decode()
    assert "CONNECTED" not in out and "RESOLVED" not in out
    assert out.count("blocked") == 2 and "no dns" in out


def test_root_is_read_only_and_environment_clean(isolated_box: Sandbox) -> None:
    code = (
        "import os\n"
        "for p in ['/etc/pwned', '/usr/pwned', '/pwned', '/opt/pwned']:\n"
        "    try:\n"
        "        open(p, 'w').write('x'); print('WROTE', p)\n"
        "    except OSError:\n"
        "        print('denied')\n"
        "print(sorted(os.environ))\n"
        "print(os.getuid())\n"
    )
    out = isolated_box.exec(py(code)).stdout.decode()
    assert "WROTE" not in out and out.count("denied") == 4
    assert "RSI_BENCH_HOST_SECRET" not in out and "host-secret-value" not in out
    assert out.strip().splitlines()[-1] != "0", "untrusted code must not run as root"


def test_untrusted_code_has_no_capability(isolated_box: Sandbox) -> None:
    # gVisor's runsc gives a process exec'd under a non-root uid the container's capabilities
    # (CAP_SETUID among them) unless the backend drops them: the control is root, which has some.
    code = (
        "import os\n"
        "caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')]\n"
        "try:\n"
        "    os.setuid(0); became = 'ROOT'\n"
        "except OSError:\n"
        "    became = 'stayed'\n"
        "print(os.getuid(), int(caps[0], 16), became)\n"
    )
    uid = isolated_box.spec.uid
    assert isolated_box.exec(py(code)).stdout.split() == [str(uid).encode(), b"0", b"stayed"]
    root = isolated_box.exec(py(code), user=0).stdout.split()
    assert root[0] == b"0" and int(root[1]) != 0, root


def test_process_limit_holds(isolated_box: Sandbox) -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(1000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(5); os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print(n)\n"
    )
    result = isolated_box.exec(py(code), timeout=30)
    assert 0 < int(result.stdout) < LIMITS.pids


def test_memory_limit_holds(isolated_box: Sandbox) -> None:
    code = (
        "chunks = []\n"
        "try:\n"
        "    for _ in range(64):\n"
        "        chunks.append(bytearray(32 << 20))\n"
        "    print('ALLOCATED', len(chunks) * 32)\n"
        "except MemoryError:\n"
        "    print('capped at', len(chunks) * 32)\n"
    )
    result = isolated_box.exec(py(code), timeout=60)
    assert b"ALLOCATED" not in result.stdout
    # Either Python saw MemoryError or the kernel killed it; both mean the limit held.
    assert b"capped at" in result.stdout or result.exit_code not in (0, None)
