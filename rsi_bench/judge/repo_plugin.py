"""The test process of a repo job: pytest with a result plugin, started by the runner as
``python3 -I -B repo_plugin.py PYTEST_ARGS...`` with a pipe to the runner on file descriptor 3.
Deployed beside runner.py in the judge image (root-owned, outside the repository).

The plugin writes one JSON line per test phase (``setup``, ``call``, ``teardown``) and per
collection error to that pipe, then one closing line with pytest's exit status. Every line carries
a key the runner made for this job, read from file descriptor 4 (then closed) before pytest is
imported, so before any code of the repository runs: a process the tests start, or code that
only finds the pipe, cannot write a line the runner accepts. The runner reads outcomes only from
there: never from pytest's output, a junit file or the exit code alone, and it treats a process
that ends without the closing line, or a line it does not expect, as an error.

The repository's code runs in this same interpreter (the tests import it), so it can reach this
plugin and its pipe: see the README's threat model. What it cannot change is which tests the
runner asked for, how the runner reads the pipe, or the verdict rules.
"""

from __future__ import annotations

import json
import os
import sys

RESULT_FD, KEY_FD = 3, 4


class ResultPlugin:
    def __init__(self, fd: int, key: str) -> None:
        self.fd, self.key = fd, key

    def _send(self, record: dict) -> None:
        record["key"] = self.key
        data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def pytest_collectreport(self, report) -> None:  # noqa: ANN001 - pytest's own types
        if report.failed:
            self._send({"collect": report.nodeid, "outcome": "failed"})

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001
        outcome = report.outcome
        if hasattr(report, "wasxfail"):  # an expected failure: SWE-bench counts it a pass
            outcome = "xfailed" if outcome == "skipped" else "xpassed"
        self._send({"node": report.nodeid, "when": report.when, "outcome": outcome})

    def pytest_sessionfinish(self, session, exitstatus) -> None:  # noqa: ANN001
        self._send({"end": int(exitstatus)})


def main(argv: list[str]) -> int:
    os.fstat(RESULT_FD)  # the runner's pipe must be there before any test code runs
    key = os.read(KEY_FD, 128).decode()
    os.close(KEY_FD)
    import pytest

    return int(pytest.main(argv, plugins=[ResultPlugin(RESULT_FD, key)]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
