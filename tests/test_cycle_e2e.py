"""`execrl cycle run` end to end on a tiny model (real SFT, rollout pool, executor pool,
DeepSpeed learner), its resumability, `execrl eval --refine`, and the experiment's table."""

from __future__ import annotations

import json

import pytest

from cluster.cli import main

SMALL = ["base.learner.sft.steps=4", "base.learner.sft.batch_size=8", "base.learner.micro_batch_size=8",
         "base.rollout.max_new_tokens=32", "collect.max_problems=4", "collect.samples_per_problem=2",
         "train.steps=3", "train.batch_size=8", "eval.max_problems=3", "eval.samples=2", "eval.rounds=2"]


@pytest.mark.slow
def test_cycle_run_end_to_end_then_resume_then_eval_refine(ray_session, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "seed0"
    args = ["cycle", "run", "--out", str(out), *SMALL, f"base.model.path={tiny_model_dir}",
            f"base.model.cache_dir={tmp_path / 'cache'}"]
    assert main(args) == 0
    collected = json.loads((out / "collect.json").read_text())
    assert collected["problems"] == 4 and collected["samples"] + collected["sandbox_errors_dropped"] == 8
    phase1 = json.loads((out / "phase1.json").read_text())["settings"]["model"]
    assert "sft-" in phase1  # execrl's SFT made it (cached under base.model.cache_dir)
    data = json.loads((out / "cycle" / "data.json").read_text())
    assert data["examples"] >= 1 and data["generation_examples"] >= 4
    assert abs(data["masked_share"] - 0.05) < 0.03  # PGM default, per-example rounding
    model = out / "cycle" / "model"
    assert (model / "config.json").is_file() and (model / "cycle.json").is_file()
    report = json.loads((out / "cycle" / "eval" / "bundled-hard-heldout.json").read_text())["report"]
    assert len(report["pass_at_1"]) == 3 and report["problems"] == 3
    lines = [json.loads(l) for l in (out / "cycle" / "eval" / "bundled-hard-heldout.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(len(row["chains"]) == 2 for row in lines)
    assert all(r["program"] is not None for row in lines for c in row["chains"] for r in c["rounds"])

    stamp = (model / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0  # every stage kept
    assert (model / "model.safetensors").stat().st_mtime_ns == stamp
    assert "train: kept" in capsys.readouterr().out
    assert main([*args, "data.pgm_fraction=0.2"]) == 2  # a kept stage made with other settings is refused
    assert "made with other settings" in capsys.readouterr().err

    untrained = tmp_path / "seed0-untrained"  # train.steps=0 evaluates Phase I: nothing to collect for
    assert main(["cycle", "run", "--out", str(untrained), "--name", "sft", *args[4:], "train.steps=0"]) == 0
    assert not (untrained / "collect.json").exists() and not (untrained / "sft" / "data.json").exists()
    assert (untrained / "sft" / "eval" / "bundled-hard-heldout.json").is_file()
    capsys.readouterr()

    per_problem = tmp_path / "refine.jsonl"
    assert main(["eval", "--model", str(model), "--problems", "bundled:hard-heldout", "-n", "1", "--refine", "1",
                 "--out", str(per_problem), "rollout.max_new_tokens=32"]) == 0
    printed = capsys.readouterr().out
    assert "template budget: from the model" in printed and "round  pass@1  exact-copy" in printed
    rows = [json.loads(l) for l in per_problem.read_text().splitlines()]
    assert len(rows) == 142 and all(len(c["rounds"]) <= 2 for row in rows for c in row["chains"])


def test_eval_refine_refuses_bad_arguments(capsys):
    assert main(["eval", "--model", "m", "--problems", "humaneval", "--refine", "-1"]) == 2
    assert "--refine -1" in capsys.readouterr().err
    assert main(["eval", "--model", "m", "--problems", "humaneval", "-n", "2", "-k", "1,2", "--refine", "2"]) == 2
    assert "-k 1,2 is not supported" in capsys.readouterr().err


def test_experiment_table_from_finished_runs(tmp_path):
    from methods.cycle.experiment import collect_results, command, table, Request

    for seed, (r0, r1) in enumerate([(0.2, 0.3), (0.4, 0.6)]):
        for variant in ("sft", "cycle"):
            path = tmp_path / f"seed{seed}" / variant / "eval" / "bundled-hard-heldout.json"
            path.parent.mkdir(parents=True)
            bump = 0.1 if variant == "cycle" else 0.0
            report = {"pass_at_1": [r0, r1 + bump], "exact_copy": [None, 0.5 - bump], "fixed": [None, 0.1 + bump],
                      "empty": [None, 0.25]}
            path.write_text(json.dumps({"settings": {"set": "bundled:hard-heldout"}, "report": report}))
    small = tmp_path / "seed1-small" / "small-sft" / "eval" / "bundled-hard-heldout.json"
    small.parent.mkdir(parents=True)
    small.write_text(json.dumps({"settings": {"set": "bundled:hard-heldout"},
                                 "report": {"pass_at_1": [0.5, 0.5], "exact_copy": [None, 1.0], "fixed": [None, 0.0],
                                            "empty": [None, 0.0]}}))
    results = collect_results(tmp_path)
    assert set(results["bundled:hard-heldout"]) == {"sft", "cycle", "small-sft"}
    assert set(results["bundled:hard-heldout"]["small-sft"]) == {"1"}  # seed1-small is seed 1
    md = table(results)
    assert "| sft | 0,1 | 0.300 (0.200-0.400) | 0.450 (0.300-0.600) | 0.500 (0.500-0.500) | 0.100 (0.100-0.100) " \
           "| 0.250 (0.250-0.250) | 0.500 (0.500-0.500) |" in md
    assert "| cycle | 0,1 | 0.300 (0.200-0.400) | 0.550 (0.400-0.700) | 0.400 (0.400-0.400) |" in md
    cmd = command(Request(tmp_path, [1], ["cycle-no-pgm"], extra=("eval.rounds=1",), sft_models={1: "/m"}), 1,
                  "cycle-no-pgm")
    assert cmd[-4:] == ["eval.rounds=1", "data.pgm_fraction=0", "seed=1", "sft_model=/m"]
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "seed1")
    small_cmd = command(Request(tmp_path, [1], ["small-sft"], sft_models={1: "/m"}, small_models={1: "/s"}), 1,
                        "small-sft")
    assert small_cmd[small_cmd.index("--out") + 1] == str(tmp_path / "seed1-small")  # its own Phase I
    assert small_cmd[-4:] == ["train.steps=0", "base.model.init_size=small", "seed=1", "sft_model=/s"]


def test_a_set_file_name_is_never_hidden():
    from cluster.problem_sets import file_stem

    assert file_stem("../shared/data/mbpp/sanitized-mbpp.json") == "shared_data_mbpp_sanitized-mbpp.json"
    assert file_stem("bundled:hard-heldout") == "bundled-hard-heldout"
