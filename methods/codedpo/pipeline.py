"""`execrl codedpo run`: the start model, the data stages (build.py), training
(train.py) and the evaluation (evaluation.py), each kept once made."""

from __future__ import annotations

import shutil
from pathlib import Path

from cluster.model_pools import ModelPools
from cluster.problem_sets import file_stem
from cluster.runtime import connect
from cluster.stage_files import kept, read_summary, write_stage
from cluster.warmstart import warm_start
from core.settings import to_dict

from . import build
from .build import STAGES, Run, load_set
from .evaluation import sample_and_judge, speed_comparison
from .train import top_programs, train


def start_model(run: Run) -> str:
    """cfg.sft_model, or execrl's SFT of the base model on the base's data.sft (cached)."""
    if run.cfg.sft_model:
        model = run.cfg.sft_model
        if not (Path(model) / "config.json").is_file():
            raise ValueError(f"sft_model: {model!r} is not a Hugging Face model directory")
    else:
        from models.resolve import resolve_model

        sft = load_set(run.base.data.sft, run.cfg.seed, run.base.data.format, 0, "base data.sft")
        model = warm_start(run.base, resolve_model(run.base.model, seed=run.cfg.seed), sft, run.log)
    model = test_writer(run, model)
    path = run.out / "start.json"
    if not kept(path, {"model": str(Path(model).resolve())}):
        write_stage(path, {"model": str(Path(model).resolve())})
    return model


def test_writer(run: Run, model: str) -> str:
    """With test_sft.steps > 0, the model taught to write tests (teach.py), kept once made."""
    if run.cfg.test_sft.steps == 0:
        return model
    from transformers import AutoTokenizer

    from .teach import teach_tests

    target = run.out / "start-tests" / "model"
    settings = {"from": str(Path(model).resolve()), "test_sft": to_dict(run.cfg.test_sft),
                "sample": {k: to_dict(run.cfg.sample)[k] for k in ("function_prompt", "stdio_prompt")},
                "data.sft": run.base.data.sft, "seed": run.cfg.seed}
    summary = run.out / "start-tests" / "model.json"
    if (target / "config.json").is_file() and kept(summary, settings):
        return str(target)
    shutil.rmtree(target, ignore_errors=True)  # a model without its summary: an unfinished run's
    target.parent.mkdir(parents=True, exist_ok=True)
    problems = load_set(run.base.data.sft, run.cfg.seed, run.base.data.format, 0, "base data.sft")
    stats = teach_tests(run.cfg, run.base, model, problems, target, AutoTokenizer.from_pretrained(model), run.log)
    write_stage(summary, settings, **stats)
    return str(target)


def train_stage(run: Run, model: str, samples, scores, pairs, tokenizer) -> str:
    if run.cfg.train.steps == 0:
        path = run.variant_dir / "model.json"
        if not kept(path, {"model": str(Path(model).resolve()), "trained": False}):
            write_stage(path, {"model": str(Path(model).resolve()), "trained": False})
        return model
    target = run.variant_dir / "model"
    settings = {"trained": True, "train": to_dict(run.cfg.train), "start": str(Path(model).resolve()),
                "pairs": read_summary(run.variant_dir / "pairs.json")["settings"]}
    if (target / "config.json").is_file() and kept(run.variant_dir / "model.json", settings):
        run.log(f"train: kept {target}")
        return str(target)
    shutil.rmtree(target, ignore_errors=True)  # a model without its model.json: an unfinished run's
    problems = {p.id: p for p in build.task_set(run)}
    tops = top_programs(samples, scores, {p["problem_id"] for p in pairs if p["kind"] == "correctness"})
    stats = train(run.cfg, run.base, model, problems, pairs, tops, target, tokenizer, run.log)
    write_stage(run.variant_dir / "model.json", settings, **stats)
    return str(target)


def eval_stage(run: Run, start: str, trained: str, tokenizer, pools) -> dict:
    ev, results = run.cfg.eval, {}
    for spec in ev.sets:
        slug = file_stem(spec)
        problems = None
        reports = {}
        for who, model, where in (("start", start, run.out / "eval-start"), ("trained", trained,
                                                                             run.variant_dir / "eval")):
            out = where / f"{slug}.json"
            settings = {"model": str(Path(model).resolve()), "set": spec, "max_problems": ev.max_problems,
                        "samples": ev.samples, "seed": run.cfg.seed, "sampling": build.sampling_settings(run)}
            if not kept(out, settings):
                problems = problems or load_set(spec, run.cfg.seed, None, ev.max_problems, "eval.sets", sample=True)
                rollout, executors = pools(model)
                report, rows = sample_and_judge(problems, tokenizer, rollout, executors, ev.samples, run.base.rollout,
                                                run.cfg.seed)
                write_stage(out, settings, rows, report=report)
            reports[who] = (read_summary(out)["report"], build.read_rows(out))
        speed_path = run.variant_dir / "eval" / f"{slug}.speed.json"
        speed_settings = {"start": str(Path(start).resolve()), "trained": str(Path(trained).resolve()), "set": spec,
                          "timing_repeats": ev.timing_repeats, "samples": ev.samples, "seed": run.cfg.seed}
        if not kept(speed_path, speed_settings):
            problems = problems or load_set(spec, run.cfg.seed, None, ev.max_problems, "eval.sets", sample=True)
            speed = speed_comparison(problems, reports["start"][1], reports["trained"][1], run.base.executor,
                                     ev.timing_repeats)
            write_stage(speed_path, speed_settings, speed.pop("rows"), **speed)
        speed = {k: v for k, v in read_summary(speed_path).items() if k != "settings"}
        results[spec] = {"pass_at_1": reports["trained"][0]["pass_at"]["1"],
                         "start_pass_at_1": reports["start"][0]["pass_at"]["1"], **speed}
        run.log(f"eval {spec}: pass@1 {results[spec]['pass_at_1']:.3f} (start {results[spec]['start_pass_at_1']:.3f}); "
                f"speed: {speed}")
    return results


def run_codedpo(run: Run, until: str = "eval") -> dict:
    """Every stage up to `until`, keeping what is already made; the evaluation figures."""
    from transformers import AutoTokenizer

    if until not in STAGES:
        raise ValueError(f"--until {until!r}: choose one of {', '.join(STAGES)}")
    stop = STAGES.index(until)
    run.out.mkdir(parents=True, exist_ok=True)
    connect(run.base)
    model = start_model(run)
    tokenizer = AutoTokenizer.from_pretrained(model)
    holder = ModelPools(run.base)
    try:
        if stop < 1:
            return {}
        samples = build.samples_stage(run, model, tokenizer, lambda: holder.get(model))
        if stop < 2:
            return {}
        matrices = build.matrix_stage(run, samples, lambda: holder.get(model))
        if stop < 3:
            return {}
        holder.close()
        scores = build.scores_stage(run, matrices)
        if stop < 4:
            return {}
        timings = build.timing_stage(run, samples, matrices, scores)
        if stop < 5:
            return {}
        pairs = build.pairs_stage(run, samples, scores, timings)
        if stop < 6:
            return {}
        trained = train_stage(run, model, samples, scores, pairs, tokenizer)
        if stop < 7:
            return {}
        return eval_stage(run, model, trained, tokenizer, holder.get)
    finally:
        holder.close()
