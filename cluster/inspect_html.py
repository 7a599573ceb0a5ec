"""`execrl inspect --html`: one self-contained page (inline CSS and SVG, no scripts, no
network), to open in a browser or attach to a report.

Colours carry meaning and are named here so the browser test can find them on a
screenshot: MASKED_BG is the background of code FGO masked out of the loss, RAN and
NOT_RUN the left border of lines a test did or did not execute, GIVEN_BG the canonical
prefix's background (the charts use the verdict colours, none of these).
"""

from __future__ import annotations

from html import escape

from cluster.inspect_run import ProblemHistory, RunSummary, ShownSample
from cluster.inspect_text import sample_heading, stage_of
from cluster.program_view import PREFIX, ProgramLine

MASKED_BG = "#f4a3a3"
GIVEN_BG = "#e8e8e8"
RAN = "#1f8a5b"
NOT_RUN = "#b03060"
VERDICT_COLOURS = {"pass": "#2e9d44", "wrong_answer": "#e67e22", "runtime_error": "#c0392b", "timeout": "#8e44ad",
                   "memory_limit": "#6c3483", "compile_error": "#34495e", "sandbox_error": "#7f8c8d"}

CSS = f"""
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
td, th {{ border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f4f4; }}
.code {{ font: 13px/1.35 ui-monospace, monospace; border: 1px solid #ccc; margin: 6px 0 16px; }}
.line {{ display: flex; border-left: 6px solid transparent; white-space: pre; }}
.line .no {{ width: 3em; text-align: right; color: #888; padding-right: 8px; user-select: none; }}
.line .st {{ width: 5em; color: #666; }}
.line.given {{ background: {GIVEN_BG}; }}
.line.ran {{ border-left-color: {RAN}; }}
.line.notrun {{ border-left-color: {NOT_RUN}; }}
.masked {{ background: {MASKED_BG}; }}
.legend span {{ padding: 0 6px; margin-right: 10px; }}
.sample-head {{ font-weight: 600; margin-top: 10px; }}
.fail {{ font: 12px ui-monospace, monospace; background: #fff6e5; padding: 4px 8px; white-space: pre-wrap; }}
.hack {{ color: #b03a2e; font-weight: 600; }}
"""


def render_html(summary: RunSummary, histories: list[ProblemHistory]) -> str:
    title = f"execrl inspect: {summary.run_dir}"
    body = [f"<h1>{escape(title)}</h1>", summary_html(summary), *(history_html(h) for h in histories)]
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def summary_html(s: RunSummary) -> str:
    out = [f"<p>steps {s.steps[0]}..{s.steps[-1]}; curriculum from {escape(s.checkpoint or 'no checkpoint')}</p>",
           "<h2>Verdict mix per step</h2>", verdict_chart(s.verdict_mix)]
    out += ["<h2>Most common failing tests</h2>",
            _table(["samples", "problem", "test", "verdict", "input", "expected", "actual / error"],
                   [[f.count, f.problem_id, f.index + 1, f.verdict, _repr(f.example.get("input")),
                     _repr(f.example.get("expected")), _repr(f.example.get("actual") or f.example.get("error"))]
                    for f in s.failing_tests])]
    out += ["<h2>Slowest programs</h2>",
            _table(["judge s", "step", "problem", "sample", "verdict"],
                    [[f"{r.judge_s:.3f}", r.step, r.problem_id, r.index, r.verdict] for r in s.slowest])]
    out += ["<h2>Reward-hacking signals</h2>",
            _table(["step", "signals"], [[step, ", ".join(f"{k} {v}" for k, v in c.items() if v) or "none"]
                                         for step, c in s.hacking])]
    if s.hack_examples:
        out.append(_table(["step", "problem", "signals", "completion"],
                          [[r.step, r.problem_id, ", ".join(r.hacks), _pre(r.completion)] for r in s.hack_examples]))
    more = len(s.problems) - s.problems_shown
    out += [f"<h2>Problems ({len(s.problems)}, most visited first"
            + (f"; {more} more with a larger --top" if more > 0 else "") + ")</h2>",
            _table(["problem", "visits", "samples", "pass rate", "stage", "last verdict"],
                   [[p.problem_id, p.visits, p.samples, "n/a" if p.pass_rate is None else f"{p.pass_rate:.2f}",
                     stage_of(p.stage, p.num_stages), p.last_verdict]
                    for p in s.problems[: s.problems_shown]])]
    return "\n".join(out)


def history_html(h: ProblemHistory) -> str:
    now = "unknown (no checkpoint)" if h.stage is None else stage_of(h.stage, h.num_stages)
    out = [f"<h2 id='problem'>Problem {escape(h.problem_id)}</h2>",
           f"<p>{h.num_stages or '?'} stages; stage now {now} (the last stage is position 0, the whole program)</p>",
           stage_chart(h),
           _table(["step", "stage change", "pass rate then"],
                  [[c.step, f"{c.from_stage} → {c.to_stage}", f"{c.pass_rate:.2f}"] for c in h.changes]),
           "<h3>Pass rate per stage</h3>",
           _table(["stage", "samples", "passed", "pass rate"],
                  [[st.stage, st.samples, f"{st.passed}/{st.judged}",
                    "n/a" if st.pass_rate is None else f"{st.pass_rate:.0%}"] for st in h.per_stage]),
           f"<h3>Latest samples (step {h.latest_step})</h3>", LEGEND]
    out += [sample_html(shown) for shown in h.latest]
    return "\n".join(out)


LEGEND = (f"<p class='legend'><span style='background:{GIVEN_BG}'>canonical prefix (given)</span>"
          f"<span style='border-left:6px solid {RAN}'>line ran</span>"
          f"<span style='border-left:6px solid {NOT_RUN}'>line not run</span>"
          f"<span class='masked'>masked out of the loss by FGO</span></p>")


def sample_html(shown: ShownSample) -> str:
    r = shown.record
    head = sample_heading(shown)
    out = [f"<div class='sample' data-verdict='{escape(r.verdict)}'>",
           f"<div class='sample-head' style='color:{VERDICT_COLOURS.get(r.verdict, '#222')}'>{escape(head)}</div>"]
    if r.hacks:
        out.append(f"<div class='hack'>reward-hacking signals: {escape(', '.join(r.hacks))}</div>")
    if r.failing:
        text = "\n".join(f"{k}: {r.failing[k]!r}" for k in ("input", "expected", "actual") if r.failing.get(k) is not None)
        text += f"\nerror: {r.failing['error']}" if r.failing.get("error") else ""
        out.append(f"<div class='fail'>failing test {r.failing['index'] + 1} ({escape(r.failing['verdict'])})\n"
                   f"{escape(text)}</div>")
    elif r.error:
        out.append(f"<div class='fail'>{escape(r.error)}</div>")
    out.append("<div class='code'>" + "".join(line_html(line) for line in shown.lines) + "</div></div>")
    return "\n".join(out)


def line_html(line: ProgramLine) -> str:
    if line.origin == PREFIX:
        kind, status = "given", "given"
    else:
        kind, status = {True: ("ran", "ran"), False: ("notrun", "not run"), None: ("unknown", "?")}[line.ran]
    code = "".join(f"<span class='masked'>{escape(s.text)}</span>" if s.masked else escape(s.text)
                   for s in line.segments)
    return (f"<div class='line {kind}' data-line='{line.number}'><span class='no'>{line.number}</span>"
            f"<span class='st'>{status}</span><span class='src'>{code or ' '}</span></div>")


def verdict_chart(mix: list[tuple[int, dict[str, int]]], width: int = 900, height: int = 180) -> str:
    """Stacked bars: each step's verdict shares."""
    if not mix:
        return "<p>no samples</p>"
    bar = width / len(mix)
    rects = []
    for k, (step, counts) in enumerate(mix):
        total, y = sum(counts.values()), 0.0
        for verdict, n in sorted(counts.items()):
            h = height * n / total
            rects.append(f"<rect x='{k * bar:.1f}' y='{y:.1f}' width='{max(bar - 1, 1):.1f}' height='{h:.1f}' "
                         f"fill='{VERDICT_COLOURS.get(verdict, '#999')}'><title>step {step}: {escape(verdict)} "
                         f"{n}/{total}</title></rect>")
            y += h
    keys = sorted({v for _, c in mix for v in c})
    legend = " ".join(f"<span style='background:{VERDICT_COLOURS.get(v, '#999')};color:#fff'>{escape(v)}</span>"
                      for v in keys)
    return (f"<svg class='verdicts' width='{width}' height='{height}' viewBox='0 0 {width} {height}'>"
            + "".join(rects) + f"</svg><p class='legend'>{legend} (one bar per step, {mix[0][0]}..{mix[-1][0]})</p>")


def stage_chart(h: ProblemHistory, width: int = 900, row: int = 26) -> str:
    """The problem's stage at each visit: one row per stage (the top one is position 0),
    one dot per visit, green where a sample passed, red where none did."""
    if not h.visits:
        return ""
    top = max((h.num_stages or 1) - 1, max(s for v in h.visits for s in v.stages))
    first, last = h.visits[0].step, max(h.visits[-1].step, h.visits[0].step + 1)
    left, height = 150, row * (top + 1) + 24
    parts = []
    for stage in range(top + 1):
        y = 12 + row * (top - stage) + row / 2
        label = f"stage {stage}" + (" (position 0)" if stage == top and h.num_stages else "")
        parts.append(f"<text x='4' y='{y + 4:.1f}' font-size='12'>{escape(label)}</text>"
                     f"<line x1='{left}' x2='{width - 10}' y1='{y:.1f}' y2='{y:.1f}' stroke='#ddd'/>")
    for v in h.visits:
        x = left + 10 + (width - left - 30) * (v.step - first) / (last - first)
        for stage in v.stages:
            y = 12 + row * (top - stage) + row / 2
            colour = VERDICT_COLOURS["pass" if v.passed else "runtime_error"]
            parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='6' fill='{colour}'><title>step {v.step}: stage "
                         f"{stage}, {v.passed}/{v.judged} passed</title></circle>")
    parts.append(f"<text x='{left}' y='{height - 2}' font-size='11'>steps {first} … {last}</text>")
    return f"<svg class='stages' width='{width}' height='{height}'>" + "".join(parts) + "</svg>"


def _table(head: list[str], rows: list[list]) -> str:
    if not rows:
        return "<p>none</p>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else escape(str(c))}</td>" for c in row) + "</tr>"
                  for row in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _pre(text) -> _Raw:
    return _Raw("" if text is None else f"<code>{escape(str(text))}</code>")


def _repr(text) -> _Raw:
    """A test's input or output as Python writes it, so blank lines and spaces show."""
    return _pre(None if text is None else repr(text))
