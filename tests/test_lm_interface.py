"""Any ``LanguageModel`` plugs into every rescoring method: two toy models defined only here.

A unigram model (the state carries nothing) and a bigram model (the state is the last token,
one-hot) implement the protocol in this file alone; both are exact at order 1, so every method
(fixed-point at K = 1, ngram-approx with n = 2, nbest over all paths) must give each arc exactly
the model's log-probability of its word given the word before, and the same 1-best.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from lattice_testing import enumerate_paths
from lmrescore.formats import read_lattice_batches
from lmrescore.lattice.lattice import FINAL_LABEL, Lattice
from lmrescore.lm.interface import BLOCK_ROWS, LanguageModel
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.lm.units import WordUnits
from lmrescore.rescoring.expand import TokenTable
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.vocab import Vocab

FIXTURES = Path(__file__).parent / "fixtures"
BEAM = 2.0  # first-pass beam: each fixture lattice keeps fewer than NUM_PATHS word sequences
NUM_PATHS = 2000


class UnigramLM:
    """log p(token), whatever came before: the state is one unused zero."""

    order = 1
    device = torch.device("cpu")

    def __init__(self, log_probs: Tensor) -> None:
        self.log_probs = log_probs  # (V,) float32, normalised
        self.vocab_size = log_probs.shape[0]

    def start(self, n: int) -> Tensor:
        return torch.zeros(n, 1)

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        return torch.zeros(*tokens.shape, 1)

    def logits(self, state: Tensor) -> Tensor:
        return self.log_probs.expand(*state.shape[:-1], -1)

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        return self.log_probs[tokens]

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        final = None if order is not None else self.start(inputs.shape[0])
        return torch.where(mask, self.log_probs[targets], 0.0), final


class BigramLM:
    """log p(token | previous token) from a table; the state is the previous token, one-hot
    (the zero reset state is only ever stepped by ``<s>``)."""

    order = 1
    device = torch.device("cpu")

    def __init__(self, table: Tensor) -> None:
        self.table = table  # (V, V) float32 log-probabilities, rows normalised
        self.vocab_size = table.shape[0]

    def start(self, n: int) -> Tensor:
        return torch.zeros(n, self.vocab_size)

    def step(self, state: Tensor, tokens: Tensor) -> Tensor:
        return torch.nn.functional.one_hot(tokens, self.vocab_size).float()

    def logits(self, state: Tensor) -> Tensor:
        return self.table[state.argmax(-1)]

    def token_log_probs(self, state: Tensor, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        return self.table[state[rows].argmax(-1), tokens]

    def sequence_log_probs(self, inputs: Tensor, targets: Tensor, mask: Tensor,
                           starts: Tensor | None, order: int | None,
                           state: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        final = None if order is not None else self.step(inputs[:, -1, None], inputs[:, -1])
        return torch.where(mask, self.table[inputs, targets], 0.0), final


def fixture_rescorer_inputs() -> tuple[Lattice, Vocab, WordUnits]:
    """The PocketSphinx fixture lattices, and word units over every third word left out."""
    symbols = Vocab.load(FIXTURES / "words.txt")
    lat = next(iter(read_lattice_batches(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", symbols)))[0]
    units = WordUnits(Vocab.from_words(symbols.words[4::3] + symbols.words[5::3]))
    return lat, symbols, units


def want_arc_scores(lat: Lattice, table: TokenTable, log_p: Tensor, bos: int,
                    eos: int) -> Tensor:
    """(A,) log_p[previous token, token] of each arc's word (``</s>`` into the final state, 0
    on arcs without a token), from every path; asserts that all paths through an arc agree."""
    label = lat.label
    token = torch.where(label == FINAL_LABEL, eos, table.token(label.clamp(min=0), 0)).tolist()
    log_p = log_p.tolist()
    want: list[float | None] = [None] * lat.num_arcs
    for i in range(lat.num_lattices):
        for path in enumerate_paths(lat, i):
            prev = bos
            for a in path:
                tok = token[a]
                score = 0.0 if tok < 0 else log_p[prev][tok]
                assert want[a] in (None, score)
                want[a] = score
                prev = prev if tok < 0 else tok
    return torch.tensor(want, dtype=torch.float32)


def test_models_implement_the_protocol() -> None:
    lm = RNNLM(ModelConfig(cell="gru", vocab_size=7, hidden_dim=4, num_layers=2, order=3))
    assert isinstance(lm, LanguageModel)
    assert (lm.vocab_size, lm.order, lm.state_size) == (7, 3, 8)
    assert isinstance(UnigramLM(torch.zeros(3)), LanguageModel)
    assert not isinstance(object(), LanguageModel)


@torch.no_grad()
def test_rnnlm_methods_agree() -> None:
    """step from start, token_log_probs, logits and sequence_log_probs: one model."""
    torch.manual_seed(0)
    lm = RNNLM(ModelConfig(cell="lstm", vocab_size=9, hidden_dim=5, num_layers=2)).double()
    inputs = torch.randint(0, 9, (3, 6))
    targets = torch.randint(0, 9, (3, 6))
    mask = torch.rand(3, 6) < 0.7
    seq, final = lm.sequence_log_probs(inputs, targets, mask, None, None)
    state, steps = lm.start(3), []
    for t in range(6):
        state = lm.step(state, inputs[:, t])
        steps.append(state)
    states = torch.stack(steps, 1).flatten(0, 1)  # (3 * 6, S), row b * 6 + t
    rows = mask.flatten().nonzero().squeeze(1)
    queried = lm.token_log_probs(states, rows, targets.flatten()[rows], block_rows=4)
    torch.testing.assert_close(final, state, rtol=0, atol=1e-12)
    torch.testing.assert_close(queried, seq.flatten()[rows], rtol=0, atol=1e-6)
    assert torch.all(seq[~mask] == 0)
    full = torch.log_softmax(lm.logits(states), -1)[rows, targets.flatten()[rows]]
    torch.testing.assert_close(queried.double(), full, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["unigram", "bigram"])
def test_toy_lm_rescores_exactly_by_every_method(kind: str) -> None:
    lat, symbols, units = fixture_rescorer_inputs()
    v = len(units.vocab)
    g = torch.Generator().manual_seed(1)
    if kind == "unigram":
        log_p = torch.log_softmax(torch.randn(v, generator=g), -1)
        lm, table = UnigramLM(log_p), log_p.expand(v, -1)
    else:
        table = torch.log_softmax(torch.randn(v, v, generator=g), -1)
        lm = BigramLM(table)
    bos, eos = units.vocab.bos, units.vocab.eos
    best = {}
    for method in ["fixed-point", "ngram-approx", "nbest"]:
        opts = RescoreOptions(method=method, beam=BEAM, max_ngram_order=2, num_paths=NUM_PATHS)
        rescorer = LatticeRescorer(lm, units, symbols, opts)
        result = rescorer.rescore(lat)
        out = result.lattice
        assert not result.failed and out.num_lattices == lat.num_lattices
        want = want_arc_scores(out, rescorer.tokens.table, table, bos, eos)
        assert torch.equal(out.scores["rnnlm"], want), method
        if method == "nbest":  # it saw every path, so its 1-best is the exhaustive best
            assert all(len(enumerate_paths(out, i)) < NUM_PATHS for i in range(lat.num_lattices))
        best[method] = (result.best.word_lists(), result.best.score)
    words, score = best["fixed-point"]
    for method in ["ngram-approx", "nbest"]:
        assert best[method][0] == words, method
        torch.testing.assert_close(best[method][1], score, rtol=0, atol=1e-4)
