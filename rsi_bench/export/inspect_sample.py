"""One result of a run as an Inspect ``EvalSample``, and its model calls as ``ModelEvent``s.

The sample's input is the task's prompt (never its hidden tests or reference), its output the
agent's solution, its score the judge's verdict (C for pass, I otherwise). The solve calls the
agent made for the task become model events, and the last answered one the sample's messages.
Everything here imports ``inspect_ai`` inside functions: it is an optional dependency.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rsi_bench.export.run_reader import CallRow, ResultRow

if TYPE_CHECKING:
    from inspect_ai.log import EvalSample

    from rsi_bench.tasks.model import Task

SCORER = "judge"
GENERATE_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "seed")
STOP_REASONS = {"stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "eos": "stop",
                "max_tokens": "max_tokens", "length": "max_tokens", "tool_use": "tool_calls",
                "tool_calls": "tool_calls", "content_filter": "content_filter"}


def make_sample(result: ResultRow, task: Task | None, calls: list[CallRow], samples_of_task: int,
                model: str, run_id: str) -> EvalSample:
    """The sample of one result. ``calls`` are the solve calls made for its task in its
    generation; ``samples_of_task`` is how many samples of that task the generation has (the
    store does not say which sample made a call, so with several they all show every call)."""
    from inspect_ai.log import EvalSample
    from inspect_ai.model import ChatMessageAssistant, ChatMessageUser, ModelOutput
    from inspect_ai.scorer import Score

    prompt = task.prompt if task is not None else (
        f"(the prompt of {result.task_id} is not available: the run's suite cannot be loaded "
        "here, or no longer has this task)")
    passed = result.status == "pass"
    score = Score(value="C" if passed else "I", answer=result.solution,
                  explanation=result.detail or result.status,
                  metadata={"status": result.status, "solve_status": result.solve_status,
                            "detail": result.detail, "judge_s": result.judge_s,
                            "judge": result.judge,
                            **({"tests": result.tests} if result.tests else {})})
    last = next((c for c in reversed(calls) if c.status == "ok" and c.completion), None)
    model_id = _model_id(last, model) if last else model
    solution = result.solution or ""
    output = ModelOutput.from_content(model_id, solution) if solution else ModelOutput(
        model=model_id)
    # the conversation: the agent's last answered request and its answer, when recorded
    messages = _messages(last.request.get("messages")) if last else []
    if messages and last is not None and isinstance(last.completion, dict):
        text = last.completion.get("text")
        if isinstance(text, str):
            messages.append(ChatMessageAssistant(content=text, model=model_id,
                                                 source="generate"))
    if not messages:
        messages = [ChatMessageUser(content=prompt, source="input")]
    shared = samples_of_task > 1 and bool(calls)
    metadata: dict[str, Any] = {
        "split": result.split, "kind": task.kind if task else None,
        "entry_point": task.entry_point if task else None,
        "status": result.status, "solve_status": result.solve_status, "sample": result.sample,
        "source": task.source if task else None, "difficulty": task.difficulty if task else None,
        "tags": list(task.tags) if task else [], "model_call_ids": [c.id for c in calls],
    }
    if shared:
        metadata["model_calls_note"] = (
            f"the store does not record which of this task's {samples_of_task} samples made "
            "each model call, so every sample of the task shows all of them")
    started = result.created_at - result.solve_s - result.judge_s
    return EvalSample(
        id=result.task_id, epoch=result.sample + 1, input=prompt, target="",
        messages=messages, output=output, scores={SCORER: score}, metadata=metadata,
        events=[*(_model_event(c, started) for c in calls), _score_event(score, result)],
        model_usage={} if shared else usage_by_model(calls, model),
        started_at=iso(started), completed_at=iso(result.created_at),
        total_time=round(result.solve_s + result.judge_s, 3),
        working_time=round(result.solve_s + result.judge_s, 3),
        uuid=short_id(run_id, result.generation, result.task_id, result.sample),
    )


def _messages(raw: object) -> list[Any]:
    """Recorded ``{role, content}`` messages as Inspect chat messages."""
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser,
             "assistant": ChatMessageAssistant}
    if not isinstance(raw, list):
        return []
    return [kinds.get(str(m.get("role")), ChatMessageUser)(content=str(m.get("content", "")))
            for m in raw if isinstance(m, dict)]


def params_of(call: CallRow) -> dict[str, Any]:
    """The sampling parameters a call was made with."""
    params = call.request.get("params")
    return dict(params) if isinstance(params, dict) else {}


def _model_id(call: CallRow, model: str) -> str:
    """The exact model that answered a call, as recorded."""
    answer = call.completion if isinstance(call.completion, dict) else {}
    return str(answer.get("model_id") or call.model_id or call.model or model)


def _model_event(call: CallRow, sample_start: float) -> Any:
    """One recorded call, answered or not, with its raw request and answer attached."""
    from inspect_ai.event import ModelEvent
    from inspect_ai.model import ModelCall, ModelOutput

    c = call.completion if isinstance(call.completion, dict) else {}
    model_id = _model_id(call, call.model)
    if call.status == "ok" and c:
        output = ModelOutput.from_content(model_id, str(c.get("text", "")),
                                          stop_reason=STOP_REASONS.get(  # type: ignore[arg-type]
                                              str(c.get("stop_reason")), "unknown"))
        output.usage = _usage(c.get("usage") or {}, c.get("cost_usd"))
        output.time = c.get("latency_s")
    else:
        output = ModelOutput(model=model_id)
    error = None
    if call.status != "ok":  # refused (over budget) or failed
        error = ": ".join(x for x in (call.error_type, call.error_message) if x) or call.status
    latency = call.latency_s or 0.0
    params = params_of(call)
    return ModelEvent(
        uuid=short_id("call", call.id, call.created_at),
        timestamp=datetime.fromtimestamp(call.created_at - latency, UTC),
        completed=datetime.fromtimestamp(call.created_at, UTC),
        working_start=max(0.0, call.created_at - latency - sample_start),
        model=model_id, role=call.role, input=_messages(call.request.get("messages", [])),
        tools=[], tool_choice="none", config=generate_config(params), output=output,
        error=error, cache="read" if call.cache_hit else None, working_time=latency,
        call=ModelCall(request=call.request, response=call.completion, error=error is not None,
                       time=latency),
        metadata={"call_id": call.id, "status": call.status, "params": params},
    )


def _score_event(score: Any, result: ResultRow) -> Any:
    """The judge's verdict, at the moment it was recorded."""
    from inspect_ai.event import ScoreEvent

    return ScoreEvent(score=score, target="", scorer=SCORER,
                      timestamp=datetime.fromtimestamp(result.created_at, UTC),
                      working_start=result.solve_s + result.judge_s)


def _usage(usage: dict[str, Any], cost: float | None) -> Any:
    """rsi-bench usage counts as Inspect's (both count uncached input apart from cache reads)."""
    from inspect_ai.model import ModelUsage

    i, o, read, write = (int(usage.get(k) or 0) for k in (
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"))
    return ModelUsage(input_tokens=i, output_tokens=o, total_tokens=i + o + read + write,
                      input_tokens_cache_read=read or None, input_tokens_cache_write=write or None,
                      total_cost=cost)


def usage_by_model(calls: list[CallRow], model: str) -> dict[str, Any]:
    """What the calls spent, per answering model (cache hits spent nothing)."""
    out: dict[str, Any] = {}
    for c in calls:
        if c.status != "ok":
            continue
        spent = _usage({"input_tokens": c.input_tokens, "output_tokens": c.output_tokens,
                        "cache_read_tokens": c.cache_read_tokens,
                        "cache_write_tokens": c.cache_write_tokens}, c.cost_usd)
        key = c.model_id or model
        out[key] = out[key] + spent if key in out else spent
    return out


def generate_config(params: dict[str, Any]) -> Any:
    """Inspect's GenerateConfig for the sampling parameters it knows."""
    from inspect_ai.model import GenerateConfig

    known = {k: params[k] for k in GENERATE_PARAMS if k in params}
    try:
        return GenerateConfig(**known)
    except ValueError:  # a value of a type Inspect does not take; the raw params are in events
        return GenerateConfig()


def iso(timestamp: float) -> str:
    """A Unix time as an ISO 8601 UTC timestamp."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def short_id(*parts: object) -> str:
    """A stable 22-character id: re-exporting a run gives the same ids and file names."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:22]
