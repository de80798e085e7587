"""Kaldi's scoring-dir texts (lmrescore.rescoring.kaldi_scoring) on hand-computed examples: the
one of utils/scoring/wer_*_details.pl's documentation, with score_kaldi.sh's '***' for <eps>."""

from __future__ import annotations

import pytest

from lmrescore.errors import InputError
from lmrescore.rescoring import kaldi_scoring as ks
from lmrescore.rescoring.metrics import kaldi_percent

# ref A B C D E, hyp A A B D X: A correct, A inserted, B correct, C deleted, D correct, E -> X
REFS = {"UTT-A": "word-A word-B word-C word-D word-E".split()}
HYPS = {"UTT-A": "word-A word-A word-B word-D word-X".split()}


def test_per_utt_centres_each_column_as_wer_per_utt_details_pl():
    [(utt, pairs)] = ks.align(REFS, HYPS)
    # each column is as wide as its longest cell (6); '***' gets the odd space on the left
    assert ks.per_utt(utt, pairs) == (
        "UTT-A ref  word-A    ***   word-B  word-C  word-D  word-E\n"
        "UTT-A hyp  word-A  word-A  word-B    ***   word-D  word-X\n"
        "UTT-A op      C       I       C       D       C       S  \n"
        "UTT-A #csid 3 1 1 1\n")
    # an empty reference and hypothesis: align-text writes 'utt', the rows are empty
    assert ks.per_utt("u", []) == "u ref  \nu hyp  \nu op   \nu #csid 0 0 0 0\n"


def test_per_spk_is_the_documented_table():
    aligned = ks.align(REFS, HYPS)
    row = "          1          5"
    assert ks.per_spk(aligned, {"UTT-A": "A"}) == (
        "SPEAKER         id       #SENT      #WORD       Corr        Sub        Ins        Del"
        "        Err      S.Err\n"
        f"A               raw{row}          3          1          1          1          3"
        "          1\n"
        f"A               sys{row}      60.00      20.00      20.00      20.00      60.00"
        "     100.00\n"
        f"SUM             raw{row}          3          1          1          1          3"
        "          1\n"
        f"SUM             sys{row}      60.00      20.00      20.00      20.00      60.00"
        "     100.00\n")


def test_per_spk_sums_speakers_widens_for_long_names_and_skips_empty_percentages():
    refs = {"u1": ["a", "b"], "u2": ["a"], "u3": []}
    hyps = {"u1": ["a", "b"], "u2": ["b"], "u3": []}
    table = ks.per_spk(ks.align(refs, hyps), {"u1": "s", "u2": "s", "u3": "speaker-of-twenty"})
    lines = table.splitlines()
    assert lines[0].startswith("SPEAKER           id  ")  # 17 wide: the longest speaker
    assert lines[1].split() == ["s", "raw", "2", "3", "2", "1", "0", "0", "1", "1"]
    assert lines[2].split() == ["s", "sys", "2", "3", "66.67", "33.33", "0.00", "0.00",
                                "33.33", "50.00"]
    # u3 has no reference word: a raw line only, as Perl's "unless $w == 0"
    assert lines[3].split() == ["speaker-of-twenty", "raw"] + ["1", "0"] + ["0"] * 6
    assert [line.split()[:2] for line in lines[4:]] == [["SUM", "raw"], ["SUM", "sys"]]


def test_ops_counts_pairs_sorted_as_score_kaldi_sh_sorts_them():
    assert ks.ops(ks.align(REFS, HYPS)) == (
        "correct       word-A    word-A    1\n"
        "correct       word-B    word-B    1\n"
        "correct       word-D    word-D    1\n"
        "deletion      word-C       ***    1\n"
        "insertion        ***    word-A    1\n"
        "substitution  word-E    word-X    1\n")
    refs = {"u1": ["b", "a", "a"], "u2": ["a", "an-extremely-long-word"]}
    hyps = {"u1": ["b", "a", "a"], "u2": ["a", "x"]}
    # sort -k 4,4rn: a (3 times) before b; words wider than 16 are not cut, the column is 16
    assert ks.ops(ks.align(refs, hyps)) == (
        "correct                      a                   a    3\n"
        "correct                      b                   b    1\n"
        "substitution  an-extremely-long-word                   x    1\n")


def test_compute_wer_report_is_compute_wers_three_lines():
    refs = {"u1": ["a", "b", "c"], "u2": ["d"], "u3": ["e", "f"]}
    errors, text = ks.compute_wer_report(refs, {"u1": ["a", "x"], "u2": ["d"], "other": ["z"]})
    # --mode=present: u3 has no hypothesis, so it is not scored; "other" has no reference
    assert text == ("%WER 50.00 [ 2 / 4, 0 ins, 1 del, 1 sub ] [PARTIAL]\n"
                    "%SER 50.00 [ 1 / 2 ]\n"
                    "Scored 2 sentences, 1 not present in hyp.\n")
    assert (errors.errors, errors.ref_words) == (2, 4)
    _, text = ks.compute_wer_report({"u": ["a", "b", "c"]}, {"u": ["a", "b", "c", "d"]})
    assert text.splitlines() == ["%WER 33.33 [ 1 / 3, 1 ins, 0 del, 0 sub ]",
                                 "%SER 100.00 [ 1 / 1 ]",
                                 "Scored 1 sentences, 0 not present in hyp."]


def test_percentages_round_as_a_32_bit_float():
    # 1/20000 is 0.005: 0.01 in double precision, but compute-wer's float is 0.004999...
    assert kaldi_percent(1, 20000) == "0.00"
    assert kaldi_percent(2, 3) == "66.67"


def test_best_wer_line_is_the_first_lowest_with_its_file():
    reports = [("d/wer_7_0.0", "%WER 20.00 [ 2 / 10, 0 ins, 0 del, 2 sub ]\n%SER 1\n"),
               ("d/wer_8_0.0", "%WER 10.00 [ 1 / 10, 0 ins, 0 del, 1 sub ] [PARTIAL]\n"),
               ("d/wer_7_0.5", "%WER 10.00 [ 1 / 10, 1 ins, 0 del, 0 sub ]\n")]
    assert ks.best_wer_line(reports) == (
        "%WER 10.00 [ 1 / 10, 0 ins, 0 del, 1 sub ] [PARTIAL] d/wer_8_0.0\n")
    with pytest.raises(InputError):
        ks.best_wer_line([("d/wer_7_0.0", "")])


def test_hyp_text_is_int2sym_pl_lines():
    assert ks.hyp_text({"u1": ["a", "b"], "u2": []}) == "u1 a b \nu2 \n"


def test_read_utt2spk_names_a_bad_line(tmp_path):
    (tmp_path / "utt2spk").write_text("u1 s1\nu2\n")
    with pytest.raises(InputError, match="utt2spk:2"):
        ks.read_utt2spk(str(tmp_path / "utt2spk"))
