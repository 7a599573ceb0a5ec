"""`execrl data split`: train/held-out sets stratified by difficulty, fixed by the seed."""

import json
from collections import Counter
from dataclasses import replace

import pytest

from cluster.cli import main
from problems.load import load_problems
from problems.split import heldout_count, split_problems


@pytest.fixture(scope="module")
def problems():
    return load_problems("bundled:heldout").problems


def test_split_is_stratified_disjoint_and_complete(problems):
    train, heldout = split_problems(problems, 0.25, seed=3)
    assert {p.id for p in train} | {p.id for p in heldout} == {p.id for p in problems}
    assert not {p.id for p in train} & {p.id for p in heldout}
    sizes = Counter(p.difficulty for p in problems)
    assert len(sizes) >= 3
    assert Counter(p.difficulty for p in heldout) == {d: heldout_count(n, 0.25) for d, n in sizes.items()}
    assert [p.id for p in train] == [p.id for p in problems if p in train]  # input order kept


def test_split_depends_on_the_seed_not_the_file_order(problems):
    ids = lambda part: sorted(p.id for p in part)  # noqa: E731
    first = split_problems(problems, 0.2, seed=7)[1]
    assert ids(split_problems(problems, 0.2, seed=7)[1]) == ids(first)
    assert ids(split_problems(list(reversed(problems)), 0.2, seed=7)[1]) == ids(first)
    assert ids(split_problems(problems, 0.2, seed=8)[1]) != ids(first)


def test_split_refuses_bad_fraction_and_duplicate_ids(problems):
    with pytest.raises(ValueError, match="--heldout-fraction must be between 0 and 1"):
        split_problems(problems, 1.0, seed=0)
    twice = [problems[0], replace(problems[1], id=problems[0].id)]
    with pytest.raises(ValueError, match=f"problem id {problems[0].id!r} appears twice"):
        split_problems(twice, 0.5, seed=0)


def test_split_cli_writes_loadable_files(tmp_path, capsys, problems):
    out = tmp_path / "split"
    assert main(["data", "split", "bundled:heldout", "--out-dir", str(out), "--heldout-fraction", "0.3",
                 "--seed", "2"]) == 0
    train, heldout = (load_problems(out / f"{name}.jsonl").problems for name in ("train", "heldout"))
    expected = split_problems(problems, 0.3, seed=2)
    assert [p.to_dict() for p in train] == [p.to_dict() for p in expected[0]]
    assert [p.to_dict() for p in heldout] == [p.to_dict() for p in expected[1]]
    assert f"{len(heldout)} to {out / 'heldout.jsonl'}" in capsys.readouterr().out
    again = tmp_path / "again"  # --problems form, same seed: the same bytes
    assert main(["data", "split", "--problems", "bundled:heldout", "--out-dir", str(again),
                 "--heldout-fraction", "0.3", "--seed", "2"]) == 0
    assert (again / "heldout.jsonl").read_bytes() == (out / "heldout.jsonl").read_bytes()
    assert main(["data", "split", "bundled:heldout", "--out-dir", str(out), "--heldout-fraction", "0"]) == 2
    assert "--heldout-fraction must be between 0 and 1" in capsys.readouterr().err
    assert json.loads((out / "train.jsonl").read_text().splitlines()[0])["id"]
