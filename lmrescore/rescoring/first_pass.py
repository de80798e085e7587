"""The first-pass n-gram (an ARPA file) scored exactly on fixed-point's expansion, to subtract
or interpolate it as Kaldi's ``lattice-lmrescore-kaldi-rnnlm-pruned --lm-scale`` does."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lm.arpa import NgramLM
from lmrescore.lm.units import Units, WordUnits
from lmrescore.rescoring.exact import arc_log_probs
from lmrescore.rescoring.expand import VOID, Expansion
from lmrescore.rescoring.methods import Tokens
from lmrescore.rescoring.symbols import SKIP_WORDS, token_table
from lmrescore.vocab import Vocab


@dataclass
class FirstPassNgram:
    """A first-pass n-gram scored on fixed-point's expansion: the K-token histories of model
    word tokens, translated to the n-gram's ids, are its exact histories when K >= n-1.

    Attributes:
        lm: the n-gram model.
        tokens: lattice label -> n-gram ids.
        translate: (model vocabulary,) model token -> n-gram id (-1: no lattice word has it).
    """

    lm: NgramLM
    tokens: Tokens
    translate: Tensor

    @classmethod
    def build(cls, lm: NgramLM, units: Units, symbols: Vocab, order: int | None,
              method: str, skip: tuple[str, ...] = SKIP_WORDS,
              oov: str | None = None) -> "FirstPassNgram":
        """Check that the expansion determines the n-gram's histories, and map its tokens
        (``skip``, ``oov``: as the rescorer's :func:`token_table`)."""
        if method != "fixed-point":
            raise InputError(f"--arpa is scored on the fixed-point expansion; --method "
                             f"{method} is not supported with it")
        if not isinstance(units, WordUnits):
            raise InputError("--arpa needs a word-level model (its histories are words)")
        if order is None or order < lm.n - 1:
            raise InputError(f"--arpa: an order-{lm.n} n-gram needs --order >= {lm.n - 1} "
                             f"to be exact on the expansion, got {order}")
        # word units: every word symbol is one token in both tables, in symbol order
        table, _ = token_table(symbols, WordUnits(lm.vocab), skip, oov)
        mine, _ = token_table(symbols, units, skip, oov)
        translate = torch.full((len(units.vocab),), -1, dtype=torch.long)
        translate[mine.values] = table.values
        translate[units.vocab.bos] = lm.vocab.bos
        clash = (translate[mine.values] != table.values).nonzero().squeeze(1)
        if clash.numel():
            a = int(clash[0])
            b = int(((mine.values == mine.values[a]) & (table.values != table.values[a])
                     ).nonzero()[0])
            word = [symbols.words[i] for i in
                    (mine.splits[1:] > mine.splits[:-1]).nonzero().squeeze(1).tolist()]
            raise InputError(f"--arpa: the words {word[b]!r} and {word[a]!r} are one token "
                             f"of the model but two words of the n-gram, so the expansion "
                             f"cannot tell their n-gram histories apart (use one vocabulary)")
        return cls(lm, Tokens(table, lm.vocab.bos, lm.vocab.eos), translate)

    def arc_log_probs(self, exp: Expansion) -> Tensor:
        """(A',) the n-gram's log-probability of each arc of the expansion."""
        h = exp.history
        history = torch.where(h >= 0, self.translate[h.clamp(min=0)], VOID)
        return arc_log_probs(self.lm, replace(exp, history=history), self.tokens.table,
                             self.tokens.bos, self.tokens.eos)[0]
