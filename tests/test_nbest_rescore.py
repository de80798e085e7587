"""n-best rescoring: with N >= the number of paths it finds the exhaustive best path."""

from __future__ import annotations

import pytest
import torch

from lmrescore.rescoring.nbest import nbest_scores, paths_lattice
from lmrescore.lattice.nbest import nbest
from lmrescore.lattice.weights import Weights
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.lm.units import WordUnits
from lmrescore.vocab import Vocab
from lattice_testing import enumerate_paths, path_words, random_batch
from test_rescore import BOS, EOS, model, path_log_prob, piece_table, word_table

# lattice labels 1..4 are the model's words 4..7 (word_table); label 5 "zz" is out of vocabulary
SYMBOLS = Vocab(("<eps>", "a", "b", "c", "d", "zz"))
LM_VOCAB = Vocab(("<eps>", "<s>", "</s>", "<unk>", "a", "b", "c", "d", "e"))


def tokens_of(tab, labels: list[int]) -> list[int]:
    return [int(t) for lab in labels for t in tab.values[tab.splits[lab]:tab.splits[lab + 1]]]


def test_paths_lattice_has_exactly_the_n_best_paths() -> None:
    lat = random_batch(seed=2, num_lattices=5, max_states=7, max_extra_arcs=6)
    nb = nbest(lat, 4, Weights(0.5))
    pl, arc_map = paths_lattice(lat, nb)
    for i in range(lat.num_lattices):
        got = sorted(tuple(int(arc_map[a]) for a in p) for p in enumerate_paths(pl, i))
        want = sorted(tuple(nb.arcs[nb.arc_splits[p]:nb.arc_splits[p + 1]].tolist())
                      for p in range(int(nb.path_splits[i]), int(nb.path_splits[i + 1])))
        assert got == want
    assert torch.equal(pl.label, lat.label[arc_map])


@pytest.mark.parametrize("order,table", [(None, "word"), (2, "word"), (None, "piece"),
                                         (3, "piece")])
def test_path_scores_equal_sentence_scores(order: int | None, table: str) -> None:
    tab = word_table() if table == "word" else piece_table()
    lm = model("lstm", order)
    lat = random_batch(seed=7, num_lattices=6, max_states=7, max_extra_arcs=6)
    ns = nbest_scores(lm, lat, tab, 5, BOS, EOS, order, Weights(0.5), chunk=16)
    pl = ns.lattice
    for i in range(pl.num_lattices):
        for path in enumerate_paths(pl, i):
            toks = tokens_of(tab, path_words(pl, path))
            assert float(ns.rnnlm[path].double().sum()) == pytest.approx(
                path_log_prob(lm, toks, order), abs=1e-4)


@pytest.mark.parametrize("order", [None, 2])
def test_all_paths_give_the_exhaustive_best(order: int | None) -> None:
    lm = model("gru", order).float()
    lat = random_batch(seed=13, num_lattices=6, max_states=7, max_extra_arcs=6)
    lat.symbols = SYMBOLS
    counts = [len(enumerate_paths(lat, i)) for i in range(lat.num_lattices)]
    opts = RescoreOptions(method="nbest", num_paths=max(counts), weights=Weights(0.5, 0.8, 0.7),
                          first_pass_scale=0.3, unk_penalty=2.0, order=order, determinize=False)  # every path
    result = LatticeRescorer(lm, WordUnits(LM_VOCAB), SYMBOLS, opts).rescore(lat)
    assert result.counts["paths"] == sum(counts)
    lm.double()
    chosen = result.best.word_lists()
    for i in range(lat.num_lattices):
        totals = {}
        for path in enumerate_paths(lat, i):
            words = path_words(lat, path)
            rnnlm = path_log_prob(lm, tokens_of(word_table(), words), order)
            total = (0.5 * float(lat.scores["am"][path].double().sum())
                     + 0.3 * float(lat.scores["lm"][path].double().sum())
                     + 0.8 * (rnnlm - 2.0 * words.count(5)) - 0.7 * len(words))
            totals[tuple(words)] = max(total, totals.get(tuple(words), -float("inf")))
        best = max(totals.values())
        assert float(result.best.score[i]) == pytest.approx(best, abs=1e-4)
        assert totals[tuple(chosen[i])] == pytest.approx(best, abs=1e-4)


def test_one_path_keeps_the_first_pass_best() -> None:
    lm = model("lstm", 2).float()
    lat = random_batch(seed=21, num_lattices=5, max_states=8, max_extra_arcs=8)
    opts = RescoreOptions(method="nbest", num_paths=1, weights=Weights(0.5))
    result = LatticeRescorer(lm, WordUnits(LM_VOCAB), SYMBOLS, opts).rescore(lat)
    first_pass = nbest(lat, 1, Weights(0.5))
    assert result.best.word_lists() == [p[0] for p in first_pass.word_lists()]
