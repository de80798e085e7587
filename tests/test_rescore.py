"""Exactness: scores on the history-expanded lattice equal independent per-path scores."""

from __future__ import annotations

import math

import pytest
import torch

from lmrescore.rescoring.expand import TokenTable, expand
from lmrescore.lattice.lattice import Lattice
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.rescoring.exact import arc_log_probs, history_states
from lmrescore.lattice.shortest_path import best_path
from lattice_testing import enumerate_paths, random_batch

VOCAB = 9  # <eps> <s> </s> <unk> + 5 words
BOS, EOS, UNK = 1, 2, 3


def word_table() -> TokenTable:
    """Lattice labels 1..5 -> LM tokens 4..8, except label 5 -> <unk> (out of vocabulary)."""
    tokens = [0, 4, 5, 6, 7, UNK]
    return TokenTable(torch.tensor(tokens[1:]), torch.tensor([0, 0, 1, 2, 3, 4, 5]))


def piece_table() -> TokenTable:
    """Labels as 1-3 subword tokens each: 1->[4], 2->[5,6], 3->[7,4,8], 4->[8], 5->[6,6]."""
    rows = [[], [4], [5, 6], [7, 4, 8], [8], [6, 6]]
    splits = torch.tensor([0] + [len(r) for r in rows]).cumsum(0)
    return TokenTable(torch.tensor([t for r in rows for t in r]), splits)


def model(cell: str, order: int) -> RNNLM:
    torch.manual_seed(3)
    m = RNNLM(ModelConfig(cell=cell, vocab_size=VOCAB, hidden_dim=6, num_layers=2, order=order))
    return m.double().eval()


@torch.no_grad()
def path_log_prob(lm: RNNLM, tokens: list[int], order: int) -> float:
    """log p(tokens </s> | <s>) under the order-K model, computed on the whole sentence."""
    inputs = torch.tensor([[BOS] + tokens])
    targets = torch.tensor([tokens + [EOS]])
    logp = lm.log_probs(inputs, order=order)
    return float(logp[0].gather(1, targets.T).sum())


@pytest.mark.parametrize("cell,order,table", [("lstm", 1, "word"), ("lstm", 2, "word"),
                                              ("gru", 3, "word"), ("rnn", 2, "piece"),
                                              ("lstm", 4, "piece")])
def test_expanded_scores_equal_per_path_scores(cell: str, order: int, table: str) -> None:
    tab = word_table() if table == "word" else piece_table()
    lm = model(cell, order)
    lat = random_batch(seed=order, num_lattices=6, max_states=7, max_extra_arcs=6)
    exp = expand(lat, tab, order, BOS)
    # chunk=4: the distinct histories span several output-layer calls
    scores = arc_log_probs(lm.float(), exp, tab, BOS, EOS, chunk=4)[0].double()
    lm.double()
    ex = exp.lattice
    for i in range(lat.num_lattices):
        original = {tuple(p) for p in map(tuple, enumerate_paths(lat, i))}
        expanded = {}
        for path in enumerate_paths(ex, i):
            key = tuple(int(exp.arc_map[a]) for a in path)
            assert key not in expanded  # one expanded path per original path
            expanded[key] = float(scores[path].sum())
        assert set(expanded) == original
        for key, got in expanded.items():
            labels = [int(lat.label[a]) for a in key if int(lat.label[a]) > 0]
            tokens = [int(t) for lab in labels
                      for t in tab.values[tab.splits[lab]:tab.splits[lab + 1]]]
            assert got == pytest.approx(path_log_prob(lm, tokens, order), abs=1e-4)


def test_each_state_has_one_history_and_best_path_is_exhaustive_best() -> None:
    tab, order = word_table(), 2
    lm = model("lstm", order).float()
    lat = random_batch(seed=11, num_lattices=5, max_states=8, max_extra_arcs=8)
    exp = expand(lat, tab, order, BOS)
    ex = exp.lattice.with_scores(lm=arc_log_probs(lm, exp, tab, BOS, EOS)[0])
    # every path into a state ends with that state's history
    for i in range(ex.num_lattices):
        for path in enumerate_paths(ex, i):
            toks = [BOS] + [int(tab.values[int(ex.label[a]) - 1]) for a in path
                            if int(ex.label[a]) > 0]
            state = int(ex.src[path[-1]])
            want = ([-1] * order + toks)[-order:]
            assert exp.history[state].tolist() == want
    best = best_path(ex)
    for i in range(ex.num_lattices):
        totals = [float(ex.scores["am"][p].double().sum() + ex.scores["lm"][p].double().sum())
                  for p in enumerate_paths(ex, i)]
        assert float(best.score[i]) == pytest.approx(max(totals), abs=1e-5)


def test_expansion_past_the_cap_drops_only_that_lattice() -> None:
    tab = word_table()
    lat = random_batch(seed=5, num_lattices=4, max_states=8, max_extra_arcs=8)
    sizes = [expand(lat[i], tab, 3, BOS).lattice.num_arcs for i in range(4)]
    cap = sorted(sizes)[1]  # the two largest lattices pass it
    exp = expand(lat, tab, 3, BOS, max_arcs=cap)
    too_big = {i for i, n in enumerate(sizes) if n > cap}
    assert set(exp.failed) == too_big and too_big
    assert exp.kept == [i for i in range(4) if i not in too_big]
    assert all("--max-arcs" in msg and lat.utt_ids[i] in msg for i, msg in exp.failed.items())
    for j, i in enumerate(exp.kept):
        alone = expand(lat[i], tab, 3, BOS).lattice
        assert exp.lattice[j].num_arcs == alone.num_arcs


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_trie_states_equal_k_sweeps_over_each_window(cell: str) -> None:
    """history_states (down the prefix trie) == K Jacobi sweeps over every K-token window."""
    order = 4
    lm = model(cell, order)
    g = torch.Generator().manual_seed(0)
    words = torch.randint(4, VOCAB, (40, order), generator=g)
    starts_at = torch.randint(0, order + 2, (40,), generator=g)  # <s> position (>= K: none)
    hist = words.clone()
    for i, s in enumerate(starts_at.tolist()):
        if s < order:
            hist[i, s] = BOS
            hist[i, :s] = -1
    hist = torch.cat([hist, hist[:5]])  # repeated histories share every trie node
    sweeps = lm.hidden(hist.clamp(min=0), hist == BOS, order=order)[0][:, -1]
    state, which = history_states(lm, hist, BOS)
    top = lm.top(state)
    assert top.shape[0] == torch.unique(hist, dim=0).shape[0]  # each distinct history once
    torch.testing.assert_close(top[which], sweeps, rtol=0, atol=1e-12)


def test_default_unk_penalty_is_ln_of_oov_words_in_the_symbol_table() -> None:
    from lmrescore.lattice.weights import Weights
    from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
    from lmrescore.lm.units import WordUnits
    from lmrescore.vocab import Vocab

    symbols = Vocab.from_words(["a", "b", "c", "d", "e"])  # ids 4..8
    units = WordUnits(Vocab.from_words(["a", "b"]))  # c, d, e are out of vocabulary
    lm = RNNLM(ModelConfig(cell="rnn", vocab_size=len(units.vocab), hidden_dim=4, order=2))
    rescorer = LatticeRescorer(lm, units, symbols, RescoreOptions())
    assert rescorer.unk_penalty == pytest.approx(math.log(3))
    lat = Lattice.from_arcs("u1", 3, [0, 0, 1], [1, 1, 2], [6, 4, -1],
                            {"am": [0.0] * 3, "lm": [1.0] * 3})  # c (OOV), a
    rnnlm = torch.tensor([-2.0, -3.0, -1.0], dtype=torch.float64)
    fixed = LatticeRescorer(lm, units, symbols,
                            RescoreOptions(unk_penalty=3.0, weights=Weights(lm_scale=0.5),
                                           first_pass_scale=2.0))
    # first_pass_scale * lm + lm_scale * (rnnlm - unk_penalty * is_oov)
    torch.testing.assert_close(fixed.lms.combined(lat, {"rnnlm": rnnlm}, 2.0),
                               torch.tensor([2 + 0.5 * (-2 - 3), 2 - 1.5, 2 - 0.5],
                                            dtype=torch.float64))
