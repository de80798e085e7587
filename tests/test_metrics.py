import pytest

from lattice_testing import random_batch
from lmrescore.lattice.lattice import Lattice
from lmrescore.rescoring.metrics import WordErrors, corpus_word_errors, oracle_word_errors, word_errors


def test_word_errors():
    # a b c d vs a x c e f: sub b->x, sub d->e, ins f
    e = word_errors("a b c d".split(), "a x c e f".split())
    assert (e.ref_words, e.ins, e.dels, e.subs, e.errors) == (4, 1, 0, 2, 3)
    assert e.wer == pytest.approx(75.0)
    assert str(e) == "%WER 75.00 [ 3 / 4, 1 ins, 0 del, 2 sub ]"


def test_corpus_sums():
    total = corpus_word_errors([["a", "b"], ["c"], []], [["a"], ["c", "d"], []])
    assert total == WordErrors(ref_words=3, ins=1, dels=1, subs=0)
    assert WordErrors().wer == 0.0 and WordErrors(ins=1).wer == float("inf")


def test_oracle_word_errors():
    lat = Lattice.from_arcs("u", 4, [0, 1, 2, 0], [1, 2, 3, 2], [1, 2, -1, 3],
                            {"am": [0.0] * 4, "lm": [0.0] * 4})  # paths "1 2" and "3"
    total, oracle = oracle_word_errors(Lattice.cat([lat, lat]), [[1, 2, 5], [3]])
    assert total == WordErrors(ref_words=4, ins=0, dels=1, subs=0)
    assert oracle.errors.tolist() == [1, 0]


def test_oracle_split_matches_oracle_errors():
    lat = random_batch(seed=9, num_lattices=10)
    refs = [[1, 2, 3], [4], [], [5, 5, 1, 2]] * 2 + [[2], [3, 1]]
    total, oracle = oracle_word_errors(lat, refs)
    assert total.errors == int(oracle.errors.sum())


def test_a_reference_word_outside_words_txt_is_an_error_against_any_word():
    """As Kaldi's compute-wer compares strings: "zz" is not <unk>, nor any other word."""
    from lmrescore.rescoring.metrics import reference_ids
    from lmrescore.vocab import Vocab

    symbols = Vocab(("<eps>", "a", "<unk>"))
    refs, oov = reference_ids({"u": ["a", "zz"]}, symbols)
    assert refs == {"u": [1, 3]} and oov == 1  # 3 = len(symbols): no lattice label
    assert word_errors(refs["u"], [1, 2]).subs == 1  # the hypothesis <unk> does not match "zz"
    no_unk = Vocab(("<eps>", "a", "b"))  # no <unk> at all: still ids, no KeyError
    assert reference_ids({"u": ["zz", "a"]}, no_unk) == ({"u": [3, 1]}, 1)
