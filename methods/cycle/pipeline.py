"""`execrl cycle run`: CYCLE's stages with files between them (resumable, inspectable).

    <out>/phase1.json            the Phase I (SFT) model used
    <out>/collect.jsonl|.json    every judged sample; counts and the settings that made them
    <out>/<name>/data.jsonl|.json refinement examples; counts (targets, verdicts, PGM share)
    <out>/<name>/model/          the CYCLE model (train.steps 0: none, the Phase I model is used)
    <out>/<name>/eval/<set>.jsonl|.json  per-problem chains; the round-by-round figures
                                 (kept per set: a later run may add sets with other sizes)

`<out>` holds one seed's shared stages (Phase I and the collection are the same for every
variant of a seed); `<name>` is the variant.  A stage whose output exists is kept if it
was made with the settings asked now, and refused (naming the file) if not: delete it or
use another --out.  Held-out problems never feed the data: the collection set is
checked against the base's held-out and transfer sets and the evaluation sets, by id and
by statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from cluster import problem_sets
from cluster.config import TrainConfig
from cluster.model_pools import ModelPools
from cluster.problem_sets import file_stem
from cluster.runtime import connect
from cluster.stage_files import keep_or_write, kept
from cluster.warmstart import _pair, warm_start
from core.problem import Problem
from core.settings import to_dict

from .config import CycleConfig
from .data import Row, Sample, build_examples, refine_rows
from .train import read_template, train_on_mix

STAGES = ("phase1", "collect", "build", "train", "eval")


@dataclass
class Run:
    cycle: CycleConfig
    base: TrainConfig
    out: Path
    name: str
    log: Callable[[str], None] = print

    @property
    def variant_dir(self) -> Path:
        return self.out / self.name


# the subsets drawn keep their salt, so earlier runs' subsets stay the same
load_set = partial(problem_sets.load_set, salt="cycle-eval")


def collection_set(run: Run) -> list[Problem]:
    spec = run.cycle.collect.problems or run.base.data.rl
    problems = load_set(spec, run.cycle.seed, run.base.data.format, run.cycle.collect.max_problems, "collect.problems",
                        sample=True)
    check_disjoint(problems, run)
    return problems


def check_disjoint(train: list[Problem], run: Run) -> None:
    """Refuse a collection set that shares a problem with a held-out set."""
    held = [("data.heldout", run.base.data.heldout), ("data.transfer", run.base.data.transfer)]
    held += [(f"eval.sets[{i}]", s) for i, s in enumerate(run.cycle.eval.sets)]
    ids, statements = {p.id for p in train}, {p.statement.strip() for p in train if p.statement.strip()}
    for key, spec in held:
        if not spec:
            continue
        for p in load_set(spec, run.cycle.seed, run.base.data.format, 0, key):
            if p.id in ids or (p.statement.strip() and p.statement.strip() in statements):
                raise ValueError(f"collect.problems shares problem {p.id!r} with {key} ({spec}): held-out problems "
                                 f"must never build refinement data")


def phase1(run: Run) -> str:
    """The SFT model CYCLE starts from: cycle.sft_model, or execrl's SFT (cached)."""
    path = run.out / "phase1.json"
    if run.cycle.sft_model:
        model = run.cycle.sft_model
        if not (Path(model) / "config.json").is_file():
            raise ValueError(f"sft_model: {model!r} is not a Hugging Face model directory")
    else:
        from models.resolve import resolve_model

        sft = load_set(run.base.data.sft, run.cycle.seed, run.base.data.format, 0, "base data.sft")
        model = warm_start(run.base, resolve_model(run.base.model, seed=run.cycle.seed), sft, run.log)
    keep_or_write(path, {"model": str(Path(model).resolve())})
    return model


def collect_stage(run: Run, model: str, tokenizer, pools) -> list[Sample]:
    from .collect import collect

    settings = {"phase1": str(Path(model).resolve()), "collect": to_dict(run.cycle.collect), "seed": run.cycle.seed,
                "sampling": _sampling(run.base), "selection": "seeded sample"}
    summary, data = run.out / "collect.json", run.out / "collect.jsonl"
    if kept(summary, settings) and data.is_file():
        return [Sample(**json.loads(line)) for line in data.read_text().splitlines()]
    problems = collection_set(run)
    samples, dropped = collect(problems, tokenizer, *pools(), run.cycle.collect.samples_per_problem,
                               run.cycle.seed, run.log)
    data.write_text("".join(json.dumps(s.to_dict()) + "\n" for s in samples))
    passed = sum(s.passed for s in samples)
    summary.write_text(json.dumps({"settings": settings, "problems": len(problems), "samples": len(samples),
                                   "passed": passed, "sandbox_errors_dropped": dropped}, indent=2) + "\n")
    run.log(f"collect: {len(samples)} samples, {passed} passed, {len(samples) - passed} faulty "
            f"({dropped} sandbox errors dropped)")
    return samples


def build_stage(run: Run, samples: list[Sample], tokenizer):
    """(refinement rows, generation rows); data.jsonl and data.json written."""
    problems = {p.id: p for p in collection_set(run)}
    examples, counts = build_examples(samples, problems, run.cycle.data, run.cycle.seed)
    rows = refine_rows(examples, problems, tokenizer, run.cycle.data, run.cycle.seed)
    fmt = run.base.rollout.prompt_style()
    sft = load_set(run.base.data.sft, run.cycle.seed, run.base.data.format, 0, "base data.sft")
    extra = [p for p in problems.values() if p.id not in {q.id for q in sft}]
    generation = [_pair(p, tokenizer, fmt) for p in sft + extra if p.canonical_solution]
    gen_rows = [Row(list(a), list(b)) for a, b in generation]
    masked = sum(len(r.masked) for r in rows)
    program = sum(r.program_tokens for r in rows)
    counts.update({"generation_examples": len(gen_rows), "masked_tokens": masked, "program_tokens": program,
                   "masked_share": masked / program if program else 0.0,
                   "prompt_tokens_max": max((len(r.prompt) for r in rows), default=0),
                   "settings": to_dict(run.cycle.data)})
    run.variant_dir.mkdir(parents=True, exist_ok=True)
    (run.variant_dir / "data.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in examples))
    (run.variant_dir / "data.json").write_text(json.dumps(counts, indent=2) + "\n")
    run.log(f"build: {len(examples)} refinement examples ({counts['target_sources']}), {len(gen_rows)} generation "
            f"examples; PGM masked {masked} of {program} faulty-program tokens")
    return rows, gen_rows


def train_stage(run: Run, model: str, rows, gen_rows, pad_id: int) -> str:
    if run.cycle.train.steps == 0:
        keep_or_write(run.variant_dir / "model.json", {"model": str(Path(model).resolve()), "trained": False})
        return model
    target = run.variant_dir / "model"
    settings = {"model": str(target.resolve()), "trained": True, "train": to_dict(run.cycle.train),
                "data": to_dict(run.cycle.data), "phase1": str(Path(model).resolve())}
    if (target / "config.json").is_file() and kept(run.variant_dir / "model.json", settings):
        run.log(f"train: kept {target}")
        return str(target)
    stats = train_on_mix(run.cycle, run.base, model, rows, gen_rows, target, pad_id, run.log)
    (run.variant_dir / "model.json").write_text(json.dumps({"settings": settings, **stats}, indent=2) + "\n")
    return str(target)


def eval_stage(run: Run, model: str, tokenizer, pools) -> dict:
    from .refine import report, rows, run_refinement

    template, _ = read_template(model)
    ev, results = run.cycle.eval, {}
    for spec in ev.sets:
        slug = file_stem(spec)
        out = run.variant_dir / "eval" / f"{slug}.json"
        settings = {"model": str(Path(model).resolve()), "set": spec, "max_problems": ev.max_problems,
                    "samples": ev.samples, "rounds": ev.rounds, "seed": run.cycle.seed, "sampling": _sampling(run.base)}
        if kept(out, settings):
            results[spec] = json.loads(out.read_text())["report"]
            continue
        problems = load_set(spec, run.cycle.seed, None, ev.max_problems, "eval.sets", sample=True)
        chains = run_refinement(problems, tokenizer, *pools(), ev.samples, ev.rounds, run.cycle.seed, template,
                                run.log)
        rep = report(chains, ev.rounds, ev.samples)
        run.log(rep.summary(spec))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(chains)))
        out.write_text(json.dumps({"settings": settings, "report": rep.to_dict()}, indent=2) + "\n")
        results[spec] = rep.to_dict()
    return results


def run_cycle(run: Run, until: str = "eval") -> dict:
    """Every stage up to `until`, keeping what is already made; the evaluation figures."""
    from transformers import AutoTokenizer

    from .template import check_plain

    if until not in STAGES:
        raise ValueError(f"--until {until!r}: choose one of {', '.join(STAGES)}")
    stop = STAGES.index(until)
    run.out.mkdir(parents=True, exist_ok=True)
    connect(run.base)
    model = phase1(run)
    tokenizer = AutoTokenizer.from_pretrained(model)
    check_plain(tokenizer, run.base.rollout)
    holder = _Pools(run.base)
    try:
        if stop < 1:
            return {}
        rows, gen_rows = [], []
        if run.cycle.train.steps or stop < 3:  # no training needs no data: skip its collection
            samples = collect_stage(run, model, tokenizer, lambda: holder.get(model))
            if stop < 2:
                return {}
            rows, gen_rows = build_stage(run, samples, tokenizer)
            if stop < 3:
                return {}
        holder.close()  # free the cores for training
        trained = train_stage(run, model, rows, gen_rows, tokenizer.pad_token_id)
        if stop < 4:
            return {}
        return eval_stage(run, trained, tokenizer, lambda: holder.get(trained))
    finally:
        holder.close()


class _Pools(ModelPools):
    """The shared pools, handed out as CYCLE's generate and judge callables."""

    def get(self, model: str):
        from .backends import pool_generate, pool_judge

        rollout, executors = super().get(model)
        return pool_generate(rollout, self.base.rollout), pool_judge(executors)


def _sampling(base: TrainConfig) -> dict:
    r = base.rollout
    return {"temperature": r.temperature, "top_p": r.top_p, "max_new_tokens": r.max_new_tokens, "backend": r.backend}
