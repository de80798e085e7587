"""egs/utils/make_results.py on a tiny fake exp dir: the WER table's 95% interval column,
from the hypotheses the recipe writes (score_*/hyp and the lattices' hyp_first_pass)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lmrescore.rescoring.bootstrap import (draw_indices, utterance_errors, utterance_words,
                                           wer_interval)
from lmrescore.rescoring.metrics import read_text

MAKE_RESULTS = Path(__file__).parent.parent / "egs" / "utils" / "make_results.py"


def write_json(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def fake_recipe(root: Path) -> None:
    """20 test sentences of 4 words; the first pass errs once in every one (25%); system
    score_fp_k8 of model m errs once in u0-u4 only; dev and training outputs are stubs."""
    test, dev, sdir = root / "data/test", root / "data/dev", root / "exp/m/score_fp_k8"
    test.mkdir(parents=True)
    (test / "text").write_text("".join(f"u{i} a b c d\n" for i in range(20)))
    (test / "hyp_first_pass").write_text("".join(f"u{i} a b c x\n" for i in range(20)))
    write_json(test / "wer_first_pass.json", {"wer": 25.0, "errors": 20, "ref_words": 80})
    write_json(test / "info.json", {"scored": 20, "ref_words": 80, "one_best_errors": 40,
                                    "oracle_errors": 2, "arcs": 200, "lattices": 20})
    write_json(dev / "wer_first_pass.json", {"wer": 30.0, "errors": 3, "ref_words": 10})
    write_json(dev / "info.json", {"scored": 2})
    write_json(root / "exp/m/results.json", {"order": 8, "method": "afp", "epochs": 1,
                                             "train_seconds": 60, "valid_ppl": 100.0})
    (root / "exp/m/ppl_test.jsonl").write_text('{"order": 8, "ppl": 90.0}\n'
                                               '{"order": null, "ppl": 89.0}\n')
    write_json(sdir / "tune.json", {"wer": 20.0, "lmwt": 10, "word_ins_penalty": 1})
    write_json(sdir / "wer.json", {"wer": 6.25, "errors": 5, "ref_words": 80})
    write_json(sdir / "test/summary.1.json", {"seconds": 3.0, "failed": 0})
    (sdir / "test/log").mkdir()
    (sdir / "test/log/score.1.log").write_text("# lmrescore score --model m\n")
    (sdir / "hyp").write_text("".join(f"u{i} a b c {'x' if i < 5 else 'd'}\n"
                                      for i in range(20)))
    (sdir / ".done").touch()


def test_wer_table_has_each_systems_test_interval(tmp_path: Path):
    fake_recipe(tmp_path)
    subprocess.run([sys.executable, str(MAKE_RESULTS), "--exp-dir", "exp", "--lattice-dir",
                    "data/test", "--dev-dir", "data/dev", "--models", "m", "--command",
                    "./run.sh", "--out", "RESULTS.md"], cwd=tmp_path, check=True)
    table = (tmp_path / "RESULTS.md").read_text()
    assert ("| system | method | dev WER % | LMWT / WIP | test WER % | 95% interval "
            "| errors / words | not rescored | seconds |") in table
    # every sentence has one error in 4: each draw's WER is 25%
    assert "| 30.00 | - | 25.00 | [25.00, 25.00] | 20 / 80 | | |" in table
    refs = read_text(tmp_path / "data/test/text")
    i = wer_interval(utterance_errors(refs, read_text(tmp_path / "exp/m/score_fp_k8/hyp")),
                     utterance_words(refs), draw_indices(20, 10000, seed=0))
    assert 0 < i.low < 6.25 < i.high
    assert (f"| m (afp) | fixed-point K=8 | 20.00 | 10 / 1 | 6.25 | [{i.low:.2f}, {i.high:.2f}] "
            "| 5 / 80 | 0 | 3 |") in table
    assert "| lattice oracle | - | | - | 2.50 | | 2 / 80 | | |" in table
