"""Paired bootstrap over utterances (lmrescore.rescoring.bootstrap): against a plain loop on
the same draws, against the exact bootstrap distribution of a 2-utterance set, and the
symmetries of a comparison."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmrescore.rescoring.bootstrap import (Interval, compare, compare_systems, draw_indices,
                                           utterance_errors, wer_interval)


def loop_bootstrap(errors_a: list[int], errors_b: list[int], words: list[int],
                   draws: np.ndarray) -> tuple[float, float, float, float, float]:
    """compute-wer-bootci's loops, one draw and one utterance at a time: A's WER mean and
    half-width, P(B improves), and the mean and half-width of WER(B) - WER(A), in percent."""
    wers, diffs, improved = [], [], 0
    for row in draws.tolist():
        e_a = sum(errors_a[i] for i in row)
        e_b = sum(errors_b[i] for i in row)
        n = sum(words[i] for i in row)
        wers.append(e_a / n)
        diffs.append((e_b - e_a) / n)
        improved += e_a - e_b > 0

    def mean_half(v: list[float]) -> tuple[float, float]:
        m = sum(v) / len(v)
        return 100 * m, 100 * 1.96 * math.sqrt(sum(x * x for x in v) / len(v) - m * m)

    (m, h), (dm, dh) = mean_half(wers), mean_half(diffs)
    return m, h, improved / len(draws), dm, dh


def test_vectorised_draws_match_a_plain_loop():
    rng = np.random.default_rng(5)
    words = rng.integers(1, 20, 40)
    errors_a = rng.integers(0, 6, 40)
    errors_b = np.maximum(errors_a - rng.integers(-2, 3, 40), 0)
    draws = draw_indices(40, replications=500, seed=3)
    assert draws.shape == (500, 40) and (draw_indices(40, 500, seed=3) == draws).all()
    m, h, p, dm, dh = loop_bootstrap(errors_a.tolist(), errors_b.tolist(), words.tolist(), draws)
    wer = wer_interval(errors_a, words, draws)
    c = compare(errors_a, errors_b, words, draws)
    assert (wer.mean, wer.low, wer.high) == pytest.approx((m, m - h, m + h), abs=1e-9)
    assert (c.difference.mean, c.difference.low, c.difference.high) == pytest.approx(
        (dm, dm - dh, dm + dh), abs=1e-9)
    assert c.p_improvement == p


def test_two_utterances_match_the_exact_bootstrap_distribution():
    """5 words each; A errs 2 and 0, B 0 and 1. The 4 equally likely draws (0,0), (0,1),
    (1,0), (1,1) give A's WER 40, 20, 20, 0% (mean 20, sd sqrt(2)*10) and A - B errors
    +4, +1, +1, -2: B improves in 3 of 4."""
    words, errors_a, errors_b = np.array([5, 5]), np.array([2, 0]), np.array([0, 1])
    draws = draw_indices(2, replications=40000, seed=1)
    wer = wer_interval(errors_a, words, draws)
    half = 1.96 * math.sqrt(2) * 10
    assert (wer.mean, wer.low, wer.high) == pytest.approx((20, 20 - half, 20 + half), abs=0.3)
    c = compare(errors_a, errors_b, words, draws)
    assert c.p_improvement == pytest.approx(0.75, abs=0.01)
    assert c.p_worse == pytest.approx(0.25, abs=0.01)
    assert c.verdict == "tie"


def test_identical_systems_tie_and_swapping_mirrors():
    rng = np.random.default_rng(0)
    words, errors = rng.integers(1, 20, 30), rng.integers(0, 5, 30)
    draws = draw_indices(30, replications=1000, seed=0)
    same = compare(errors, errors, words, draws)
    assert same.difference == Interval(0.0, 0.0, 0.0)
    assert (same.p_improvement, same.p_worse, same.verdict) == (0.0, 0.0, "tie")
    other = rng.permutation(errors)  # same total errors, on other utterances
    ab, ba = compare(errors, other, words, draws), compare(other, errors, words, draws)
    assert (ab.p_improvement, ab.p_worse) == (ba.p_worse, ba.p_improvement)
    assert ab.difference.mean == pytest.approx(-ba.difference.mean)
    assert ab.difference.low < 0 < ab.difference.high and ab.verdict == "tie"


def test_a_clear_gain_is_better_and_its_reverse_worse():
    words = np.full(200, 10)
    errors_a = np.full(200, 3)
    errors_b = errors_a - (np.arange(200) % 2)  # one error fewer in every other utterance
    draws = draw_indices(200, replications=1000, seed=0)
    assert compare(errors_a, errors_b, words, draws).verdict == "B better"
    assert compare(errors_b, errors_a, words, draws).verdict == "A better"


def test_compare_systems_from_texts():
    refs = {"u1": "a b c".split(), "u2": "d e".split(), "u3": "f".split()}
    a = {"u1": "a b c".split(), "u2": "d x".split()}  # u3 missing: all deletions
    b = {"u1": "a c".split(), "u2": "d e".split(), "u3": "f".split()}
    assert utterance_errors(refs, a).tolist() == [0, 1, 1]
    intervals, pairs = compare_systems(refs, [a, b, a], replications=2000, seed=7)
    assert len(intervals) == 3 and intervals[0] == intervals[2]
    assert set(pairs) == {(0, 1), (0, 2), (1, 2)}
    assert pairs[(0, 2)].p_improvement == 0.0
    assert str(Interval(19.234, 17.5, 20.966)) == "%WER 19.23 95% Conf Interval [ 17.50, 20.97 ]"
    with pytest.raises(ValueError):
        compare_systems({}, [a])


COMPARE = Path(__file__).parent.parent / "egs" / "utils" / "compare_systems.py"


def run_compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(COMPARE), *args], capture_output=True, text=True)


def test_compare_systems_script(tmp_path: Path):
    """egs/utils/compare_systems.py: 100 utterances of 4 words; A errs once in each, B in
    none, C as A but one word more in u0: B is better than A and C, A and C tie."""
    (tmp_path / "text").write_text("".join(f"u{i} a b c d\n" for i in range(100)))
    (tmp_path / "a").write_text("".join(f"u{i} a b c x\n" for i in range(100)))
    (tmp_path / "b").write_text((tmp_path / "text").read_text())
    (tmp_path / "c").write_text("u0 a b c x y\n" + "".join(f"u{i} a b c x\n"
                                                           for i in range(1, 100)))
    out = run_compare("--ref", str(tmp_path / "text"), *(f"--hyp={tmp_path / s}" for s in "abc"),
                      "--names", "A B C", "--replications", "1000")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:4] == ["# 100 utterances, 1000 draws, seed 0",
                         "# Set1 = A: %WER 25.00 [ 100 / 400, 0 ins, 0 del, 100 sub ]",
                         "# Set2 = B: %WER 0.00 [ 0 / 400, 0 ins, 0 del, 0 sub ]",
                         "# Set3 = C: %WER 25.25 [ 101 / 400, 1 ins, 0 del, 100 sub ]"]
    assert lines[4] == "Set1: %WER 25.00 95% Conf Interval [ 25.00, 25.00 ]"
    assert lines[5] == "Set2: %WER 0.00 95% Conf Interval [ 0.00, 0.00 ]"
    assert lines[7:9] == ["Probability of Set2 improving Set1: 100.00",
                          "Set2 - Set1: %WER -25.00 95% Conf Interval [ -25.00, -25.00 ]; "
                          "p = 0.0000: Set2 better"]
    assert lines[9].startswith("Probability of Set3 improving Set1: 0.00")
    assert lines[10].endswith("p = 1.0000: tie")  # C worse in ~63% of the draws only
    assert lines[12].endswith("p = 1.0000: Set2 better")
    bad = run_compare("--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "a"),
                      "--names", "A B")
    assert bad.returncode == 2 and "1 --hyp files" in bad.stderr
    (tmp_path / "extra").write_text("zz a\n")
    bad = run_compare("--ref", str(tmp_path / "text"), "--hyp", str(tmp_path / "extra"))
    assert bad.returncode == 1 and "no reference" in bad.stderr
