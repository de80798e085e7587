"""The first-pass (old) n-gram, an ARPA file or a G.fst (:mod:`lmrescore.rescoring.old_lm`),
scored exactly on fixed-point's expansion, to take it out of the graph score or interpolate it
as Kaldi's ``lattice-lmrescore-kaldi-rnnlm-pruned --lm-scale`` does.

Both LMs are scored on one expansion whose tokens are the lattice's own word ids, so any two
histories that either LM tells apart stay apart: a word outside the RNN's vocabulary is the
RNN's ``<unk>`` but keeps its own n-gram history (a real lexicon is larger than the RNN's
vocabulary). Each LM reads those word ids through an id map (:class:`Translated`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lm.arpa import NgramLM
from lmrescore.lm.interface import BLOCK_ROWS, LanguageModel, State
from lmrescore.lm.units import Units, WordUnits
from lmrescore.rescoring.exact import arc_log_probs
from lmrescore.rescoring.expand import Expansion, TokenTable
from lmrescore.rescoring.methods import Tokens
from lmrescore.rescoring.symbols import SKIP_WORDS, token_table
from lmrescore.vocab import Vocab


class Translated:
    """``model`` read in another id space: token ``t`` is the model's ``ids[t]``.

    The part of the ``LanguageModel`` protocol that fixed-point scoring uses (states, steps
    and queried log-probabilities: what fixed-point and ngram-approx use). No ``logits``: ids that
    share a model token do not form a distribution over the new ids.
    """

    def __init__(self, model: LanguageModel, ids: Tensor) -> None:
        self.model, self.ids = model, ids
        self.ids_on_device = ids.to(model.device)
        self.vocab_size, self.order, self.device = len(ids), model.order, model.device
        self.work = getattr(model, "work", {})

    def start(self, n: int) -> State:
        return self.model.start(n)

    def step(self, state: State, tokens: Tensor) -> State:
        return self.model.step(state, self.ids_on_device[tokens.to(self.device)])

    def token_log_probs(self, state: State, rows: Tensor, tokens: Tensor,
                        block_rows: int = BLOCK_ROWS) -> Tensor:
        return self.model.token_log_probs(state, rows, self.ids[tokens], block_rows)


def word_ids(table: TokenTable, vocab: Vocab) -> Tensor:
    """(num_symbols + 2,) from a word-level token table: the LM id of each lattice word, then
    of ``<s>`` and ``</s>`` (a skipped word, which is never a token, gets ``<unk>``'s)."""
    has = table.splits[1:] > table.splits[:-1]
    ids = torch.full((has.shape[0] + 2,), vocab.unk, dtype=torch.long)
    ids[:-2][has] = table.values
    ids[-2:] = torch.tensor([vocab.bos, vocab.eos])
    return ids


@dataclass
class FirstPassNgram:
    """A first-pass n-gram scored on fixed-point's expansion over lattice word ids: its
    K-word histories are the n-gram's exact histories when K >= n-1.

    Attributes:
        lm: the n-gram, read in lattice word ids.
        tokens: lattice label -> lattice word id (none for skipped words); ``<s>`` and
            ``</s>`` after the words.
    """

    lm: Translated
    tokens: Tokens

    @classmethod
    def build(cls, lm: NgramLM, units: Units, symbols: Vocab, order: int | None,
              method: str, skip: tuple[str, ...] = SKIP_WORDS,
              oov: str | None = None) -> "FirstPassNgram":
        """Check that the expansion determines the n-gram's histories; map the ids."""
        if method not in ("fixed-point", "ngram-approx"):
            raise InputError(f"--old-lm is scored on the expansion of fixed-point or "
                             f"ngram-approx; --method {method} is not supported with it")
        if not isinstance(units, WordUnits):
            raise InputError("--old-lm needs a word-level model (its histories are words)")
        if order is None or order < lm.n - 1:
            raise InputError(f"--old-lm: an order-{lm.n} n-gram needs histories of {lm.n - 1} "
                             f"words to be exact on the expansion (--order, or "
                             f"--max-ngram-order {lm.n} with ngram-approx), got {order}")
        table, _ = token_table(symbols, WordUnits(lm.vocab), skip, oov)
        keep = table.splits[1:] > table.splits[:-1]  # the words that are not skipped
        words = TokenTable(keep.nonzero().squeeze(1),
                           torch.cat([torch.zeros(1, dtype=torch.long), keep.long().cumsum(0)]))
        n = len(symbols)
        return cls(Translated(lm, word_ids(table, lm.vocab)), Tokens(words, n, n + 1))

    def arc_log_probs(self, exp: Expansion) -> Tensor:
        """(A',) the n-gram's log-probability of each arc of the expansion."""
        return arc_log_probs(self.lm, exp, self.tokens.table, self.tokens.bos,
                             self.tokens.eos)[0]
