"""Weight tuning (Kaldi's score.sh sweep): the grid's WERs, the best point, the CLI."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmrescore.cli import main
from lmrescore.cli.tune import float_list
from lmrescore.formats import write_lattices
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.rescoring.tune import best_point, decode, sweep
from lmrescore.vocab import Vocab

SYMBOLS = Vocab.from_words(["a", "b", "c"])
COMPARE = Path(__file__).parent.parent / "egs" / "utils" / "compare_at_weights.py"


def two_choices(lm_a: float = -2.0, lm_b: float = 0.0) -> list[Lattice]:
    """u1: "a" (am 0, lm -2) or "b" (am -1, lm 0): "a" wins only when am weighs more than
    lm: 1/LMWT > 2. u2: "c" or "c c" ("c c" is better by 0.5 with no insertion penalty)."""
    a, b, c = SYMBOLS.encode(["a", "b", "c"])
    u1 = Lattice.from_arcs("u1", 3, [0, 0, 1], [1, 1, 2], [a, b, -1],
                           {"am": [0.0, -1.0, 0.0], "lm": [lm_a, lm_b, 0.0]})
    u2 = Lattice.from_arcs("u2", 4, [0, 1, 1, 2], [1, 2, 3, 3], [c, c, -1, -1],
                           {"am": [0.0, 0.0, 0.0, 0.0], "lm": [0.0, 0.0, -0.5, 0.0]})
    return [Lattice.cat([u1, u2])]


def test_decode_follows_the_weights():
    batches = two_choices()
    assert decode(batches, SYMBOLS, Weights(1 / 0.25, 1.0, 0.0)) == {"u1": ["a"], "u2": ["c", "c"]}
    assert decode(batches, SYMBOLS, Weights(1 / 2.0, 1.0, 1.0)) == {"u1": ["b"], "u2": ["c"]}


def test_sweep_counts_errors_at_every_point():
    refs = {"u1": ["a"], "u2": ["c"]}
    points = sweep(two_choices(), SYMBOLS, refs, [0.25, 2.0], [0.0, 1.0])
    assert [(p.lmwt, p.word_ins_penalty) for p in points] == [
        (0.25, 0.0), (0.25, 1.0), (2.0, 0.0), (2.0, 1.0)]
    assert [p.errors.errors for p in points] == [1, 0, 2, 1]
    assert all(p.errors.ref_words == 2 for p in points)
    best = best_point(points)
    assert (best.lmwt, best.word_ins_penalty) == (0.25, 1.0)


def test_float_list():
    assert float_list("5:8") == [5.0, 6.0, 7.0, 8.0]
    assert float_list("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert float_list("-1,0,0.5") == [-1.0, 0.0, 0.5]
    for bad in ("a:b", "1:2:0", "1,x"):
        with pytest.raises(argparse.ArgumentTypeError):
            float_list(bad)


def test_cli_prints_and_writes_the_best_point(tmp_path: Path, capsys):
    words = tmp_path / "words.txt"
    SYMBOLS.save(words)
    write_lattices(f"ark:{tmp_path / 'lat.ark'}", two_choices(), "kaldi")
    (tmp_path / "text").write_text("u1 a\nu2 c\n")
    code = main(["tune", f"ark:{tmp_path / 'lat.ark'}", "--words", str(words),
                 "--ref", str(tmp_path / "text"), "--inv-acoustic-scale", "0.25,2",
                 "--word-ins-penalty=0,1", "--json", str(tmp_path / "best.json")])
    assert code == 0
    assert "best: LMWT 0.25 (acoustic scale 4) word-ins-penalty 1" in capsys.readouterr().out
    best = json.loads((tmp_path / "best.json").read_text())
    assert (best["lmwt"], best["word_ins_penalty"], best["errors"]) == (0.25, 1.0, 0)
    assert len(best["grid"]) == 4


def test_cli_writes_every_points_hypotheses_as_kaldis_scoring_dir(tmp_path: Path):
    words = tmp_path / "words.txt"
    SYMBOLS.save(words)
    write_lattices(f"ark:{tmp_path / 'lat.ark'}", two_choices(), "kaldi")
    (tmp_path / "text").write_text("u1 a\nu2 c\n")
    assert main(["tune", f"ark:{tmp_path / 'lat.ark'}", "--words", str(words),
                 "--ref", str(tmp_path / "text"), "--inv-acoustic-scale", "0.25,2",
                 "--word-ins-penalty=0.0,1", "--hyp-dir", str(tmp_path / "sk")]) == 0
    # penalties spelled as given (Kaldi's penalty_$wip), LMWTs too; lines as utils/int2sym.pl's
    assert sorted(str(p.relative_to(tmp_path / "sk")) for p in tmp_path.glob("sk/*/*")) == [
        "penalty_0.0/0.25.txt", "penalty_0.0/2.txt", "penalty_1/0.25.txt", "penalty_1/2.txt"]
    assert (tmp_path / "sk" / "penalty_0.0" / "0.25.txt").read_text() == "u1 a \nu2 c c \n"
    assert (tmp_path / "sk" / "penalty_1" / "2.txt").read_text() == "u1 b \nu2 c \n"
    assert float_list("5:7").names == ["5", "6", "7"]


def test_cli_needs_references_that_match(tmp_path: Path):
    words = tmp_path / "words.txt"
    SYMBOLS.save(words)
    write_lattices(f"ark:{tmp_path / 'lat.ark'}", two_choices(), "kaldi")
    (tmp_path / "text").write_text("other a\n")
    assert main(["tune", f"ark:{tmp_path / 'lat.ark'}", "--words", str(words),
                 "--ref", str(tmp_path / "text")]) == 1


def test_a_cyclic_lattice_is_skipped_and_counted_not_the_sweep(tmp_path: Path, capsys):
    words = tmp_path / "words.txt"
    SYMBOLS.save(words)
    a = SYMBOLS.ids["a"]
    cyclic = Lattice.from_arcs("u3", 3, [0, 1, 1], [1, 1, 2], [a, a, -1],
                               {"am": [0.0] * 3, "lm": [0.0] * 3})  # a self-loop on state 1
    write_lattices(f"ark:{tmp_path / 'lat.ark'}", two_choices() + [cyclic], "kaldi")
    (tmp_path / "text").write_text("u1 a\nu2 c\nu3 a\n")
    args = ["tune", f"ark:{tmp_path / 'lat.ark'}", "--words", str(words),
            "--ref", str(tmp_path / "text"), "--inv-acoustic-scale", "0.25,2",
            "--word-ins-penalty=0,1", "--json", str(tmp_path / "best.json")]
    assert main(args) == 1  # one of three failed, over --max-failures 0
    best = json.loads((tmp_path / "best.json").read_text())
    assert (best["lmwt"], best["word_ins_penalty"], best["errors"]) == (0.25, 1.0, 0)
    assert (best["lattices"], best["failed"]) == (2, 1)
    assert main(args + ["--max-failures", "0.5"]) == 0


def test_two_models_compared_at_the_same_weights(tmp_path: Path):
    """egs/utils/compare_at_weights.py on grids written by ``lmrescore tune --json``: model A
    is two_choices(); model B's LM prefers "a" in u1, so it never errs there. WER% per
    (LMWT, penalty) at (0.25, 0), (0.25, 1), (2, 0), (2, 1): A 50, 0, 100, 50; B 50, 0, 50, 0."""
    words = tmp_path / "words.txt"
    SYMBOLS.save(words)
    (tmp_path / "text").write_text("u1 a\nu2 c\n")
    for name, lats in (("a", two_choices()), ("b", two_choices(lm_a=0.0, lm_b=-2.0))):
        write_lattices(f"ark:{tmp_path / name}.ark", lats, "kaldi")
        assert main(["tune", f"ark:{tmp_path / name}.ark", "--words", str(words),
                     "--ref", str(tmp_path / "text"), "--inv-acoustic-scale", "0.25,2",
                     "--word-ins-penalty=0,1", "--json", str(tmp_path / f"{name}.json")]) == 0
    out = subprocess.run([sys.executable, str(COMPARE), "--a", str(tmp_path / "a.json"),
                          str(tmp_path / "b.json"), "--b", str(tmp_path / "b.json"),
                          "--lmwt", "0:2", "--wip", "0:1"],
                         capture_output=True, text=True, check=True).stdout
    # A is the mean of both grids: 50, 0, 75, 25
    assert "    2     0   75.00   50.00  -25.00" in out
    assert ("B - A over 4 points: mean -12.50, min -25.00, max +0.00; best of the whole grid: "
            "A 0.00, B 0.00") in out
    empty = subprocess.run([sys.executable, str(COMPARE), "--a", str(tmp_path / "a.json"),
                            "--b", str(tmp_path / "b.json"), "--lmwt", "5:9"],
                           capture_output=True, text=True)
    assert empty.returncode == 2 and "no (LMWT, penalty) point" in empty.stderr
