"""How long a hostile improve's workspace takes to be refused, against an honest one.

An improve leaves (a) the seed agent's own files (the reference), (b) 30,000 empty directories,
(c) a 10 GB sparse file. For each, on each sandbox: the whole ``run_improve`` and the tar-back
alone (the stream from the container to the host, until it is accepted or refused).

Run: python benchmarks/tar_back_caps.py [--sandbox docker --sandbox bubblewrap] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from rsi_bench.agents import container
from rsi_bench.agents.container import run_improve
from rsi_bench.broker import Broker
from rsi_bench.models.simulated import SimulatedModel
from rsi_bench.store import Store

WORKSPACES = {
    "honest (the agent's own files)": "pass",
    "30,000 empty directories": "for i in range(30000):\n    os.mkdir(workspace / f'd{i}')",
    "10 GB sparse file": "with open(workspace / 'huge.bin', 'wb') as f:\n    f.truncate(10 << 30)",
}


def agent(root: Path, body: str) -> Path:
    root.mkdir(parents=True)
    (root / "agent.toml").write_text('schema_version = 1\nname = "bench"\nentry = "agent"\n'
                                     'mutable = ["*"]\n')
    (root / "agent.py").write_text("import os\ndef solve(task_view, model):\n    return ''\n"
                                   "def improve(workspace, feedback, model):\n"
                                   + textwrap.indent(body, "    ") + "\n")
    return root


def measure(sandbox: str, body: str, tmp: Path, broker: Broker) -> tuple[float, float, str]:
    fetched: list[float] = []
    inner = container._fetch_workspace

    def timed(*args: Any) -> Any:
        start = time.monotonic()
        try:
            return inner(*args)
        finally:
            fetched.append(time.monotonic() - start)

    container._fetch_workspace = timed  # type: ignore[assignment]
    try:
        start = time.monotonic()
        outcome = run_improve(agent(tmp / "parent", body), tmp / "child", [], broker=broker,
                              generation=1, backend=sandbox, timeout=120,
                              run_label="bench-tar-back")
        total = time.monotonic() - start
    finally:
        container._fetch_workspace = inner  # type: ignore[assignment]
    return total, sum(fetched), f"{outcome.status}: {outcome.detail[:70]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sandbox", action="append")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "run.sqlite")
        broker = Broker(SimulatedModel([]), store)
        print(f"{'sandbox':<11} {'workspace':<32} {'improve s':>9} {'tar-back s':>10}  outcome")
        for sandbox in args.sandbox or ["docker", "bubblewrap"]:
            for name, body in WORKSPACES.items():
                rows = [measure(sandbox, body, Path(tmp) / f"{sandbox}-{name[:2]}-{i}", broker)
                        for i in range(args.repeat)]
                print(f"{sandbox:<11} {name:<32} {statistics.median(r[0] for r in rows):>9.2f} "
                      f"{statistics.median(r[1] for r in rows):>10.2f}  {rows[-1][2]}")
        store.close()


if __name__ == "__main__":
    main()
