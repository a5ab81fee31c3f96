"""``simulated``: a deterministic stand-in model whose ground truth is known. Not a real model;
every completion says so (``model_id`` is ``simulated/v1``).

**Solve requests** (role ``solve``, a task id the model's task lookup knows): the answer is the
task's reference solution with probability

    p = clamp(base_p(task) + sum of effects[f] for each feature f present, p_min, p_max)

and otherwise one of the task's wrong variants (``rsi_bench.models.mutations``), in a
python code block whose first line is the comment ``LABEL``.
``base_p`` is ``difficulty_p[task.difficulty]``, or ``default_p`` for a task without one.
Features are read from the text of every message of the request, by these markers:

=================  ===========================================================  ============
feature            marker (regular expression, case-insensitive)                 effect
=================  ===========================================================  ============
``examples``       a line that is just ``Examples:`` / ``## Examples`` /         +0.10
                   ``Visible examples:``
``self_check``     "check|verify|test your|the answer|solution|code|function    +0.05
                   against the (visible) examples"
``retry_feedback`` "previous attempt ... failed|error|wrong" (within 200         +0.10
                   characters), or a Python traceback
``plan``           "step by step" / "step-by-step", or a line starting ``Plan:``  +0.05
=================  ===========================================================  ============

Effects and base probabilities are fields of ``SimulatedConfig``. **Improve requests** (role
``improve``) are answered with one edit from a fixed library (``simulated_edits``: format
documented there), the category drawn with ``improve_weights``. Any other request gets a short
text saying the simulated model has no answer for it.

Determinism: every draw is a SHA-256 of the canonical request (config seed, model name, role,
task id, messages, params) — the same request gets the same answer in any process on any
machine, and a different ``seed`` parameter gets an independent draw. Usage is estimated as
characters / 4; cost and latency are 0.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rsi_bench import pyparse
from rsi_bench.models.base import CallContext, Completion, Message, Usage, validate_messages
from rsi_bench.models.mutations import is_diff, wrong_variants
from rsi_bench.models.simulated_edits import library

MODEL_ID = "simulated/v1"
LABEL = "# answer from the simulated model (rsi-bench), not a real language model"

FEATURE_MARKERS: dict[str, re.Pattern[str]] = {
    "examples": re.compile(r"^[ \t]*(?:#+[ \t]*)?(?:visible[ \t]+)?examples[ \t]*:?[ \t]*$",
                           re.I | re.M),
    "self_check": re.compile(r"\b(?:check|verify|test) (?:your|the) "
                             r"(?:answer|solution|code|function) against the "
                             r"(?:visible )?examples\b", re.I),
    "retry_feedback": re.compile(r"\bprevious attempt\b.{0,200}?\b(?:failed|error|wrong)\b"
                                 r"|Traceback \(most recent call last\)", re.I | re.S),
    "plan": re.compile(r"\bstep[- ]by[- ]step\b|^[ \t]*(?:#+[ \t]*)?plan[ \t]*:", re.I | re.M),
}


@dataclass(frozen=True)
class SimTask:
    """What the simulated model knows of a task: the right answer and wrong ones."""

    reference: str
    wrong_variants: tuple[str, ...]
    difficulty: int | None = None

    @classmethod
    def from_reference(cls, reference: str, entry_point: str,
                       difficulty: int | None = None) -> SimTask:
        """Right and wrong answers are both normalised by ``ast.unparse``, so their formatting
        does not tell them apart."""
        try:
            reference = ast.unparse(pyparse.parse(reference)) + "\n"
        except SyntaxError:
            pass
        return cls(reference, wrong_variants(reference, entry_point), difficulty)


def sim_tasks(tasks: Iterable[Any]) -> dict[str, SimTask]:
    """Build the lookup from task objects (anything with id, reference, entry_point and
    optionally difficulty), e.g. a Suite; this module never imports the tasks package."""
    return {t.id: SimTask.from_reference(t.reference, t.entry_point,
                                         getattr(t, "difficulty", None)) for t in tasks}


TaskLookup = Mapping[str, SimTask] | Callable[[str], SimTask | None]


@dataclass(frozen=True)
class SimulatedConfig:
    seed: int = 0
    default_p: float = 0.5
    difficulty_p: Mapping[int, float] = field(default_factory=lambda: {1: 0.7, 2: 0.5, 3: 0.3})
    effects: Mapping[str, float] = field(default_factory=lambda: {
        "examples": 0.10, "self_check": 0.05, "retry_feedback": 0.10, "plan": 0.05})
    p_min: float = 0.02
    p_max: float = 0.98
    improve_weights: Mapping[str, float] = field(default_factory=lambda: {
        "helpful": 0.4, "neutral": 0.2, "harmful": 0.25, "cheating": 0.15})
    prompt_path: str = "prompts/solve.md"
    code_path: str = "agent.py"
    # ``simulated/<edit>``: every improve answer is this library edit (a loop whose edits are
    # known in advance, e.g. one that always tries to escape); None draws them as above
    edit: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.effects) - set(FEATURE_MARKERS)
        if unknown:
            raise ValueError(f"simulated: unknown feature(s) {sorted(unknown)}; "
                             f"known: {sorted(FEATURE_MARKERS)}")
        if self.edit is not None:
            known = [e["edit"] for es in library(self.prompt_path, self.code_path).values()
                     for e in es]
            if self.edit not in known:
                raise ValueError(f"simulated/{self.edit}: no such edit (known: "
                                 f"{', '.join(known)})")


def detect_features(messages: Sequence[Message]) -> tuple[str, ...]:
    text = "\n".join(m["content"] for m in messages)
    return tuple(name for name, marker in FEATURE_MARKERS.items() if marker.search(text))


def _draw(content: str, purpose: str) -> float:
    """A uniform number in [0, 1) from the request content; the same everywhere."""
    digest = hashlib.sha256(f"{purpose}\x00{content}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _usage(messages: Sequence[Message], text: str) -> Usage:
    chars = sum(len(m["content"]) for m in messages)
    return Usage(input_tokens=max(1, chars // 4), output_tokens=max(1, len(text) // 4))


class SimulatedModel:
    name = "simulated"

    def __init__(self, tasks: TaskLookup | None = None, config: SimulatedConfig | None = None,
                 **overrides: Any) -> None:
        self.tasks = tasks if tasks is not None else {}
        self.config = config or SimulatedConfig(**overrides)

    def _task(self, task_id: str | None) -> SimTask | None:
        if task_id is None:
            return None
        if isinstance(self.tasks, Mapping):
            return self.tasks.get(task_id)
        return self.tasks(task_id)

    def probability(self, messages: Sequence[Message],
                    task: SimTask) -> tuple[float, tuple[str, ...]]:
        """The true p of a solve request, and the features that set it."""
        cfg = self.config
        base = (cfg.difficulty_p.get(task.difficulty, cfg.default_p)
                if task.difficulty is not None else cfg.default_p)
        features = detect_features(messages)
        p = base + sum(cfg.effects.get(f, 0.0) for f in features)
        return min(cfg.p_max, max(cfg.p_min, p)), features

    def _content(self, messages: Sequence[Message], context: CallContext,
                 params: Mapping[str, Any]) -> str:
        body = {"seed": self.config.seed, "model": self.name, "role": context.role,
                "task_id": context.task_id, "messages": list(messages), "params": dict(params)}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def complete(self, messages: Sequence[Message], **params: Any) -> Completion:
        """Without a context (not through the broker) the request counts as an unknown role."""
        return self.complete_in_context(messages, CallContext(role="unknown"), **params)

    def complete_in_context(self, messages: Sequence[Message], context: CallContext,
                            **params: Any) -> Completion:
        checked = validate_messages(list(messages))
        content = self._content(checked, context, params)
        task = self._task(context.task_id)
        if context.role == "solve" and task is not None:
            text = self._solve(checked, task, content)
        elif context.role == "improve":
            text = self._improve(content)
        else:
            text = (f"[simulated model: no answer for role {context.role!r}, "
                    f"task {context.task_id!r}]")
        return Completion(text, "end_turn", _usage(checked, text), 0.0, 0.0, MODEL_ID)

    def _solve(self, messages: Sequence[Message], task: SimTask, content: str) -> str:
        p, _ = self.probability(messages, task)
        if _draw(content, "correct") < p or not task.wrong_variants:
            code = task.reference
        else:
            index = int(_draw(content, "variant") * len(task.wrong_variants))
            code = task.wrong_variants[index]
        if is_diff(code):  # a repo task: the label is a line before the first file header
            return f"```diff\n{LABEL}\n{code.rstrip(chr(10))}\n```\n"
        return f"```python\n{LABEL}\n{code.strip()}\n```\n"

    def _improve(self, content: str) -> str:
        cfg = self.config
        edits = library(cfg.prompt_path, cfg.code_path)
        weights = [(c, w) for c, w in cfg.improve_weights.items() if w > 0 and edits.get(c)]
        total = sum(w for _, w in weights)
        u, acc = _draw(content, "category") * total, 0.0
        category = weights[-1][0]
        for name, weight in weights:
            acc += weight
            if u < acc:
                category = name
                break
        choices = edits[category]
        chosen = choices[int(_draw(content, "edit") * len(choices))]
        if cfg.edit is not None:
            category, chosen = next((c, e) for c, es in edits.items() for e in es
                                    if e["edit"] == cfg.edit)
        answer = {"simulated": True, "model": MODEL_ID, "category": category, **chosen}
        return json.dumps(answer, indent=1, sort_keys=True)
