"""Several LMs on one expansion, each its own score column, combined by scale:
``lm = first_pass_scale * graph + sum_i scale_i * (lm_i - unk_penalty_i * oov_i)``.

One LM is scored in its own tokens (subwords too). Several are scored on one expansion whose
tokens are the lattice's own word ids, so any two histories that one of them tells apart stay
apart: a word outside the RNN's vocabulary is the RNN's ``<unk>`` but keeps its own n-gram
history (a real lexicon is larger than the RNN's vocabulary). Each LM reads those word ids
through its own id map (:class:`Translated`). The first LM is scored by the method (fixed-point
at K, Kaldi's n-gram approximation); every other one exactly on the method's expansion, which
needs its order (an n-gram's n-1) to be at most the expansion's history length.
``--model M --lm-scale w --old-lm G`` is the combination [M at w, G at -w].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lm.interface import BLOCK_ROWS, LanguageModel, State
from lmrescore.lm.units import Units, WordUnits
from lmrescore.rescoring.exact import arc_log_probs
from lmrescore.rescoring.expand import TokenTable
from lmrescore.rescoring.methods import MethodResult, Tokens
from lmrescore.rescoring.symbols import token_table
from lmrescore.vocab import Vocab

EXPANSION_METHODS = ("fixed-point", "ngram-approx")  # the methods whose expansion scores others
# The two LMs of ``--model M --old-lm G`` (ScoredLM / LmFile fields): M's column, charged for
# lattice words outside its vocabulary; G's, which scores them as its <unk> (the first pass did).
MODEL_ROLE = {"name": "rnnlm", "oov_cost": True, "source": "--model"}
OLD_LM_ROLE = {"name": "old_lm", "oov_cost": False, "source": "--old-lm"}


@dataclass
class ScoredLM:
    """One LM of a combination.

    Attributes:
        name: its score column in the rescored lattices ("rnnlm", "old_lm", "lm_0"...).
        model, units: the LM and its tokens.
        scale: its weight in the combined score (negative: taken out of the graph score).
        oov_cost: charge ``unk_penalty`` per lattice word outside its vocabulary (a new LM's
            ``<unk>`` shared among those words); False: such a word scores as its ``<unk>``,
            as in the first pass (an old LM).
        source: how it was given, for error lines (default: ``name``).
    """

    name: str
    model: LanguageModel
    units: Units
    scale: float = 1.0
    oov_cost: bool = True
    source: str = ""

    @property
    def label(self) -> str:
        return self.source or self.name


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


class Combination:
    """The LMs of a rescorer, read on one expansion.

    Attributes:
        lms: the LMs, the first one scored by the method.
        models: each LM as the method and the expansion read it (in lattice word ids when
            there are several).
        tokens: lattice label -> the expansion's tokens (the first LM's own with one LM; lattice
            word ids, ``<s>`` and ``</s>`` after the words, with several).
        is_oov: (num_symbols,) bool per LM: the lattice word is outside its vocabulary.
        unk_penalty: per LM, its cost per such word (applied where ``oov_cost``).
    """

    def __init__(self, lms: Sequence[ScoredLM], symbols: Vocab, method: str, order: int | None,
                 skip: tuple[str, ...], oov: str | None, unk_penalty: float | None) -> None:
        """Check that every LM but the first is exact on the expansion; map the ids.

        Args:
            order: the expansion's history length (K, or n-1 with ngram-approx).
            unk_penalty: None: each LM's ln(number of lattice words outside its vocabulary).
        """
        if not lms:
            raise InputError("no LM to rescore with")
        if len({lm.name for lm in lms}) < len(lms):
            raise InputError(f"two LMs with one score column: {[lm.name for lm in lms]}")
        self.lms = list(lms)
        tables, self.is_oov = zip(*(token_table(symbols, lm.units, skip, oov) for lm in lms))
        self.unk_penalty = [unk_penalty if unk_penalty is not None
                            else math.log(max(1, int(o.sum()))) for o in self.is_oov]
        first = lms[0]
        if len(lms) == 1:
            self.models = [first.model]
            self.tokens = Tokens(tables[0], first.units.vocab.bos, first.units.vocab.eos)
            return
        _check_expansion(lms, method, order)
        self.models = [Translated(lm.model, word_ids(t, lm.units.vocab))
                       for lm, t in zip(lms, tables)]
        keep = tables[0].splits[1:] > tables[0].splits[:-1]  # the words that are not skipped
        words = TokenTable(keep.nonzero().squeeze(1),
                           torch.cat([torch.zeros(1, dtype=torch.long), keep.long().cumsum(0)]))
        self.tokens = Tokens(words, len(symbols), len(symbols) + 1)

    def columns(self, result: MethodResult, chunk: int = BLOCK_ROWS) -> dict[str, Tensor]:
        """{name: (A',) its log-prob of each arc of ``result``'s lattice}: the first LM's from
        the method, the others' on its expansion."""
        out = {self.lms[0].name: result.rnnlm}
        t = self.tokens
        for lm, model in zip(self.lms[1:], self.models[1:]):
            out[lm.name] = arc_log_probs(model, result.expansion, t.table, t.bos, t.eos,
                                         chunk)[0]
        return out

    def combined(self, lat: Lattice, columns: dict[str, Tensor],
                 first_pass_scale: float) -> Tensor:
        """(A',) ``first_pass_scale * lm + sum_i scale_i * (lm_i - unk_penalty_i * oov_i)``."""
        word = lat.label.clamp(min=0)
        out = first_pass_scale * lat.scores["lm"]
        for lm, is_oov, penalty in zip(self.lms, self.is_oov, self.unk_penalty):
            if lm.oov_cost:
                oov = is_oov[word] & (lat.label > 0)
                out = out + lm.scale * (columns[lm.name] - penalty * oov)
            else:
                out = out + lm.scale * columns[lm.name]
        return out


def _check_expansion(lms: Sequence[ScoredLM], method: str, order: int | None) -> None:
    """Several LMs: a method with an expansion, word-level LMs, and every LM but the first
    exact at the expansion's history length ``order``."""
    second = lms[1].label
    if method not in EXPANSION_METHODS:
        raise InputError(f"{second} is scored on the expansion of fixed-point or ngram-approx; "
                         f"--method {method} is not supported with it")
    for lm in lms:
        if not isinstance(lm.units, WordUnits):
            raise InputError(f"{lm.label}: several LMs are combined on the lattice's words, "
                             f"so each one must be word-level (this one has subword units)")
    for lm in lms[1:]:
        k = lm.model.order
        if k is None:
            raise InputError(f"{lm.label} runs its exact recurrence (BPTT): only the first LM "
                             f"can be scored at another order than its own")
        if order is None or order < k:
            raise InputError(f"{lm.label} needs histories of {k} words to be exact on the "
                             f"expansion (its order; an n-gram's n-1): --order {k}, or "
                             f"--max-ngram-order {k + 1} with ngram-approx; got {order}")
