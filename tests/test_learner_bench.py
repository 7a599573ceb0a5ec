"""`execrl bench learner`: a readable table, then one JSON object on the last line."""

import json

import pytest

from cluster.cli import main


@pytest.mark.slow
def test_bench_learner_cli(tiny_model_dir, capsys):
    """Run after a process group exists in this process (as after any in-process learner
    test): the bench's spawned sides must not inherit its bound MASTER_PORT."""
    from learner.dist import setup_distributed

    setup_distributed()
    argv = ["bench", "learner", "--size", "tiny", "--steps", "1", "--batch-size", "8", "--model", str(tiny_model_dir), "--json"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert any("DeepSpeed time / plain torch time" in line for line in lines[:-1])
    torch_row, ds_row = report["results"]
    assert (torch_row["impl"], ds_row["impl"]) == ("torch", "deepspeed")
    # Same model, batch and math: the first update's losses agree, so the timing compares like with like.
    assert ds_row["first_policy_loss"] == pytest.approx(torch_row["first_policy_loss"], abs=1e-5)
    assert ds_row["first_value_loss"] == pytest.approx(torch_row["first_value_loss"], abs=1e-5)
    for row in (torch_row, ds_row):
        assert row["tokens_per_s"] > 0 and row["peak_rss_mb"] >= row["rss_before_models_mb"] > 0
    assert report["overhead"]["tiny"] == pytest.approx(torch_row["tokens_per_s"] / ds_row["tokens_per_s"])


def test_bench_verb_is_registered(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "learner", "--help"])
    assert "--zero" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_learner_per_estimator(tiny_model_dir, capsys):
    argv = ["bench", "learner", "--estimators", "gae,grpo", "--steps", "1", "--batch-size", "8",
            "--model", str(tiny_model_dir), "--json"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert [r["estimator"] for r in report["results"]] == ["gae", "grpo"] and report["baseline"] == "gae"
    assert any(line.startswith("grpo ") for line in lines[:-1])
    gae, grpo = report["results"]
    assert gae["first_value_loss"] > 0 and grpo["first_value_loss"] == 0.0  # the critic-free side has none
    assert report["ratios"]["grpo"]["peak_rss"] == pytest.approx(grpo["peak_rss_mb"] / gae["peak_rss_mb"])
    assert main(["bench", "learner", "--estimators", "gae,ppo"]) == 2
    assert "unknown ['ppo']" in capsys.readouterr().err
