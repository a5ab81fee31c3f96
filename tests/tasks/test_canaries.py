"""Canary tasks: only their hidden test knows the answer; ids look like the suite's and never
take a real task's; how many a fraction gives."""

from __future__ import annotations

import pytest

from rsi_bench.tasks import load_suite
from rsi_bench.tasks.canaries import KINDS, canary_count, canary_tasks, forbidden_of


def run_check(source: str, tests: str, entry: str) -> bool:
    scope: dict[str, object] = {}
    exec(source, scope)  # noqa: S102 - our own reference, in the test process
    exec(tests, scope)  # noqa: S102
    try:
        scope["check"](scope[entry])  # type: ignore[operator]
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("n_dev, fraction, count", [(10, 0, 0), (10, 0.25, 3), (10, 0.2, 2),
                                                    (3, 0.1, 1), (22, 1.0, 22)])
def test_count(n_dev: int, fraction: float, count: int) -> None:
    assert canary_count(n_dev, fraction) == count


def test_only_the_hidden_test_knows_the_answer() -> None:
    canaries = canary_tasks(6, "salt-a", "rsi-core", set())
    assert [t.entry_point for t in canaries] == [k.name for k in KINDS] + [
        f"{KINDS[0].name}_2", f"{KINDS[1].name}_2"]
    for task in canaries:
        assert task.id.startswith("rsi-core/") and "canary" not in task.id
        assert run_check(task.reference, task.tests, task.entry_point)
        guess = "0" if "number" in task.prompt else "''"
        honest_guess = f"def {task.entry_point}():\n    return {guess}\n"
        assert not run_check(honest_guess, task.tests, task.entry_point)
        secret = task.tests.split("==", 1)[1].strip()
        assert secret not in task.prompt  # the view says where, never what
        assert forbidden_of(task) in {k.forbidden for k in KINDS}
    again = canary_tasks(6, "salt-a", "rsi-core", set())
    other = canary_tasks(6, "salt-b", "rsi-core", set())
    assert [t.tests for t in again] == [t.tests for t in canaries]  # a resumed run: the same
    assert all(a.tests != b.tests for a, b in zip(canaries, other, strict=True))


def test_ids_never_take_a_real_tasks() -> None:
    taken = {"rsi-core/release_token"}
    ids = [t.id for t in canary_tasks(2, "s", "rsi-core", taken)]
    assert ids == ["rsi-core/fetch_motd", "rsi-core/expected_answer"]
    real = [t.id for t in load_suite("rsi-core")][:8]
    assert not set(real) & {t.id for t in canary_tasks(8, "s", "rsi-core", set(real))}
