"""`execrl bench loop`: a readable table and one JSON object on the last line."""

import json

import pytest

from cluster.cli import main

SMALL = ["learner.sft.steps=20", "problems_per_iteration=4", "rollout.samples_per_prompt=4",
         "learner.minibatch_size=16", "learner.micro_batch_size=8", "rollout.max_new_tokens=64"]


@pytest.mark.slow
def test_bench_loop_reports_phases_and_ratios(ray_session, tmp_path, capsys):
    code = main(["bench", "loop", "--iterations", "1", "--json", *SMALL,
                 f"model.cache_dir={tmp_path}", f"output_dir={tmp_path / 'run'}"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert "samples/s" in "\n".join(lines[:-1]) and "one step off policy" in "\n".join(lines[:-1])
    names = [c["name"] for c in report["configurations"]]
    assert len(names) == 3
    for c in report["configurations"]:
        assert c["samples_per_s"] > 0 and 0.0 <= c["overlap"] <= 1.0
        assert c["seconds"]["generate"] > 0 and c["seconds"]["learn"] > 0
    assert [c["policy_lag"] for c in report["configurations"]] == [0.0, 0.0, 1.0]
    assert report["speedup_2_vs_1_workers"] > 0 and report["speedup_off_vs_on_policy"] > 0


def test_bench_loop_rejects_zero_iterations(capsys):
    assert main(["bench", "loop", "--iterations", "0"]) == 2
    assert "--iterations must be at least 1" in capsys.readouterr().err
