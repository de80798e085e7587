"""The coarse pass (``prune_order``): it only removes paths; the survivors keep exact scores."""

from __future__ import annotations

import pytest

from lattice_testing import random_batch
from lmrescore.errors import InputError
from lmrescore.lattice.weights import Weights
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.lm.units import WordUnits
from test_determinize import best_per_words
from test_nbest_rescore import LM_VOCAB, SYMBOLS
from test_rescore import model

WEIGHTS = Weights(acoustic_scale=0.5, word_ins_penalty=0.3)


def rescore(prune_beam: float | None, order: int = 3, method: str = "fixed-point"):
    lat = random_batch(seed=11, num_lattices=8, max_states=9, max_extra_arcs=12)
    opts = RescoreOptions(method=method, order=order, num_paths=1000,
                          prune_order=None if prune_beam is None else 2,
                          prune_beam=prune_beam or 0.0, weights=WEIGHTS, unk_penalty=2.0)
    return LatticeRescorer(model("lstm", order), WordUnits(LM_VOCAB), SYMBOLS,
                           opts).rescore(lat)


def sequences(result) -> list[dict]:
    """Per lattice: word sequence -> (score, am, lm) of the rescored lattice."""
    lat = result.lattice
    scales = {"acoustic_scale": WEIGHTS.acoustic_scale,
              "word_ins_penalty": WEIGHTS.word_ins_penalty}
    return [best_per_words(lat, i, **scales) for i in range(lat.num_lattices)]


@pytest.mark.parametrize("method", ["fixed-point", "ngram-approx", "nbest"])
def test_a_wide_coarse_beam_changes_nothing(method: str) -> None:
    plain, coarse = rescore(None, method=method), rescore(1e9, method=method)
    assert coarse.lattice.utt_ids == plain.lattice.utt_ids
    for got, want in zip(sequences(coarse), sequences(plain)):
        assert got.keys() == want.keys()
        for words in want:
            assert got[words] == pytest.approx(want[words], abs=1e-6)
    assert coarse.best.word_lists() == plain.best.word_lists()


def test_a_tight_coarse_beam_keeps_the_order_2_best_with_exact_order_3_scores() -> None:
    order2 = rescore(None, order=2)  # the coarse pass's own scores, on every path
    coarse, plain = rescore(0.0), rescore(None)
    for i, (got, full) in enumerate(zip(sequences(coarse), sequences(plain))):
        assert list(got) == [tuple(order2.best.word_lists()[i])]  # one survivor: order 2's best
        words = next(iter(got))
        assert got[words] == pytest.approx(full[words], abs=1e-6)  # scored exactly at order 3
    assert coarse.arcs_pruned < plain.arcs_pruned
    # the coarse pass scored the whole lattice at order 2, as order2 did; plain had none
    assert coarse.counts["coarse_histories"] == order2.counts["histories"] > 0
    assert "coarse_histories" not in plain.counts


def test_prune_order_must_be_positive() -> None:
    with pytest.raises(InputError, match="--prune-order"):
        RescoreOptions(prune_order=0)


def test_lattices_are_pruned_before_expansion() -> None:
    plain, coarse = rescore(None, order=4), rescore(0.5, order=4)
    assert coarse.counts["histories"] < plain.counts["histories"]
