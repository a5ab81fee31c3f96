"""Typical wrong answers to rsi-io tasks fail in the real judge: an off-by-one, a wrong tie
rule, a wrong greedy. (Brute forces on the large tests, which must time out, are judged by
`rsi-bench tasks validate` only on small inputs; they were checked by hand.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rsi_bench.judge import Job, Judge
from rsi_bench.tasks import load_suite

IO = load_suite("rsi-io")


def reference(name: str) -> str:
    return IO.get(f"rsi-io/{name}").reference


def edited(name: str, old: str, new: str) -> str:
    source = reference(name)
    assert old in source
    return source.replace(old, new)


GREEDY_EARLIEST_END = """import sys
def main():
    d = sys.stdin.buffer.read().split()
    n = int(d[0])
    gigs = sorted((int(d[2 + 3 * k]), int(d[1 + 3 * k]), int(d[3 + 3 * k])) for k in range(n))
    total, free = 0, -1
    for e, s, p in gigs:
        if s >= free:
            total, free = total + p, e
    print(total)
main()
"""
GREEDY_BEST_PAY = """import sys
def main():
    d = sys.stdin.buffer.read().split()
    n = int(d[0])
    gigs = sorted(((int(d[3 + 3 * k]), int(d[1 + 3 * k]), int(d[2 + 3 * k]))
                   for k in range(n)), reverse=True)
    taken, total = [], 0
    for p, s, e in gigs:
        if all(e <= a or b <= s for a, b in taken):
            taken.append((s, e))
            total += p
    print(total)
main()
"""
WRONG = {
    "flipped_lamps": {
        "off-by-one end": edited("flipped_lamps", "flips[right + 1] ^= 1", "flips[right] ^= 1"),
        "from lamp 0": edited("flipped_lamps", "range(1, n + 1)", "range(n)"),
    },
    "all_letters_window": {
        "last of the shortest": edited("all_letters_window", "+ 1 < best_len", "+ 1 <= best_len"),
        "0-based start": edited("all_letters_window", "best_start + 1)", "best_start)"),
    },
    "total_spread": {
        "ties counted twice": edited("total_spread", "a[stack[-1]] <= a[i]", "a[stack[-1]] < a[i]"),
    },
    "paid_gigs": {
        "touching gigs clash": edited("paid_gigs", "bisect_right(ends, s, 0, i)",
                                      "bisect_right(ends, s - 1, 0, i)"),
        "greedy: earliest end": GREEDY_EARLIEST_END,
        "greedy: best pay": GREEDY_BEST_PAY,
    },
}


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    from sandboxes import require_backend

    require_backend("docker")
    with Judge("docker", workers=2, timeout=30, run_label="test-io-wrong") as j:
        yield j


@pytest.mark.docker
def test_typical_wrong_answers_fail_and_the_references_pass(judge: Judge) -> None:
    cases = [(task, what, source) for task, variants in WRONG.items()
             for what, source in variants.items()]
    jobs = [Job(IO.get(f"rsi-io/{task}"), source, i) for i, (task, _, source) in enumerate(cases)]
    jobs += [Job(IO.get(f"rsi-io/{task}"), reference(task), len(jobs) + i)
             for i, task in enumerate(WRONG)]  # the control: the same tests pass the reference
    verdicts = judge.judge_many(jobs)
    for (task, what, _), verdict in zip(cases, verdicts, strict=False):
        assert verdict.status == "fail", (task, what, verdict)
        assert verdict.detail.endswith("wrong answer"), (task, what, verdict)
    assert [v.status for v in verdicts[len(cases):]] == ["pass"] * len(WRONG)
