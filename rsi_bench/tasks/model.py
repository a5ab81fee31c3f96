"""The task vocabulary: Task, the agent's view of it, and Suite."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Example:
    """A visible case: a call expression and the repr of its expected result."""

    call: str  # for an io task: the standard input
    result: str  # for an io task: the expected standard output

    @property
    def input(self) -> str:
        return self.call

    @property
    def output(self) -> str:
        return self.result


@dataclass(frozen=True)
class TaskView:
    """Everything an agent may see of a task. Hidden tests and the reference are not here."""

    id: str
    prompt: str
    entry_point: str
    examples: tuple[Example, ...] = ()
    kind: str = "function"  # what the agent returns: a function's source, an io program, a diff
    # repo tasks: the repository's visible files (path, text), written into the agent's
    # container as its own writable copy; never the test_patch
    files: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Task:
    """One coding problem.

    ``tests`` is Python source defining ``check(candidate)``; it runs with the names the prompt
    defines in scope and the entry point's name bound to the solution (HumanEval's
    convention), and is never shown to an agent. ``reference`` is a
    complete program that passes the tests; it only validates the task itself.
    ``idiomatic_reference`` (optional) is a second one written the way a fluent programmer
    would (stdlib helpers, generators, subclassed exceptions), so validation also proves that
    the judge passes idiomatic code; like ``reference`` it never reaches an agent.

    ``kind`` is ``function`` or ``io`` (a program on stdin/stdout): for an io task ``tests`` is
    the JSON document of ``rsi_bench.tasks.io_tasks`` (checker, limits, cases, generator),
    ``entry_point`` is ``main`` (the reference's function that the wrong variants mutate),
    and ``brute_force`` a slow program that validation cross-checks against the reference.
    """

    id: str
    prompt: str
    entry_point: str
    tests: str
    reference: str
    examples: tuple[Example, ...] = ()
    source: str = ""
    difficulty: int | None = None
    tags: tuple[str, ...] = ()
    idiomatic_reference: str = ""
    kind: str = "function"
    brute_force: str = ""

    def view(self) -> TaskView:
        files: tuple[tuple[str, str], ...] = ()
        if self.kind == "repo":
            files = tuple(sorted(json.loads(self.tests).get("files", {}).items()))
        return TaskView(self.id, self.prompt, self.entry_point, self.examples, self.kind, files)

    def content_hash(self) -> str:
        fields = asdict(self)
        for name, default in (("idiomatic_reference", ""), ("kind", "function"),
                              ("brute_force", "")):
            if fields[name] == default:  # tasks without one keep their earlier hash
                del fields[name]
        payload = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Suite:
    """A named, ordered set of tasks; its hash covers every field of every task, in order."""

    name: str
    tasks: tuple[Task, ...]
    seed: int = 0
    description: str = ""
    _by_id: dict[str, Task] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Task] = {}
        for task in self.tasks:
            if task.id in by_id:
                raise ValueError(f"suite {self.name!r}: duplicate task id {task.id!r}")
            by_id[task.id] = task
        object.__setattr__(self, "_by_id", by_id)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_id

    def get(self, task_id: str) -> Task:
        return self._by_id[task_id]

    def content_hash(self) -> str:
        digest = hashlib.sha256(f"{SCHEMA_VERSION}:{self.name}:".encode())
        for task in self.tasks:
            digest.update(task.content_hash().encode())
        return digest.hexdigest()
