"""`execrl codedpo run` end to end on a tiny model: real SFT, rollout pool, executor pool,
per-cell matrices, scores, timing, pairs, DPO on the DeepSpeed learner, evaluation;
resumability; a kept stage made with other settings is refused."""

from __future__ import annotations

import json

import pytest

from cluster.cli import main

SMALL = ["base.learner.sft.steps=4", "base.learner.sft.batch_size=8", "base.learner.micro_batch_size=4",
         "base.rollout.max_new_tokens=32", "tasks.max_problems=3", "sample.programs=3", "sample.tests=3",
         "sample.test_samples=2", "sample.test_max_new_tokens=24", "timing.repeats=2", "train.steps=2",
         "train.batch_size=4", "test_sft.steps=2", "test_sft.batch_size=4", "eval.max_problems=2", "eval.samples=2",
         "eval.timing_repeats=2",
         # a chosen program needs a top score; the random tiny model's programs fail alike, so
         # every program ties: rank by the random control to get pairs out of any matrix
         "verify.ranking=random", "pairs.chosen_min=0.0", "pairs.rejected_max=1.0"]


@pytest.mark.slow
def test_codedpo_run_end_to_end_then_resume(ray_session, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "seed0"
    args = ["codedpo", "run", "--out", str(out), *SMALL, f"base.model.path={tiny_model_dir}",
            f"base.model.cache_dir={tmp_path / 'cache'}"]
    assert main(args) == 0
    taught = json.loads((out / "start-tests" / "model.json").read_text())
    assert taught["test_rows"] == 96 and taught["solution_rows"] == 96  # bundled:hard-sft, every problem
    start = json.loads((out / "start.json").read_text())["settings"]["model"]
    assert start.endswith("start-tests/model")  # the test writer samples and is what training starts from
    samples = json.loads((out / "samples.json").read_text())
    assert samples["problems"] == 3 and samples["programs"] == 9
    rows = [json.loads(l) for l in (out / "samples.jsonl").read_text().splitlines()]
    assert all(len(r["test_texts"]) == 2 and r["test_texts"][0].startswith('assert run("') for r in rows)
    matrix = [json.loads(l) for l in (out / "matrix.jsonl").read_text().splitlines()]
    assert all(len(m["cells"]) == 3 and len(m["real"]) == 3 for m in matrix)
    assert all(len(row) == len(s["tests"]) for m, s in zip(matrix, rows) for row in m["cells"])
    assert all(len(m["reference"]) == len(s["tests"]) for m, s in zip(matrix, rows))  # bundled: references
    scores = json.loads((out / "codedpo" / "scores.json").read_text())
    assert scores["agreement"]["chance_problems"] == 3 and "trusted_sets_all_right" in scores["agreement"]
    pairs = json.loads((out / "codedpo" / "pairs.json").read_text())
    assert pairs["correctness_pairs"] >= 1
    trained = json.loads((out / "codedpo" / "model.json").read_text())
    assert trained["method"] == "dpo" and trained["steps"] == 2 and trained["pairs"] >= 1
    assert (out / "codedpo" / "model" / "config.json").is_file()
    speed = json.loads((out / "codedpo" / "eval" / "bundled-hard-heldout.speed.json").read_text())
    assert "mean_speedup" in speed and "faster_share" in speed
    printed = capsys.readouterr().out
    assert '"pass_at_1"' in printed

    stamp = (out / "codedpo" / "model" / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "codedpo" / "model" / "model.safetensors").stat().st_mtime_ns == stamp
    assert "train: kept" in capsys.readouterr().out
    assert main([*args[:4], "--name", "top", *args[4:], "train.method=sft"]) == 0  # the SFT control, same data
    top = json.loads((out / "top" / "model.json").read_text())
    assert top["method"] == "sft" and top["sft_rows"] >= 1 and (out / "top" / "model" / "config.json").is_file()
    assert main([*args, "sample.tests=2"]) == 2
    assert "made with other settings" in capsys.readouterr().err

    from problems.load import load_problems

    few = tmp_path / "few.jsonl"
    few.write_text("".join(p.to_json() + "\n" for p in load_problems("bundled:hard-heldout").problems[:2]))
    rows = tmp_path / "speed.jsonl"
    assert main(["eval", "--model", str(out / "codedpo" / "model"), "--speed-baseline", start, "--problems",
                 str(few), "-n", "1", "--timing-repeats", "2", "--out", str(rows),
                 "rollout.max_new_tokens=32"]) == 0
    printed = capsys.readouterr().out
    assert "pass@1" in printed and "(baseline " in printed and "mean speed-up" in printed
    assert rows.is_file()
    assert main(["eval", "--model", start, "--speed-baseline", start, "--problems", str(few), "--refine", "1"]) == 2
    assert "--speed-baseline reports pass@1" in capsys.readouterr().err


def test_shipped_config_lists_every_key_with_its_default():
    import yaml

    from core.settings import to_dict
    from methods.codedpo.config import CODEDPO_CONFIG, CodeDPOConfig, load_codedpo_config

    assert yaml.safe_load(CODEDPO_CONFIG.read_text()) == to_dict(CodeDPOConfig())
    cfg, base = load_codedpo_config(None, ["seed=3", "verify.damping=0.5", "base.rollout.max_new_tokens=40"])
    assert cfg.verify.damping == 0.5 and base.seed == 3 and base.data.seed == 3 and base.rollout.max_new_tokens == 40


def test_bad_settings_are_named(tmp_path, capsys):
    assert main(["codedpo", "build", "--out", str(tmp_path), "verify.damping=1.5"]) == 2
    assert "verify.damping" in capsys.readouterr().err
    assert main(["codedpo", "build", "--out", str(tmp_path), "verify.ranking=magic"]) == 2
    assert "verify.ranking" in capsys.readouterr().err
    assert main(["codedpo", "build", "--out", str(tmp_path), "base.seed=2"]) == 2
    assert "set CodeDPO's seed" in capsys.readouterr().err


def test_tasks_never_include_held_out_problems(tmp_path):
    from methods.codedpo.build import Run, task_set
    from methods.codedpo.config import load_codedpo_config

    cfg, base = load_codedpo_config(None, ["tasks.problems=bundled:hard-heldout", "tasks.max_problems=2"])
    with pytest.raises(ValueError, match="held-out problems must never make preference data"):
        task_set(Run(cfg, base, tmp_path, "x"))
