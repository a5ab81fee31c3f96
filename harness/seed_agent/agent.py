"""The seed agent (generation 0 of rsi-bench): one prompt, code extraction, and an improve that
rewrites these very files. Standard library only; it runs inside the agent container.

Deliberately plain, so that there is room to improve: it does not show the model the task's
examples, never checks its answer, and never retries.
"""

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
FILE_BLOCK = re.compile(r"^FILE:[ \t]*`?([^\s`]+)`?[ \t]*\n+(`{3,}|~{3,})[^\n]*\n(.*?)^\2[ \t]*$",
                        re.M | re.S)


def fill(template, **values):
    """Replace {name} placeholders in one pass (not str.format: code and prompts hold other
    braces, and a value may itself contain a placeholder, e.g. this agent's own prompts)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m[1], m[0])), template)


def extract_code(text):
    """The first python block of an answer (else the first block, else the whole text)."""
    blocks = [(lang.lower(), body) for _fence, lang, body in FENCE.findall(text)]
    for lang, body in blocks:
        if lang in ("python", "py", "python3"):
            return body
    return blocks[0][1] if blocks else text


def solve(task_view, model):
    if getattr(task_view, "kind", "function") == "io":
        return solve_program(task_view, model)
    if getattr(task_view, "kind", "function") == "repo":
        return solve_repo(task_view, model)
    prompt = fill((HERE / "prompts" / "solve.md").read_text(),
                  prompt=task_view.prompt, entry_point=task_view.entry_point)
    answer = model.complete([{"role": "user", "content": prompt}])
    code = extract_code(answer["text"])
    if not re.search(rf"^\s*def {re.escape(task_view.entry_point)}\b", code, re.M):
        code = task_view.prompt + code  # a body that continues the signature
    return code


def solve_program(task_view, model):
    """An io task: a whole program that reads standard input and writes standard output."""
    prompt = fill((HERE / "prompts" / "solve_io.md").read_text(), prompt=task_view.prompt)
    answer = model.complete([{"role": "user", "content": prompt}])
    return extract_code(answer["text"])


def solve_repo(task_view, model):
    """A repo task: a unified diff against the repository the prompt shows."""
    prompt = fill((HERE / "prompts" / "solve_repo.md").read_text(), prompt=task_view.prompt)
    answer = model.complete([{"role": "user", "content": prompt}])
    blocks = [(lang.lower(), body) for _fence, lang, body in FENCE.findall(answer["text"])]
    for lang, body in blocks:
        if lang in ("diff", "patch"):
            return body
    return blocks[0][1] if blocks else answer["text"]


def read_files(workspace):
    """Every text file of the agent, by relative path."""
    files = {}
    for path in sorted(Path(workspace).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            try:
                files[path.relative_to(workspace).as_posix()] = path.read_text()
            except UnicodeDecodeError:
                pass
    return files


def show_file(path, text):
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"FILE: {path}\n{fence}\n{text}{'' if text.endswith(chr(10)) else chr(10)}{fence}\n"


def apply_edits(files, edits):
    """The simulated model's edit list (append / replace / truncate), as rsi-bench documents it."""
    out = dict(files)
    for edit in edits:
        path, action = str(edit["path"]), edit["action"]
        text = out.get(path, "")
        if action == "append":
            out[path] = text + str(edit["text"])
        elif action == "replace":
            new = str(edit["new"]).replace("\\", "\\\\")
            out[path] = re.sub(str(edit["pattern"]), new, text,
                               count=int(edit.get("count", 1)), flags=re.M | re.I)
        elif action == "truncate":
            out[path] = text[: int(edit["keep_chars"])]
        else:
            raise ValueError(f"unknown edit action {action!r}")
    return out


def parse_answer(text, files):
    """The files an answer changes: a JSON edit list, or FILE: blocks with whole contents."""
    candidates = [text.strip()] + [body for _f, lang, body in FENCE.findall(text) if lang == "json"]
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("edits"), list):
            changed = apply_edits(files, data["edits"])
            return {p: t for p, t in changed.items() if files.get(p) != t}
    return {path: body for path, _fence, body in FILE_BLOCK.findall(text)}


def improve(workspace, feedback, model):
    workspace = Path(workspace)
    files = read_files(workspace)
    results = "\n".join(f"- {r['task_id']}: {r['status']}" + (f" ({r['detail']})" if r.get(
        "detail") else "") for r in feedback) or "(no results)"
    prompt = fill((HERE / "prompts" / "improve.md").read_text(),
                  files="\n".join(show_file(p, t) for p, t in files.items()),
                  passed=sum(r["status"] == "pass" for r in feedback), total=len(feedback),
                  feedback=results)
    answer = model.complete([{"role": "user", "content": prompt}])
    for path, text in parse_answer(answer["text"], files).items():
        target = (workspace / path).resolve()
        if workspace.resolve() not in target.parents:
            print(f"improve: skipping {path!r}, outside the agent")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
