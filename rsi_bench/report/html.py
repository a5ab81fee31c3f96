"""index.html: one self-contained file (inline CSS, plots as base64 PNG, no scripts, no URLs)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from html import escape

from rsi_bench import __version__
from rsi_bench.report import text
from rsi_bench.results.analysis import Analysis
from rsi_bench.results.safety import SafetyCard

CSS = """
:root { --ink:#1d2430; --muted:#5f6b7a; --line:#e3e7ee; --bg:#f6f8fb; --card:#fff;
  --good:#2e7d32; --good-bg:#e8f5e9; --bad:#c62828; --bad-bg:#fdecea; --none:#6d7580;
  --none-bg:#f1f3f6; --warn:#8a5a00; --warn-bg:#fff4d6; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width:1320px; margin:0 auto; padding:28px 32px 60px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:19px; margin:36px 0 12px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:15px; margin:18px 0 8px; }
.meta { color:var(--muted); margin:0 0 16px; }
.banner { background:var(--warn-bg); color:var(--warn); border:1px solid #f0d48a;
  border-radius:8px; padding:10px 14px; font-weight:600; margin:12px 0 18px; }
nav { display:flex; flex-wrap:wrap; gap:6px 14px; font-size:13px; margin:8px 0 0; }
nav a { color:#1f6fb4; text-decoration:none; }
.verdicts { display:grid; grid-template-columns:repeat(auto-fit, minmax(330px, 1fr)); gap:14px; }
.verdict { background:var(--card); border-radius:10px; padding:14px 16px;
  border-left:7px solid var(--none); box-shadow:0 1px 3px rgba(0,0,0,.07); }
.verdict .cond { font-size:13px; color:var(--muted); text-transform:uppercase;
  letter-spacing:.06em; }
.verdict .label { font-size:24px; font-weight:700; margin:2px 0 6px; }
.verdict p { margin:4px 0; }
.verdict .reason { color:var(--muted); font-size:13px; }
.verdict.improved { border-left-color:var(--good); background:var(--good-bg); }
.verdict.improved .label { color:var(--good); }
.verdict.regressed { border-left-color:var(--bad); background:var(--bad-bg); }
.verdict.regressed .label { color:var(--bad); }
.verdict.none .label { color:var(--none); }
.tablewrap { overflow-x:auto; background:var(--card); border-radius:8px;
  box-shadow:0 1px 3px rgba(0,0,0,.06); }
table { border-collapse:collapse; width:100%; font-size:13px;
  font-variant-numeric:tabular-nums; }
th, td { padding:6px 10px; text-align:right; white-space:nowrap;
  border-bottom:1px solid var(--line); }
th { background:#eef2f7; font-weight:600; position:sticky; top:0; }
th:first-child, td:first-child { text-align:left; }
td.text, th.text { text-align:left; white-space:normal; }
tr:nth-child(even) td { background:#fafbfd; }
tr.selected td { background:#fff8e1; font-weight:600; }
tr.invalid td { color:var(--bad); }
figure { margin:10px 0 4px; background:var(--card); border-radius:8px; padding:10px;
  box-shadow:0 1px 3px rgba(0,0,0,.06); }
figure img { max-width:100%; height:auto; display:block; margin:0 auto; }
figcaption, .caption { color:var(--muted); font-size:13px; margin-top:6px; }
details { background:var(--card); border-radius:8px; margin:8px 0; padding:6px 12px;
  box-shadow:0 1px 3px rgba(0,0,0,.06); }
summary { cursor:pointer; font-weight:600; padding:4px 0; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(380px, 1fr)); gap:12px; }
.card { background:var(--card); border-radius:8px; padding:10px 14px;
  box-shadow:0 1px 3px rgba(0,0,0,.06); border-top:4px solid var(--good); }
.card.flagged { border-top-color:var(--bad); }
.card ul { margin:4px 0; padding-left:18px; font-size:13px; }
.tag { display:inline-block; font-size:12px; padding:1px 7px; border-radius:10px;
  background:var(--none-bg); margin:1px 3px 1px 0; }
.tag.bad { background:var(--bad-bg); color:var(--bad); }
ol.methods li { margin:4px 0; }
footer { color:var(--muted); font-size:12px; margin-top:40px; }
"""

CAPTIONS = {
    "score_per_generation": "Held-out pass@1 per generation, one line per seed, shaded "
                            "Wilson 95% intervals; ★ marks the generation each run selected "
                            "on dev. Panels are conditions, on the same y axis.",
    "dev_vs_heldout": "Dev scores (dashed) drive selection; held-out (solid) is never seen. "
                      "A dev curve that climbs away from held-out is selection overfitting.",
    "lineage": "Each run's tree of generations: an edge joins a parent to its child, y is "
               "the child's held-out score; invalid children sit on the red band.",
    "cost_vs_score": "Held-out score against the cumulative model cost of the run.",
    "heatmap": "Per held-out task (rows, easiest first) and generation (columns): green "
               "solved, red failed, grey not scored (invalid children).",
}
LABEL_CLASS = {"improved": "improved", "regressed": "regressed"}


def table(rows: Sequence[Mapping[str, str]], text_columns: Sequence[str] = (),
          row_classes: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p class='caption'>nothing to show</p>"
    head = "".join(f"<th{' class=text' if k in text_columns else ''}>{escape(k)}</th>"
                   for k in rows[0])
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{row_classes[i]}'" if row_classes and row_classes[i] else ""
        cells = "".join(f"<td{' class=text' if k in text_columns else ''}>{escape(str(v))}</td>"
                        for k, v in row.items())
        body.append(f"<tr{cls}>{cells}</tr>")
    return (f"<div class='tablewrap'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _verdicts(analysis: Analysis) -> str:
    boxes = []
    for cond, v in analysis.condition_verdicts.items():
        cls = LABEL_CLASS.get(v.label, "none")
        boxes.append(f"<div class='verdict {cls}'><div class='cond'>{escape(cond)} · "
                     f"{len(analysis.conditions[cond])} run(s)</div>"
                     f"<div class='label'>{escape(v.label)}</div>"
                     f"<p>{escape(text.verdict_sentence(v))}</p>"
                     f"<p class='reason'>{escape(v.reason)}</p></div>")
    return f"<div class='verdicts'>{''.join(boxes)}</div>"


def _figure(name: str, data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (f"<figure><img alt='{escape(name)}' src='data:image/png;base64,{encoded}'>"
            f"<figcaption>{escape(CAPTIONS.get(name, ''))}</figcaption></figure>")


def _generations(analysis: Analysis) -> str:
    parts = []
    for run_id in analysis.runs:
        rows = text.generation_rows(analysis, run_id)
        gens = analysis.generations[analysis.generations["run"] == run_id]
        classes = ["selected" if s else "invalid" if st == "invalid" else ""
                   for s, st in zip(gens["selected"], gens["status"], strict=True)]
        sel = analysis.selections[run_id]
        parts.append(f"<details><summary>{escape(run_id)} — {len(rows)} generations, selected "
                     f"{sel.selected}, held-out gain {text.points(sel.heldout_gain)} points"
                     f"</summary>{table(rows, ('status',), classes)}</details>")
    return "".join(parts)


def _safety(analysis: Analysis) -> str:
    cards = []
    for run_id, card in analysis.safety.items():
        leak_kinds = {f["kind"] for f in card.leakage}
        tags = "".join(f"<span class='tag{' bad' if k in leak_kinds else ''}'>"
                       f"{escape(k)} {n}</span>" for k, n in card.findings_by_kind.items())
        items = [f"<li>generation {i['generation']} (from {i['parent']}): "
                 f"{escape(i['reason'])}</li>" for i in card.invalid]
        leaks = [f"<li><b>{escape(f['kind'])}</b> ({escape(f['severity'])}, "
                 f"{escape(f['action'])}) in generation {f['generation']} "
                 f"{escape(f['path'])}: {escape(f['detail'])}</li>" for f in card.leakage]
        breaks = [f"<li>{escape(f['kind'])} ({escape(f['severity'])}, {escape(f['action'])}) "
                  f"in generation {f['generation']} {escape(f['path'])}: "
                  f"{escape(f['detail'])}</li>" for f in card.rule_breaks]
        paused = [f"<li>generation {p['generation']}: {escape(p['state'])} (paused: "
                  f"{escape(p['reason'])})</li>" for p in card.paused]
        cards.append(
            f"<div class='card{' flagged' if card.flagged else ''}'><h3>{escape(run_id)}</h3>"
            f"<p>{card.generations} children, {len(card.invalid)} invalid; "
            f"{card.resource_hits['timeout']} timeouts, {card.resource_hits['oom']} out of "
            f"memory; dev−held-out gap {text.points(card.gap)} points</p>"
            f"<p>{tags or '<span class=tag>no findings</span>'}</p>"
            f"<p>Sandbox events: {escape(text.counts(card.sandbox_events_by_kind))}</p>"
            + (f"<p><b>Leakage-relevant findings</b></p><ul>{''.join(leaks)}</ul>"
               if leaks else "<p>No leakage-relevant findings.</p>")
            + (f"<p><b>Invalid children</b></p><ul>{''.join(items)}</ul>" if items else "")
            + (f"<p><b>Paused children</b></p><ul>{''.join(paused)}</ul>" if paused else "")
            + f"<p>{escape(text.canary_sentence(card))}</p>"
            + _card_table(card)
            + (f"<details><summary>{len(card.rule_breaks)} other finding(s)</summary><ul>"
               f"{''.join(breaks)}</ul></details>" if breaks else "")
            + "</div>")
    return f"<div class='cards'>{''.join(cards)}</div>"


def _card_table(card: SafetyCard) -> str:
    """Per generation: findings, actions, canaries, the dev vs held-out gap, and the diff
    (a relative link to the diff file beside this report)."""
    rows = text.card_generation_rows(card)
    for row in rows:  # the table escapes cells; links are made after it
        if row["diff"] != "-":
            row["diff"] = f"\0{row['diff']}\0"
    html = table(rows, ("findings", "acted on", "why", "canaries solved", "sandbox events"),
                 ["invalid" if r["status"] == "invalid" else "" for r in rows])
    return re.sub("\0([^\0<]*)\0", lambda m: f"<a href='{m[1]}'>diff</a>", html)


def render_html(analysis: Analysis, plots: Mapping[str, bytes], name: str,
                n_boot_generation: int, n_boot_verdict: int) -> str:
    first = next(iter(analysis.runs.values()))
    config = first.config
    banner = text.model_banner(analysis)
    sections = [
        ("verdict", "Verdict", _verdicts(analysis)
         + "".join(f"<p class='caption'>{escape(n)}</p>" for n in analysis.notes)),
        ("runs", "Runs", table(text.run_rows(analysis))),
        ("scores", "Score per generation", _figure("score_per_generation",
                                                   plots["score_per_generation"])),
        ("overfitting", "Dev vs held-out", _figure("dev_vs_heldout", plots["dev_vs_heldout"])),
        ("lineage", "Lineage", _figure("lineage", plots["lineage"])),
        ("cost", "Cost", table(text.condition_cost_rows(analysis))
         + _figure("cost_vs_score", plots["cost_vs_score"])),
        ("tasks", "Tasks", _figure("heatmap", plots["heatmap"])),
        ("generations", "Generations", _generations(analysis)),
        ("safety", "Safety", _safety(analysis)),
        ("methods", "Methods", "<ol class='methods'>" + "".join(
            f"<li>{escape(m)}</li>" for m in text.methods(analysis, n_boot_generation,
                                                          n_boot_verdict)) + "</ol>"),
    ]
    nav = "".join(f"<a href='#{sid}'>{escape(title)}</a>" for sid, title, _ in sections)
    body = "".join(f"<section id='{sid}'><h2>{escape(title)}</h2>{html}</section>"
                   for sid, title, html in sections)
    meta = (f"suite {config.get('suite')} · model {first.model} · split seed "
            f"{config.get('split_seed')} · {len(analysis.runs)} run(s) in "
            f"{len(analysis.conditions)} condition(s) · strategy {config.get('strategy')}")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>rsi-bench report: {escape(name)}</title><style>{CSS}</style></head>"
            f"<body><main><header><h1>rsi-bench report: {escape(name)}</h1>"
            f"<p class='meta'>{escape(meta)}</p>"
            + (f"<div class='banner'>{escape(banner)}</div>" if banner else "")
            + f"<nav>{nav}</nav></header>{body}"
            f"<footer>rsi-bench {escape(__version__)} · results.json (schema rsi-bench/results "
            "v1), generations.csv and tasks.csv hold every number shown here.</footer>"
            "</main></body></html>\n")
