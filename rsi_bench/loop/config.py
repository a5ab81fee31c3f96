"""A run's configuration: from command-line flags or a TOML file, fingerprinted for resume.

Re-running the same command on an existing run directory resumes it; a run directory made by a
different configuration is refused, with the fields that differ.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from rsi_bench.errors import InputError, SandboxUnavailable
from rsi_bench.loop.policy import parse_rules
from rsi_bench.loop.strategy import STRATEGIES
from rsi_bench.paths import harness_dir
from rsi_bench.sandbox import parse_backend, with_runtime

IMPROVERS = ("self", "noop", "fixed")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunConfig:
    suite: str = "rsi-core"
    limit: int | None = None  # the first N tasks of the suite (a slice for quick runs)
    model: str = "local/qwen2.5-coder-0.5b"
    generations: int = 3
    improver: str = "self"
    strategy: str = "greedy"
    seed: int = 0  # loop seed: parent sampling and the model's sampling seed
    split_seed: int = 0
    sealed: float = 0.0  # fraction of tasks in the sealed split (scored once, at the end)
    samples: int = 1
    concurrency: int = 2
    sandbox: str = "docker"
    runtime: str = ""  # docker's container runtime: "" is dockerd's default (runc), or "runsc"
    solve_timeout: float = 180.0
    improve_timeout: float = 600.0
    judge_timeout: float = 10.0
    # seconds of model time a solve or improve may have excluded from its timeout; None:
    # ten times the timeout (rsi_bench/agents/clock.py)
    model_time_cap: float | None = None
    budgets: dict[str, dict[str, float]] = field(default_factory=dict)
    agent: str = ""  # generation 0; empty means harness/seed_agent
    # per finding kind or group: record | reject | pause (rsi_bench.loop.policy); {} = defaults
    on_finding: dict[str, str] = field(default_factory=dict)
    canaries: float = 0.0  # canary tasks mixed into dev, as a fraction of the dev tasks

    def __post_init__(self) -> None:
        if self.improver not in IMPROVERS:
            raise InputError(f"unknown improver {self.improver!r}; known: {', '.join(IMPROVERS)}")
        if self.strategy not in STRATEGIES:
            raise InputError(f"unknown strategy {self.strategy!r}; "
                             f"known: {', '.join(STRATEGIES)}")
        for name in ("generations", "samples", "concurrency"):
            if getattr(self, name) < (0 if name == "generations" else 1):
                raise InputError(f"{name} must be positive, not {getattr(self, name)}")
        if not 0 <= self.sealed < 1:
            raise InputError("sealed must be a fraction in [0, 1)")
        if not 0 <= self.canaries <= 1:
            raise InputError("canaries must be a fraction of the dev tasks in [0, 1]")
        try:  # "docker:runsc" and sandbox="docker", runtime="runsc" are the same run
            kind, runtime = parse_backend(with_runtime(self.sandbox, self.runtime))
        except SandboxUnavailable as exc:
            raise InputError(str(exc)) from None
        object.__setattr__(self, "sandbox", kind)
        object.__setattr__(self, "runtime", runtime)
        object.__setattr__(self, "on_finding", parse_rules(self.on_finding))

    @property
    def backend(self) -> str:
        """The sandbox backend name every container of the run is made with."""
        return f"{self.sandbox}:{self.runtime}" if self.runtime else self.sandbox

    @property
    def agent_dir(self) -> Path:
        return Path(self.agent) if self.agent else harness_dir() / "seed_agent"

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        data = {"schema_version": SCHEMA_VERSION, **asdict(self)}
        # runs made before a key existed, or leaving it at its default, keep their fingerprint
        for key in ("runtime", "on_finding", "canaries"):
            if not data[key]:
                del data[key]
        if self.model_time_cap is None:  # likewise
            del data["model_time_cap"]
        return data

    def differences(self, stored: dict[str, Any]) -> list[str]:
        mine = self.to_dict()
        return sorted(k for k in set(mine) | set(stored) if mine.get(k) != stored.get(k))


def load_toml(path: Path) -> dict[str, Any]:
    """Config values from a TOML file (a ``[run]`` table, or top-level keys)."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    data = data.get("run", data)
    known = {f.name for f in fields(RunConfig)} | {"seeds", "run_dir"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return dict(data)


def with_seed(config: RunConfig, seed: int) -> RunConfig:
    return replace(config, seed=seed)
