"""CodeDPO's self-verification scores on hand-built pass matrices, against values
computed by hand (methods/codedpo/verify.py), and `execrl codedpo score`."""

from __future__ import annotations

import json
import math

import pytest

from cluster.cli import main
from methods.codedpo.verify import rank_scores, self_verify, top_program, trusted_tests


def approx(values, expected, tol=1e-9):
    return len(values) == len(expected) and all(abs(a - b) <= tol for a, b in zip(values, expected))


def test_worked_example_two_iterations_by_hand():
    """d = 0.75; program 0 passes tests 0 and 1, program 1 passes test 0.
    Iteration 1 (all scores 1 before): p0 = 0.25*1 + 0.75*(1+1) = 1.75, p1 = 0.25 + 0.75 = 1,
    t0 = 0.25 + 0.75*(1+1) = 1.75, t1 = 0.25 + 0.75*1 = 1.
    Iteration 2: p0 = 0.25*1.75 + 0.75*(1.75+1) = 2.5, p1 = 0.25*1 + 0.75*1.75 = 1.5625,
    t0 = 0.25*1.75 + 0.75*(1.75+1) = 2.5, t1 = 0.25*1 + 0.75*1.75 = 1.5625.
    (The issue's seed example, 1 -> 1.75 -> 2.7, is not reached by this update for any
    0/1 matrix up to 4 x 4: README, "CodeDPO".)"""
    v = self_verify([[1, 1], [1, 0]], d=0.75, max_iter=2, keep_history=True)
    assert approx(v.history[0], (1.0, 1.0))
    assert approx(v.history[1], (1.75, 1.0))
    assert approx(v.history[2], (2.5, 1.5625))
    assert approx(v.test_scores, (2.5, 1.5625))
    assert v.iterations == 2 and not v.converged


def test_all_pass_grows_by_one_plus_d_per_iteration_and_ranks_everyone_equal():
    """2 x 2, all pass: every score s -> (1-d) s + d*2s = (1+d) s."""
    v = self_verify([[1, 1], [1, 1]], d=0.5, max_iter=3, tol=1e-12)
    assert approx(v.program_scores, (1.5 ** 1,) * 2) and v.converged and v.iterations == 1
    assert approx(v.normalised_programs, (1.0, 1.0)) and approx(v.normalised_tests, (1.0, 1.0))
    assert trusted_tests([[1, 1], [1, 1]], v.program_scores) == [0, 1]


def test_all_fail_decays_and_leaves_no_trusted_test():
    v = self_verify([[0, 0, 0], [0, 0, 0]], d=0.85, max_iter=5)
    assert approx(v.program_scores, (0.15, 0.15)) and approx(v.test_scores, (0.15,) * 3)
    assert v.converged and v.iterations == 1
    assert trusted_tests([[0, 0, 0], [0, 0, 0]], v.program_scores) == []


def test_one_program_passing_everything_takes_all_the_weight():
    """Limit: the leading singular vectors of A: program 0 alone, tests equal, and
    A v = sigma u with sigma = sqrt(3): program 0 / test = sqrt(3), so normalised by the
    joint maximum the tests are 1/sqrt(3); the others decay to 0 relative to it."""
    m = [[1, 1, 1], [0, 0, 0], [0, 0, 0]]
    v = self_verify(m, d=0.85, tol=1e-12, max_iter=500)
    assert v.converged and v.iterations < 500
    assert approx(v.normalised_programs, (1.0, 0.0, 0.0), 1e-9)
    assert approx(v.normalised_tests, (1 / math.sqrt(3),) * 3, 1e-9)
    assert top_program(v.program_scores) == 0 and trusted_tests(m, v.program_scores) == [0, 1, 2]


def test_disconnected_blocks_do_not_leak_and_the_larger_block_wins():
    """Block {p0, p1} x {t0, t1} all pass; block {p2} x {t2}.  A 1 x 1 block keeps its
    score at exactly 1 ((1-d)*1 + d*1), whatever the other block does; the 2 x 2 block
    grows by (1+d) per iteration, so the ranking puts it first."""
    m = [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    v = self_verify(m, d=0.5, max_iter=3, tol=1e-15, keep_history=True)
    assert [h[2] for h in v.history] == [1.0, 1.0, 1.0, 1.0]
    assert approx(v.history[2], (2.25, 2.25, 1.0))
    assert trusted_tests(m, v.program_scores) == [0, 1]
    limit = self_verify(m, d=0.5, tol=1e-12, max_iter=1000)
    assert limit.converged and approx(limit.normalised_programs, (1.0, 1.0, 0.0), 1e-9)


def test_convergence_stops_at_tolerance_and_reports_when_it_did_not():
    m = [[1, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]]
    loose, tight = self_verify(m, tol=1e-2), self_verify(m, tol=1e-10, max_iter=1000)
    assert loose.converged and tight.converged and loose.iterations < tight.iterations
    capped = self_verify(m, tol=1e-10, max_iter=3)
    assert not capped.converged and capped.iterations == 3
    assert top_program(tight.program_scores) == 3


def test_scores_stay_finite_over_many_iterations():
    m = [[int(j <= i) for j in range(20)] for i in range(20)]
    v = self_verify(m, d=0.85, tol=1e-300, max_iter=400)
    assert all(math.isfinite(s) for s in v.program_scores) and v.log_rescale > math.log(1e100)
    assert top_program(v.program_scores) == 19


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="damping"):
        self_verify([[1]], d=1.0)
    with pytest.raises(ValueError, match=r"row 1 has 1 cells"):
        self_verify([[1, 0], [1]])
    with pytest.raises(ValueError, match=r"cell \[0\]\[1\]"):
        self_verify([[1, "yes"]])
    with pytest.raises(ValueError, match="ranking"):
        rank_scores([[1]], "magic")


def test_ranking_alternatives():
    m = [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert rank_scores(m, "pass-count")[0] == [2 / 3, 1 / 3, 1.0]
    assert rank_scores(m, "trust-all")[0] == [0.0, 0.0, 1.0]
    a, b = rank_scores(m, "random", seed=1)[0], rank_scores(m, "random", seed=2)[0]
    assert a == rank_scores(m, "random", seed=1)[0] and a != b
    scores, v = rank_scores(m, "selfverify")
    top = max(v.program_scores)
    assert v is not None and top_program(scores) == 2 and scores == [s / top for s in v.program_scores]
    assert scores[2] == 1.0
    # A test passed by every program outscores every program; the best program still ranks 1.0
    # (chosen_min in pairs.py reads these scores).
    shared = [[1, 0], [1, 0], [1, 1]]
    scores, v = rank_scores(shared, "selfverify")
    assert max(v.normalised_programs) < 1.0 == max(v.normalised_tests) and scores[2] == 1.0


def test_score_command_prints_both_vectors_and_the_trusted_set(tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([[1, 1], [1, 0]]))
    assert main(["codedpo", "score", "--matrix", str(path), "--json", "--damping", "0.75", "--max-iter", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert approx(out["program_scores"], (2.5, 1.5625)) and approx(out["test_scores"], (2.5, 1.5625))
    assert out["trusted_tests"] == [0, 1] and out["top_program"] == 0 and out["damping"] == 0.75
    assert main(["codedpo", "score", "--matrix", str(path)]) == 0
    text = capsys.readouterr().out
    assert "trusted tests (passed by program 0): [0, 1]" in text and "<- top" in text


def test_score_command_refuses_a_bad_matrix(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([[1, 0], [1]]))
    assert main(["codedpo", "score", "--matrix", str(path)]) == 2
    assert f"--matrix {path}: row 1 has 1 cells" in capsys.readouterr().err
    assert main(["codedpo", "score", "--matrix", str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err
