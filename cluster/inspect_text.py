"""`execrl inspect` as plain text: for a terminal, a log, or a pull-request comment."""

from __future__ import annotations

from cluster.inspect_run import ProblemHistory, RunSummary, ShownSample
from cluster.program_view import PREFIX, ProgramLine
from cluster.rollout_table import start_text

LEGEND = ("legend: 'given' = canonical prefix (the curriculum's, never trained on); 'ran' = some test executed "
          "the line; 'not run' = no test did; ⟦…⟧ = masked out of the policy loss by FGO")


def render_text(summary: RunSummary, histories: list[ProblemHistory]) -> str:
    parts = [summary_text(summary)] + [history_text(h) for h in histories]
    return "\n\n".join(parts) + "\n"


def summary_text(s: RunSummary) -> str:
    out = [f"run {s.run_dir}: steps {s.steps[0]}..{s.steps[-1]} "
           f"(curriculum from {s.checkpoint or 'no checkpoint'})", "", "verdict mix per step:"]
    for step, mix in s.verdict_mix:
        total = sum(mix.values())
        out.append(f"  step {step:>4}: " + ", ".join(f"{v} {n / total:.0%}" for v, n in sorted(mix.items(),
                                                                                            key=lambda kv: -kv[1])))
    if s.position_0:
        out.append("fraction of problems at position 0: " + " ".join(f"{step}:{f:.2f}" for step, f in s.position_0))
    out += ["", "most common failing tests:"]
    out += [f"  {f.count:>4} x {f.problem_id} test {f.index + 1} ({f.verdict}): {_failure_line(f.example)}"
            for f in s.failing_tests] or ["  none"]
    out += ["", "slowest programs (judge seconds: all tests in the executors):"]
    out += [f"  {r.judge_s:8.3f} s  step {r.step} {r.problem_id} #{r.index} {r.verdict}" for r in s.slowest] or ["  none"]
    out += ["", "reward-hacking signals per step:"]
    out += [f"  step {step:>4}: " + (", ".join(f"{k} {v}" for k, v in counts.items() if v) or "none")
            for step, counts in s.hacking] or ["  not logged"]
    for r in s.hack_examples[:3]:
        out.append(f"  example: step {r.step} {r.problem_id} #{r.index} [{', '.join(r.hacks)}]: "
                   f"{_one_line(r.completion, 100)}")
    more = len(s.problems) - s.problems_shown
    out += ["", f"problems ({len(s.problems)}, most visited first" + (f"; {more} more with a larger --top" if more > 0
                                                                       else "") + "):",
            "  visits samples  pass  stage     last verdict    problem"]
    for p in s.problems[: s.problems_shown]:
        rate = "  n/a" if p.pass_rate is None else f"{p.pass_rate:5.2f}"
        out.append(f"  {p.visits:>6} {p.samples:>7} {rate}  {stage_of(p.stage, p.num_stages):<9} {p.last_verdict:<15} "
                   f"{p.problem_id}")
    return "\n".join(out)


def stage_of(stage: int | None, num_stages: int | None) -> str:
    """"1 of 0..2": stage 1 where stage 2 is position 0 (the whole program)."""
    if stage is None:
        return "?"
    return f"{stage} of 0..{num_stages - 1}" if num_stages else str(stage)


def history_text(h: ProblemHistory) -> str:
    now = "unknown (no checkpoint)" if h.stage is None else stage_of(h.stage, h.num_stages)
    out = [f"problem {h.problem_id}: {h.num_stages or '?'} stages; stage now {now} "
           f"(the last stage is position 0, the whole program)"]
    out.append("stage changes: " + ("; ".join(f"step {c.step}: {c.from_stage} -> {c.to_stage} (pass rate "
                                              f"{c.pass_rate:.2f})" for c in h.changes) or "none"))
    out += ["visits:", "  step  stages  samples  passed  mean reward"]
    for v in h.visits:
        reward = "n/a" if v.mean_reward is None else f"{v.mean_reward:+.3f}"
        out.append(f"  {v.step:>4}  {','.join(map(str, v.stages)):<6}  {v.samples:>7}  {v.passed:>3}/{v.judged:<3} "
                   f"{reward:>8}")
    out.append("pass rate per stage: " + ", ".join(
        f"stage {st.stage}: {st.passed}/{st.judged}" + ("" if st.pass_rate is None else f" ({st.pass_rate:.0%})")
        for st in h.per_stage))
    out += ["", f"latest samples (step {h.latest_step}):", LEGEND]
    for shown in h.latest:
        out += ["", *sample_text(shown)]
    return "\n".join(out)


def sample_heading(shown: ShownSample) -> str:
    """One line about a shown sample (the text and the HTML page both head it with this)."""
    r = shown.record
    reward = "n/a" if r.reward is None else f"{r.reward:+.2f}"
    head = f"#{r.index} {r.verdict}, reward {reward}, stage {r.stage}"
    if shown.copies > 1:
        head += f" ({shown.copies} samples wrote this)"
    if r.start_kind:
        head += f", start {start_text(vars(r))}"
    if r.policy_version is not None:
        head += f", policy version {r.policy_version}"
    if r.tests_total:
        head += f", tests {r.tests_passed}/{r.tests_total} {r.test_verdicts}"
    return head


def sample_text(shown: ShownSample) -> list[str]:
    r = shown.record
    out = [sample_heading(shown)]
    if r.hacks:
        out.append(f"  reward-hacking signals: {', '.join(r.hacks)}")
    if r.failing:
        out.append(f"  failing test {r.failing['index'] + 1}: {_failure_line(r.failing)}")
    elif r.error:
        out.append(f"  error: {_one_line(r.error, 200)}")
    out += [line_text(line) for line in shown.lines]
    return out


def line_text(line: ProgramLine) -> str:
    status = "given" if line.origin == PREFIX else {True: "ran", False: "not run", None: "?"}[line.ran]
    code = "".join(f"⟦{s.text}⟧" if s.masked else s.text for s in line.segments)
    return f"  {line.number:>4} {status:<8}| {code}"


def _failure_line(f: dict) -> str:
    """Input, expected and actual output as Python writes them (an empty output shows as
    ''), then the error."""
    parts = [f"{k} {_one_line(repr(f[k]), 60)}" for k in ("input", "expected", "actual") if f.get(k) is not None]
    if f.get("error"):
        parts.append(f"error {_one_line(f['error'], 120)}")
    return "; ".join(parts) or f.get("verdict", "")


def _one_line(text: str, limit: int) -> str:
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[: limit - 1] + "…"
