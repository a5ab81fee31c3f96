"""quickstart.sh: its checks run for real here, without installing anything. A non-root user
is really one (``nobody``, through setpriv); the non-Debian system and the full disk are the
script's own probes pointed elsewhere (QUICKSTART_* variables); the dry run plans this
machine's steps and must change nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "quickstart.sh"
STEPS = 6
MISSING = "rsi-bench-no-such-package"  # an apt package no machine has: an install is pending


def run(*args: str, env: dict[str, str] | None = None, user: str | None = None,
        script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    cmd = [str(script), *args]
    if user is not None:
        full = {"PATH": "/usr/bin:/bin", "HOME": "/", **(env or {})}
        if os.geteuid() == 0:
            cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=300)


def one_line_refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The script stopped in its first step with exactly one line on stderr."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == f"== step 1/{STEPS}: check this machine (root, Debian-like, Python, " \
                          "free disk)\n"
    line = done.stderr.rstrip("\n")
    assert line.startswith("quickstart.sh: cannot proceed: ") and "\n" not in line
    return line


def plan(*args: str, env: dict[str, str] | None = None) -> dict[int, str]:
    """Run the dry run; return what it says under each step."""
    done = run("--dry-run", *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    steps: dict[int, str] = {}
    for block in re.split(r"^== step ", done.stdout, flags=re.M)[1:]:
        number, _, rest = block.partition(f"/{STEPS}: ")
        steps[int(number)] = rest
    assert sorted(steps) == list(range(1, STEPS + 1)), done.stdout
    return steps


def nothing_to_do() -> bool:
    return all("done already" in plan()[n] for n in range(2, 6))


def test_the_dry_run_plans_this_machine_and_changes_nothing() -> None:
    before = sorted(p.name for p in REPO.iterdir())
    status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                            text=True).stdout
    steps = plan("--model", "simulated", "--limit", "2")
    for n in range(2, 6):  # every set-up step is either done or planned, never silent
        lines = steps[n].splitlines()[1:]
        assert lines and all(line.startswith(("   done already: ", "   would ")) for line in lines)
    assert "would run" in steps[6] and "run --model simulated --limit 2" in steps[6]
    assert "--generations 3" not in steps[6]  # arguments replace the default job
    assert sorted(p.name for p in REPO.iterdir()) == before
    assert subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                          text=True).stdout == status
    print(subprocess.run([str(SCRIPT), "--dry-run"], capture_output=True, text=True).stdout)


def test_the_default_job_is_the_readmes_main_command() -> None:
    assert "run --limit 10 --generations 3 --run-dir runs/demo" in plan()[6]


def test_a_second_run_skips_every_done_step() -> None:
    if not nothing_to_do():
        pytest.skip("this machine still lacks a set-up step (see the dry run); "
                    "a real run would install it")
    done = run("--setup-only")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("   done already: ") == 4
    assert f"== step {STEPS}/{STEPS}" in done.stdout and "not run (--setup-only)" in done.stdout


@pytest.fixture
def public_script() -> Iterator[Path]:
    """A copy nobody can read and run (the checkout, and pytest's tmp_path, may be private)."""
    where = Path(tempfile.mkdtemp(prefix="rsi-bench-quickstart-"))
    try:
        where.chmod(0o755)
        copy = where / "quickstart.sh"
        shutil.copy(SCRIPT, copy)
        copy.chmod(0o755)
        yield copy
    finally:
        shutil.rmtree(where)


needs_other_user = pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="setpriv is missing")


@needs_other_user
def test_a_non_root_user_is_told_to_use_sudo(public_script: Path) -> None:
    line = one_line_refusal(run("--limit", "3", user="nobody", script=public_script,
                                env={"QUICKSTART_APT_EXTRA": MISSING}))
    assert "not root" in line and f"apt-get install {MISSING}" in line
    assert line.endswith("run sudo ./quickstart.sh --limit 3")


@needs_other_user
def test_a_non_root_user_without_docker_access_is_told_what_to_do(public_script: Path) -> None:
    line = one_line_refusal(run(user="nobody", script=public_script))
    assert "sudo ./quickstart.sh" in line
    assert "not root" in line or "docker group" in line


def fake_system(tmp_path: Path) -> dict[str, str]:
    release = tmp_path / "os-release"
    release.write_text('NAME="Fedora Linux"\nPRETTY_NAME="Fedora Linux 40 (Server Edition)"\n')
    return {"QUICKSTART_DEBIAN_VERSION": str(tmp_path / "no-debian_version"),
            "QUICKSTART_OS_RELEASE": str(release)}


def test_a_non_debian_system_is_told_what_to_install_by_hand(tmp_path: Path) -> None:
    line = one_line_refusal(run(env={**fake_system(tmp_path), "QUICKSTART_APT_EXTRA": MISSING}))
    assert "Fedora Linux 40 (Server Edition) is not Debian or Ubuntu" in line
    assert f"install {MISSING} with its package manager" in line


def test_a_non_debian_system_with_everything_installed_goes_on(tmp_path: Path) -> None:
    """Control: the Debian check fires only when apt would be needed."""
    if "done already" not in plan()[2]:
        pytest.skip("this machine lacks system packages")
    steps = plan(env=fake_system(tmp_path))
    assert "Fedora Linux 40" in steps[1] and "would run" in steps[6]


def test_too_little_free_disk_says_how_much_is_needed() -> None:
    line = one_line_refusal(run(env={"QUICKSTART_MIN_FREE_MB": str(10**9)}))
    assert f"need {10**9} MB free" in line and "which has" in line
    assert "ok:" in plan(env={"QUICKSTART_MIN_FREE_MB": "1"})[1]  # control: a low bar passes


def _ldconfig(tmp_path: Path, listing: str) -> str:
    fake = tmp_path / "ldconfig"
    fake.write_text(f"#!/bin/sh\nprintf '%s' '{listing}'\n")
    fake.chmod(0o755)
    return str(fake)


def test_a_system_without_openmp_gets_libgomp_for_the_local_model(tmp_path: Path) -> None:
    # A minimal Debian has no libgomp1, and the local model's server cannot load without it.
    lacking = {"QUICKSTART_LDCONFIG": _ldconfig(tmp_path, "2 libs found in cache\n")}
    assert "libgomp1" in plan(env=lacking)[2]
    assert "libgomp1" not in plan(env={**lacking, "QUICKSTART_PIP_EXTRAS": "dev"})[2]
    having = {"QUICKSTART_LDCONFIG": _ldconfig(
        tmp_path, "\tlibgomp.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libgomp.so.1\n")}
    assert "libgomp1" not in plan(env=having)[2]
