"""The command line as people type it: fast start, problem sets as a positional, the
problem file's own ids, and a local Ray that ignores a stale address file."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cluster.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "ray", "deepspeed", "wandb", "vllm")


def _modules_after(code: str) -> set[str]:
    """Run `code` in a fresh interpreter; the heavy libraries it imported."""
    probe = code + f"\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_no_model_library():
    """`execrl --help` and every verb's --help build the whole parser: no torch, Ray or
    transformers (they took 2.5 s of every verb's start)."""
    assert _modules_after("from cluster.cli import build_parser\nbuild_parser().format_help()") == set()


def test_judge_imports_no_model_library(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"problem_id": "HumanEval/0", "completion": "    return False\n"}) + "\n")
    code = (f"from cluster.cli import main\n"
            f"assert main(['judge', 'humaneval', '--samples', {str(samples)!r}, '--workers', '1']) == 0")
    assert _modules_after(code) == set()


def test_problem_set_as_positional(capsys):
    assert main(["data", "stats", "bundled:heldout", "--json"]) == 0
    positional = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["data", "stats", "--problems", "bundled:heldout", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == positional
    assert positional["problems"] > 0


@pytest.mark.parametrize("argv, message", [
    (["data", "stats"], "no problem set given"),
    (["data", "stats", "bundled:sft", "--problems", "bundled:rl"], "two problem sets given"),
])
def test_problem_set_missing_or_twice(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_eval_keeps_overrides_after_problems():
    """`eval --problems P KEY=VALUE`: argparse hands the override to the positional
    PROBLEMS; it must end up among the overrides."""
    from cluster.cli import build_parser
    from cluster.cli_data import resolve_problem_argument

    args = build_parser().parse_args(["eval", "--model", "m", "--problems", "humaneval", "seed=3", "learner.lr=1"])
    resolve_problem_argument(args)
    assert args.problems == "humaneval" and args.overrides == ["seed=3", "learner.lr=1"]


def test_judge_accepts_the_files_own_ids(tmp_path, capsys, shared_data):
    """MBPP's `task_id: 2` is `mbpp/2` once loaded; a sample written with the file's id
    is judged against that problem."""
    mbpp = shared_data / "mbpp" / "sanitized-mbpp.json"
    record = next(r for r in json.loads(mbpp.read_text()) if r["task_id"] == 2)
    samples, out = tmp_path / "s.jsonl", tmp_path / "r.jsonl"
    samples.write_text(json.dumps({"problem_id": 2, "code": record["code"]}) + "\n")
    assert main(["judge", str(mbpp), "--samples", str(samples), "--out", str(out), "--workers", "1"]) == 0
    result = json.loads(out.read_text())
    assert result["problem_id"] == "mbpp/2" and result["passed"], result


def test_judge_names_the_id_a_rejected_sample_should_have(tmp_path, capsys, shared_data):
    mbpp = shared_data / "mbpp" / "sanitized-mbpp.json"
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"problem_id": "mbpp/0002", "code": ""}) + "\n")
    assert main(["judge", str(mbpp), "--samples", str(samples)]) == 2
    err = capsys.readouterr().err
    assert "unknown problem_id 'mbpp/0002'" in err and "did you mean" in err and "'mbpp/2'" in err


def test_ambiguous_file_id_is_refused(tmp_path, capsys):
    """Two sources in one file that both had id 7: the bare 7 names neither."""
    problems = tmp_path / "p.jsonl"
    base = {"statement": "s", "tests": [{"kind": "stdio", "input": "", "output": "1"}], "solutions": ["print(1)"]}
    problems.write_text("".join(json.dumps({**base, "id": f"{src}/7", "source": src}) + "\n" for src in ("a", "b")))
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"problem_id": "7", "code": "print(1)"}) + "\n")
    assert main(["judge", str(problems), "--samples", str(samples)]) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err and "'a/7'" in err and "'b/7'" in err


@pytest.mark.slow
def test_local_ray_ignores_a_stale_address_file():
    """After a `ray start --head` whose processes died, Ray's address file stays; the
    laptop default must start its own instance (and say so), not try to join it."""
    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths live under it
    try:
        ray_dir = Path(tmp) / "ray"
        ray_dir.mkdir()
        (ray_dir / "ray_current_cluster").write_text("127.0.0.1:1\n")
        code = ("from cluster.config import load_config\nfrom cluster.runtime import connect\n"
                "import ray\nsaid = connect(load_config(None, []))\nprint('RESOURCES', ray.cluster_resources())\n"
                "ray.shutdown()\n")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=tmp, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "ray: started a local instance" in out.stdout and "RESOURCES" in out.stdout
    finally:
        subprocess.run(["rm", "-rf", tmp], check=False)


@pytest.mark.parametrize("key", ["data.heldout", "data.transfer"])
def test_preflight_names_the_data_key_whose_path_is_missing(key, tmp_path):
    """Before Ray or a model starts: a misspelt path fails naming its key."""
    from cluster.config import load_config
    from cluster.runtime import preflight
    from core.settings import ConfigError

    with pytest.raises(ConfigError, match=rf"{key}: .*nope\.jsonl"):
        preflight(load_config(None, [f"{key}={tmp_path / 'nope.jsonl'}", "learner.sft.steps=0"]))


def test_preflight_skips_an_empty_transfer_set():
    from cluster.config import load_config
    from cluster.runtime import preflight

    sets = preflight(load_config(None, ["data.transfer=", "learner.sft.steps=0"]))
    assert sets["transfer"] == [] and sets["heldout"]
