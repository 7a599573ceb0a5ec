"""`execrl codedpo build|run`: CodeDPO's stages with files between them.

    <out>/start.json               the model that samples (and that training starts from)
    <out>/samples.jsonl|.json      per problem: k programs, the test-writing texts, the parsed
                                   tests, what the parser dropped (tests_gen.py)
    <out>/matrix.jsonl|.json       per problem: the k x m pass matrix, each cell judged alone
                                   (matrix.py), each program's verdict on the real tests, and
                                   which generated tests the reference solution passes
    <out>/<name>/scores.jsonl|.json   per problem: ranking scores, the verification, the trusted
                                   set; agreement with the real tests (agreement.py)
    <out>/<name>/timing.jsonl|.json   per problem: median CPU time of each program passing the
                                   trusted set (timing.py)
    <out>/<name>/pairs.jsonl|.json    the preference pairs and their counts (pairs.py)
    <out>/<name>/model/            the trained model (train.py); <name>/eval/ (evaluation.py)

`<out>` holds one seed's shared stages (the model's programs, tests and matrices are the
same for every ranking); `<name>` is the variant.  A stage whose summary exists is kept
when made with the settings asked now, and refused (naming the file) when not.  The task
set is checked against the held-out sets (by id and statement): held-out problems never
make preference data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

from cluster import problem_sets
from cluster.config import TrainConfig
from core.problem import Problem
from core.rollout import GenerationRequest
from core.settings import to_dict
from curriculum.prompt import build_prompt
from cluster.stage_files import kept, read_rows, read_summary, write_stage

from . import pairs as pairing
from .agreement import problem_agreement, summarise
from .config import CodeDPOConfig
from .matrix import cell_problem, pass_matrix, real_verdicts
from .tests_gen import line_of_test, parse_tests, prefilled_start, writing_prompt
from .timing import Timing, idle_judge, time_program
from .verify import rank_scores, trusted_tests

STAGES = ("sft", "samples", "matrix", "scores", "timing", "pairs", "train", "eval")


@dataclass
class Run:
    cfg: CodeDPOConfig
    base: TrainConfig
    out: Path
    name: str
    log: Callable[[str], None] = print

    @property
    def variant_dir(self) -> Path:
        return self.out / self.name


# the subsets drawn keep their salt, so earlier runs' subsets stay the same
load_set = partial(problem_sets.load_set, salt="codedpo-eval")


def task_set(run: Run) -> list[Problem]:
    spec = run.cfg.tasks.problems or run.base.data.rl
    problems = load_set(spec, run.cfg.seed, run.base.data.format, run.cfg.tasks.max_problems, "tasks.problems")
    held = [("data.heldout", run.base.data.heldout), ("data.transfer", run.base.data.transfer)]
    held += [(f"eval.sets[{i}]", s) for i, s in enumerate(run.cfg.eval.sets)]
    ids, statements = {p.id for p in problems}, {p.statement.strip() for p in problems if p.statement.strip()}
    for key, held_spec in held:
        for p in (load_set(held_spec, run.cfg.seed, run.base.data.format, 0, key) if held_spec else []):
            if p.id in ids or (p.statement.strip() and p.statement.strip() in statements):
                raise ValueError(f"tasks.problems shares problem {p.id!r} with {key} ({held_spec}): held-out problems "
                                 f"must never make preference data")
    return problems


def sampling_settings(run: Run) -> dict:
    r = run.base.rollout
    return {"temperature": r.temperature, "top_p": r.top_p, "max_new_tokens": r.max_new_tokens, "backend": r.backend}


def generate(rollout, requests: list[GenerationRequest]) -> dict[str, list[str]]:
    return {r.request_id: [c.text for c in r.completions] for r in rollout.generate(requests)}


def samples_stage(run: Run, model: str, tokenizer, pools) -> list[dict]:
    """Stage 2: k programs and the test-writing completions per problem, tests parsed."""
    sample = run.cfg.sample
    summary = run.out / "samples.json"
    settings = {"model": str(Path(model).resolve()), "tasks": to_dict(run.cfg.tasks), "sample": to_dict(sample),
                "seed": run.cfg.seed, "sampling": sampling_settings(run)}
    if kept(summary, settings):
        return read_rows(summary)
    problems = task_set(run)
    rollout, _ = pools()
    fmt, sampling = run.base.rollout.prompt_style(), run.base.rollout
    prompts = {p.id: build_prompt(p, tokenizer, fmt=fmt) for p in problems}
    stop = prompts[problems[0].id].stop if problems else ()
    programs = generate(rollout, sampling.requests([prompts[p.id].input_ids for p in problems],
                                                   [p.id for p in problems], run.cfg.seed, n=sample.programs,
                                                   stop=stop))
    texts = {p.id: writing_prompt(p, sample.function_prompt, sample.stdio_prompt) for p in problems}
    test_sampling = replace(sampling.sampling(), max_new_tokens=sample.test_max_new_tokens)
    requests = [GenerationRequest(tuple(tokenizer(texts[p.id]).input_ids), n=sample.test_samples, request_id=p.id,
                                  sampling=replace(test_sampling, seed=run.cfg.seed + 7919 * (k + 1)))
                for k, p in enumerate(problems)]
    written = generate(rollout, requests)
    rows = []
    for p in problems:
        raw = [prefilled_start(texts[p.id]) + t for t in written[p.id]]
        parsed = parse_tests(p, raw, sample.tests)
        rows.append({"problem_id": p.id, "programs": [prompts[p.id].prefix + c for c in programs[p.id]],
                     "test_texts": raw, "tests": [line_of_test(p, t) for t in parsed.tests],
                     "unparseable": parsed.unparseable, "duplicates": parsed.duplicates,
                     "dropped_examples": parsed.examples_dropped})
    counts = {"problems": len(rows), "programs": sum(len(r["programs"]) for r in rows),
              "tests": sum(len(r["tests"]) for r in rows), "unparseable_tests": sum(r["unparseable"] for r in rows),
              "duplicate_tests": sum(r["duplicates"] for r in rows),
              "problems_without_tests": sum(not r["tests"] for r in rows)}
    write_stage(summary, settings, rows, **counts)
    run.log(f"samples: {counts}")
    return rows


def tests_of(problem: Problem, row: dict):
    parsed = parse_tests(problem, row["tests"], len(row["tests"]))
    return parsed.tests


def matrix_stage(run: Run, samples: list[dict], pools) -> list[dict]:
    """Stage 3: every program on every generated test (one batch), and on the real tests."""
    summary = run.out / "matrix.json"
    settings = {"samples": read_summary(run.out / "samples.json")["settings"], "executor": to_dict(run.base.executor)}
    if kept(summary, settings):
        return read_rows(summary)
    problems = {p.id: p for p in task_set(run)}
    _, executors = pools()
    judge = executors.judge
    rows = []
    for row in samples:
        p = problems[row["problem_id"]]
        m = pass_matrix(p, row["programs"], tests_of(p, row), judge)
        real = real_verdicts(p, row["programs"], judge)
        out = {"problem_id": p.id, **m.to_dict(), "real": real, "sandbox_errors": m.sandbox_errors}
        if p.canonical_solution is not None:  # which generated tests are right (for the report only)
            out["reference"] = [int(c) for c in pass_matrix(p, [p.canonical_solution], tests_of(p, row),
                                                            judge).cells[0]]
        rows.append(out)
    cells = [c for r in rows for line in r["cells"] for c in line]
    figures = {"problems": len(rows), "cells": len(cells), "passing_cells": sum(cells),
               "sandbox_errors": sum(r["sandbox_errors"] for r in rows),
               "real_pass_rate": _share([v == "pass" for r in rows for v in r["real"]]),
               "generated_tests_the_reference_passes": _share([bool(c) for r in rows
                                                               for c in r.get("reference", [])])}
    write_stage(summary, settings, rows, **figures)
    run.log(f"matrix: {figures}")
    return rows


def scores_stage(run: Run, matrices: list[dict]) -> list[dict]:
    """Stage 4: the ranking, the trusted set, and agreement with the real tests."""
    v = run.cfg.verify
    summary = run.variant_dir / "scores.json"
    settings = {"matrix": read_summary(run.out / "matrix.json")["settings"], "verify": to_dict(v), "seed": run.cfg.seed}
    if kept(summary, settings):
        return read_rows(summary)
    rows = []
    for k, row in enumerate(matrices):
        scores, verification = rank_scores(row["cells"], v.ranking, v.damping, v.tol, v.max_iter,
                                           seed=run.cfg.seed * 100_003 + k)
        raw = verification.program_scores if verification else scores
        trusted = trusted_tests(row["cells"], raw) if row["cells"] and row["cells"][0] else []
        out = {"problem_id": row["problem_id"], "scores": scores, "trusted": trusted,
               "verification": verification.to_dict() if verification else None}
        if row["real"]:
            out["agreement"] = problem_agreement(scores, row["real"])
        rows.append(out)
    agreement = summarise([r["agreement"] for r in rows if "agreement" in r])
    trusted_right = [all(m["reference"][j] for j in r["trusted"]) for r, m in zip(rows, matrices)
                     if r["trusted"] and "reference" in m]
    agreement["trusted_sets_all_right"] = _share(trusted_right)  # every trusted test passed by the reference
    agreement["trusted_sets_checked"] = len(trusted_right)
    converged = [r["verification"]["converged"] for r in rows if r["verification"]]
    figures = {"problems": len(rows), "with_trusted_tests": sum(bool(r["trusted"]) for r in rows),
               "agreement": agreement, "converged": sum(converged), "verified": len(converged)}
    write_stage(summary, settings, rows, **figures)
    run.log(f"scores ({v.ranking}): {figures}")
    return rows


def timing_stage(run: Run, samples: list[dict], matrices: list[dict], scores: list[dict]) -> list[dict]:
    """Stage 5: programs passing the whole trusted set, timed on one idle slot."""
    repeats = run.cfg.timing.repeats
    summary = run.variant_dir / "timing.json"
    settings = {"scores": read_summary(run.variant_dir / "scores.json")["settings"], "timing": to_dict(run.cfg.timing)}
    if kept(summary, settings):
        return read_rows(summary)
    problems = {p.id: p for p in task_set(run)}
    rows, judge = [], idle_judge(run.base.executor) if repeats else None
    try:
        for sample, matrix, score in zip(samples, matrices, scores):
            p, trusted = problems[sample["problem_id"]], score["trusted"]
            timings: list[dict | None] = [None] * len(sample["programs"])
            if judge is not None and trusted:
                tests = tests_of(p, sample)
                timed = replace(cell_problem(p, tests[trusted[0]], 0), tests=tuple(tests[j] for j in trusted))
                for i, program in enumerate(sample["programs"]):
                    if all(matrix["cells"][i][j] for j in trusted):
                        timings[i] = time_program(judge, timed, program, repeats).to_dict()
            rows.append({"problem_id": p.id, "timings": timings})
    finally:
        if judge is not None:
            judge.close()
    figures = {"timed_programs": sum(t is not None and t["median_s"] is not None for r in rows for t in r["timings"])}
    write_stage(summary, settings, rows, **figures)
    run.log(f"timing: {figures}")
    return rows


def pairs_stage(run: Run, samples: list[dict], scores: list[dict], timings: list[dict]) -> list[dict]:
    """Stage 6: correctness and efficiency pairs, balanced (pairs.py)."""
    summary = run.variant_dir / "pairs.json"
    settings = {"timing": read_summary(run.variant_dir / "timing.json")["settings"], "pairs": to_dict(run.cfg.pairs)}
    if kept(summary, settings):
        return read_rows(summary)
    rule = pairing.PairRule(**to_dict(run.cfg.pairs))
    correctness, efficiency, no_tests = [], [], 0
    for sample, score, timing in zip(samples, scores, timings):
        no_tests += not sample["tests"]
        pid, programs = sample["problem_id"], sample["programs"]
        correctness += pairing.correctness_pairs(pid, programs, score["scores"], rule)
        times = [Timing(t["median_s"], tuple(t["runs"])) if t else None for t in timing["timings"]]
        efficiency += pairing.efficiency_pairs(pid, programs, score["scores"], times, rule)
    efficiency, dropped = pairing.balance(correctness, efficiency, rule.efficiency_ratio)
    rows = [p.to_dict() for p in correctness + efficiency]
    figures = {"correctness_pairs": len(correctness), "efficiency_pairs": len(efficiency),
               "efficiency_dropped_by_balance": dropped, "problems_without_tests": no_tests,
               "problems_with_pairs": len({r["problem_id"] for r in rows})}
    write_stage(summary, settings, rows, **figures)
    run.log(f"pairs: {figures}")
    return rows


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None
