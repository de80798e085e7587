"""Kaldi-style pruned rescoring: exact with full-sentence histories; else the best path's state."""

from __future__ import annotations

import pytest
import torch

from lmrescore.lattice.lattice import Lattice
from lmrescore.rescoring.ngram_approx import ngram_approx_scores
from lattice_testing import enumerate_paths, random_batch
from test_rescore import BOS, EOS, model, path_log_prob, piece_table, word_table
from lmrescore.lattice.weights import Weights


def sharp_model(cell: str) -> torch.nn.Module:
    """The test model with larger weights, so that histories change its predictions clearly."""
    lm = model(cell, None)
    with torch.no_grad():
        for p in lm.parameters():
            p.mul_(4.0)
    return lm


def tokens_of(tab, labels: list[int]) -> list[int]:
    return [int(t) for lab in labels if lab > 0
            for t in tab.values[tab.splits[lab]:tab.splits[lab + 1]]]


@pytest.mark.parametrize("cell,table", [("lstm", "word"), ("gru", "piece"), ("rnn", "piece")])
def test_exact_when_histories_are_whole_sentences(cell: str, table: str) -> None:
    # random lattices of <= 7 states: paths of <= 6 arcs, <= 18 tokens; n - 1 = 19 > 18 + <s>
    tab = word_table() if table == "word" else piece_table()
    lm = sharp_model(cell)
    lat = random_batch(seed=4, num_lattices=5, max_states=7, max_extra_arcs=6)
    # chunk=3: a level's softmax rows span several output-layer calls
    ng = ngram_approx_scores(lm, lat, tab, 20, BOS, EOS, Weights(1.0), chunk=3)
    ex = ng.expansion.lattice
    for i in range(ex.num_lattices):
        for path in enumerate_paths(ex, i):
            toks = tokens_of(tab, [int(ex.label[a]) for a in path])
            got = float(ng.rnnlm[path].double().sum())
            assert got == pytest.approx(path_log_prob(lm, toks, None), abs=1e-4)


def merge_lattice(prefer_b: bool) -> Lattice:
    """<s> (a | b) c d </s>: with n = 2 the paths meet in one state after "c".

        0 -a-> 1 -c-> 3 -d-> 4 -(-1)-> 5
        0 -b-> 2 -c-> 3
    """
    am = [-5.0, -1.0, 0.0, 0.0, 0.0, 0.0] if prefer_b else [-1.0, -5.0, 0.0, 0.0, 0.0, 0.0]
    return Lattice.from_arcs("merge", 6, [0, 0, 1, 2, 3, 4], [1, 2, 3, 3, 4, 5],
                             [1, 2, 3, 3, 4, -1], {"am": am, "lm": [0.0] * 6})


@pytest.mark.parametrize("prefer_b", [True, False])
def test_merged_state_uses_the_best_incoming_path(prefer_b: bool) -> None:
    tab, lm = word_table(), sharp_model("lstm")
    ng = ngram_approx_scores(lm, merge_lattice(prefer_b), tab, 2, BOS, EOS, Weights(1.0))
    ex, exp = ng.expansion.lattice, ng.expansion
    assert ex.num_states == 6  # nothing split: a 1-word history is the same on both paths

    def logp(prefix: list[int], word: int) -> float:
        """log p(word | <s> prefix) under the exact recurrence, from whole-sentence scores."""
        with_word = tokens_of(tab, prefix + [word])
        return (path_log_prob(lm, with_word, None) - path_log_prob(lm, tokens_of(tab, prefix),
                                                                   None)
                - _eos(lm, tab, with_word) + _eos(lm, tab, tokens_of(tab, prefix)))

    best_first = [2, 3] if prefer_b else [1, 3]  # b c or a c: the best first-pass path into c
    rnnlm = {int(exp.arc_map[a]): float(ng.rnnlm[a]) for a in range(ex.num_arcs)}
    merged = int(ex.dst[(exp.arc_map == 2).nonzero()[0, 0]])
    assert int(exp.arc_map[ng.best_in[merged]]) == (3 if prefer_b else 2)
    assert rnnlm[0] == pytest.approx(logp([], 1), abs=1e-5)
    assert rnnlm[2] == pytest.approx(logp([1], 3), abs=1e-5)  # its own (only) history a
    assert rnnlm[3] == pytest.approx(logp([2], 3), abs=1e-5)
    assert rnnlm[4] == pytest.approx(logp(best_first, 4), abs=1e-5)
    whole = tokens_of(tab, best_first + [4])
    assert rnnlm[5] == pytest.approx(_eos(lm, tab, whole), abs=1e-5)
    other = [1, 3] if prefer_b else [2, 3]
    assert abs(rnnlm[4] - logp(other, 4)) > 0.01  # the other history would differ


def _eos(lm, tab, toks: list[int]) -> float:
    """log p(</s> | <s> toks) under the exact recurrence."""
    inputs = torch.tensor([[BOS] + toks])
    with torch.no_grad():
        return float(lm.log_probs(inputs, order=None)[0, -1, EOS])


@pytest.mark.parametrize("order,table", [(2, "word"), (3, "piece")])
def test_every_arc_scores_from_the_best_first_pass_prefix(order: int, table: str) -> None:
    # brute force: each expanded state's RNN state is that of the best first-pass path into it
    tab = word_table() if table == "word" else piece_table()
    lm = sharp_model("lstm")
    lat = random_batch(seed=9, num_lattices=4, max_states=7, max_extra_arcs=6)
    scale = 0.5
    ng = ngram_approx_scores(lm, lat, tab, order, BOS, EOS, Weights(scale))
    ex = ng.expansion.lattice
    first_pass = Weights(scale, 1.0).arc_scores(ex)
    sources = torch.zeros(ex.num_states, ex.num_states, dtype=torch.bool)
    sources[ex.dst, ex.src] = True
    assert (sources.sum(1) > 1).any()  # some states merge paths from different sources
    for i in range(ex.num_lattices):
        best_prefix: dict[int, tuple[float, list[int]]] = {}
        for path in enumerate_paths(ex, i):
            for j in range(1, len(path)):
                s, score = int(ex.dst[path[j - 1]]), float(first_pass[path[:j]].sum())
                if s not in best_prefix or score > best_prefix[s][0] + 1e-9:
                    best_prefix[s] = (score, path[:j])
        for s, (_, prefix) in best_prefix.items():
            assert int(ng.best_in[s]) == prefix[-1]
        start = int(ex.start_states[i])
        for a in range(int(ex.arc_splits[i]), int(ex.arc_splits[i + 1])):
            src, label = int(ex.src[a]), int(ex.label[a])
            history = [] if src == start else tokens_of(
                tab, [int(ex.label[b]) for b in best_prefix[src][1]])
            if label == -1:
                want = _eos(lm, tab, history)
            else:
                with_word = history + tokens_of(tab, [label])
                want = (path_log_prob(lm, with_word, None) - _eos(lm, tab, with_word)
                        - path_log_prob(lm, history, None) + _eos(lm, tab, history))
            assert float(ng.rnnlm[a]) == pytest.approx(want, abs=1e-4)
