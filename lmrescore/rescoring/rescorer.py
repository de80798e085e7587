"""Rescore one batch of lattices with an LM: prune -> determinize -> (coarse pass) -> a method
of :data:`lmrescore.rescoring.methods.METHODS` -> best path.

Optionally a coarse pass first (``prune_order``): the lattice is scored exactly at a low order
(e.g. 2, cheap to expand), pruned to ``prune_beam`` on those scores, and the survivors go on to
the chosen method with their first-pass scores: an LM-informed beam instead of an acoustic-only
one, so a wide first beam keeps the good paths and the order-K expansion stays small.

Score combination follows Kaldi's lattice LM rescoring (``steps/lmrescore*.sh``,
``lattice-lmrescore-kaldi-rnnlm-pruned``), generalised to several LMs
(:mod:`lmrescore.rescoring.combination`): the new LM score of an arc is
``first_pass_scale * lm + sum_i scale_i * (lm_i - unk_penalty_i * is_oov_i)`` and the best path
maximises ``acoustic_scale * am + lm - word_ins_penalty * words`` (``Weights``). ``lm`` is the
lattice's graph cost (HCLG: the old LM plus transition, pronunciation and silence costs), kept
whole by default (``first_pass_scale = 1``). One model with an old LM (an ARPA or a G.fst;
fixed-point and ngram-approx) is the combination [model at ``lm_scale``, old LM at
``old_lm_scale``, by default ``-lm_scale``, not charged for OOV words]: both scored on one
expansion over the lattice's word ids, the old LM taken out with the new LM's weight, as
Kaldi's ``--lm-scale w`` (``--weight``) is ``lm_scale = w``. Every pass ranks paths by this one
score: the coarse pass scores every LM too, at its order (an LM of a higher order, e.g. a
trigram at ``prune_order`` 1, with its histories cut to ``prune_order`` words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from lmrescore.errors import Failure, InputError
from lmrescore.lattice.determinize import determinize
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.nbest import nbest
from lmrescore.lattice.prune import prune_beam
from lmrescore.lattice.shortest_path import BestPath, best_path
from lmrescore.lattice.topsort import connect
from lmrescore.lattice.weights import Weights
from lmrescore.lm.arpa import NgramLM
from lmrescore.lm.interface import LanguageModel
from lmrescore.lm.units import Units, WordUnits
from lmrescore.rescoring.exact import BLOCK_ROWS
from lmrescore.rescoring.combination import MODEL_ROLE, OLD_LM_ROLE, Combination, ScoredLM
from lmrescore.rescoring.methods import METHODS, MethodResult, MethodSettings, fixed_point
from lmrescore.rescoring.symbols import SKIP_WORDS, oov_symbol
from lmrescore.vocab import Vocab

# What ``lmrescore score`` prunes with unless told otherwise (RescoreOptions itself prunes
# nothing by default): on 60 real PTB lattices (PocketSphinx, no LM score), 24 tripped
# --max-arcs with no pruning and 21 with the beam alone, none with both (bench/RESULTS.md).
DEFAULT_BEAM = 10.0
DEFAULT_PRUNE_ORDER = 2


@dataclass
class RescoreOptions:
    """How lattices are rescored.

    Attributes:
        method: a name of ``METHODS``: "fixed-point" (exact order-K), "ngram-approx" (Kaldi's
            pruned algorithm) or "nbest" (N best first-pass paths scored as sentences).
        weights: acoustic scale, the new LM's scale and the word insertion penalty.
        first_pass_scale: weight kept on the lattice's own LM / graph score (1: keep it, as
            Kaldi does; 0: replace it, for lattices that carry only an LM score).
        old_lm_scale: weight of the old LM's log-probs, if one is given (None: minus the new
            LM's ``lm_scale``, which takes it out of the graph score as Kaldi does; positive:
            interpolate it).
        oov_symbol: the lattices' OOV word (the LM's ``<unk>``, not charged ``unk_penalty``);
            None: whichever of ``<unk>`` / ``<UNK>`` words.txt has.
        skip_words: fnmatch patterns of the lattice words the LM does not score (silence,
            noise, ``#0``...: :data:`lmrescore.rescoring.symbols.SKIP_WORDS`).
        unk_penalty: cost per out-of-vocabulary word; None = ln(number of words of the lattices'
            symbol table outside the LM vocabulary): ``<unk>``'s probability shared equally
            among the words the recogniser knows and the LM does not.
        order: history length K (default: the model's order; required for a BPTT model with
            fixed-point). With nbest: the fixed-point order the sentences are scored at (default:
            the model's own, the exact recurrence for a BPTT model).
        num_paths: N, paths per lattice for nbest.
        max_ngram_order: n for ngram-approx: states are merged by their last n-1 tokens.
        beam: prune each lattice to this beam (first-pass scores) before expanding; None keeps all.
        prune_order: if set, the coarse pass: score at this order, prune to ``prune_beam``
            (skipped when the method's own order is not higher).
        prune_beam: the beam of the coarse pass, on the combined scores.
        determinize: after pruning, keep one path per word sequence (as Kaldi's
            lattice-determinize), the best by ``acoustic_scale * am + first_pass_scale * lm``,
            which is the best after rescoring; histories are then expanded once per sequence.
        max_arcs: a lattice whose expansion passes this many arcs is reported and skipped.
        chunk: histories per output-layer call: bounds memory (chunk x vocabulary floats).
        keep_attributes: carry per-arc and per-state attributes (Kaldi transition ids, times)
            into the rescored lattices. Determinization then keeps each word sequence's best
            path's transition ids, as Kaldi's does, which keeps apart det-states that differ in
            them: larger lattices. Without it (nothing to write) they are dropped first.
    """

    method: str = "fixed-point"
    weights: Weights = field(default_factory=lambda: Weights(acoustic_scale=0.1))
    first_pass_scale: float = 1.0
    old_lm_scale: float | None = None
    unk_penalty: float | None = None
    oov_symbol: str | None = None
    skip_words: tuple[str, ...] = SKIP_WORDS
    order: int | None = None
    num_paths: int = 100
    max_ngram_order: int = 4
    beam: float | None = None
    prune_order: int | None = None
    prune_beam: float = 5.0
    determinize: bool = True
    max_arcs: int = 200_000
    chunk: int = BLOCK_ROWS
    keep_attributes: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.num_paths < 1:
            raise InputError(f"--num-paths must be >= 1, got {self.num_paths}")
        if self.max_ngram_order < 2:
            raise InputError(f"--max-ngram-order must be >= 2, got {self.max_ngram_order}")
        if self.prune_order is not None and self.prune_order < 1:
            raise InputError(f"--prune-order must be >= 1, got {self.prune_order}")

    @property
    def old_lm_weight(self) -> float:
        """The old LM's weight: ``old_lm_scale``, by default ``-lm_scale``."""
        return -self.weights.lm_scale if self.old_lm_scale is None else self.old_lm_scale

    @property
    def path_weights(self) -> Weights:
        """How paths are ranked: ``acoustic_scale * am + lm - word_ins_penalty * words``, where
        "lm" is the lattice's own LM score before rescoring and the combined one after."""
        return replace(self.weights, lm_scale=1.0)


@dataclass
class RescoredBatch:
    """What rescoring one batch produced.

    Attributes:
        lattice: the rescored lattices (None if all failed): expanded (fixed-point,
            ngram-approx) or the union of the N best paths (nbest); scores "am", "lm"
            (combined), "lm_first_pass", and each LM's column ("rnnlm", and "old_lm" with an
            old LM; the names of a combination's LMs).
        best: the best path of each lattice of ``lattice``.
        failed: the lattices that could not be rescored.
        arcs_in, arcs_pruned: arcs before and after pruning (both passes).
        oov_words, words: OOV and all word arcs on the best paths.
        counts: the method's counts (``MethodResult.counts``), and "coarse_histories", the
            distinct histories of the coarse pass (with ``prune_order``).
    """

    lattice: Lattice | None
    best: BestPath | None
    failed: list[Failure] = field(default_factory=list)
    arcs_in: int = 0
    arcs_pruned: int = 0
    oov_words: int = 0
    words: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class LatticeRescorer:
    """Rescoring of lattice batches with one model (and the old LM), or a combination of LMs
    (:meth:`combining`), by one of ``METHODS``.

    ``order`` is the history length the first LM sees: K (fixed-point), n-1 (ngram-approx,
    merged states; the RNN runs exactly along one path), or the order the n-best sentences are
    scored at (None: exact recurrence). ``old_lm``: the n-gram in the lattices' graph scores
    (``--old-lm``), scored on the same expansion: the combination [``model`` at ``lm_scale``
    (column "rnnlm"), ``old_lm`` at ``old_lm_weight`` (column "old_lm")].
    """

    def __init__(self, model: LanguageModel, units: Units, symbols: Vocab,
                 options: RescoreOptions, old_lm: NgramLM | None = None) -> None:
        lms = [ScoredLM(model=model, units=units, scale=options.weights.lm_scale, **MODEL_ROLE)]
        if old_lm is not None:
            lms.append(ScoredLM(model=old_lm, units=WordUnits(old_lm.vocab),
                                scale=options.old_lm_weight, **OLD_LM_ROLE))
        self._setup(lms, symbols, options)

    @classmethod
    def combining(cls, lms: Sequence[ScoredLM], symbols: Vocab,
                  options: RescoreOptions) -> "LatticeRescorer":
        """Rescoring with several LMs on one expansion, each its own score column, combined by
        their scales (``options.weights.lm_scale`` and ``old_lm_scale`` are not read)."""
        rescorer = cls.__new__(cls)
        rescorer._setup(lms, symbols, options)
        return rescorer

    def _setup(self, lms: Sequence[ScoredLM], symbols: Vocab, options: RescoreOptions) -> None:
        self.symbols, self.options = symbols, options
        self.method = METHODS[options.method]
        self.order = self.method.order(options.order, lms[0].model.order,
                                       options.max_ngram_order)
        self.lms = Combination(lms, symbols, options.method, self.order, options.skip_words,
                               oov_symbol(symbols, options.oov_symbol), options.unk_penalty)
        self.model, self.tokens = self.lms.models[0], self.lms.tokens
        self.is_oov, self.unk_penalty = self.lms.is_oov[0], self.lms.unk_penalty[0]

    def settings(self, order: int | None) -> MethodSettings:
        """What a method reads, at history length ``order``."""
        o = self.options
        return MethodSettings(order, o.num_paths, o.max_ngram_order, o.path_weights, o.max_arcs,
                              o.chunk)

    def scored(self, result: MethodResult) -> Lattice:
        """The method's lattice with every LM's column and the combined "lm" (the first-pass
        score kept as "lm_first_pass")."""
        ex = result.lattice
        columns = self.lms.columns(result, self.options.chunk)
        return ex.with_scores(lm=self.lms.combined(ex, columns, self.options.first_pass_scale),
                              lm_first_pass=ex.scores["lm"], **columns)

    def check_labels(self, lat: Lattice) -> list[Failure]:
        """The lattices with a label outside the symbol table."""
        bad = (lat.label >= len(self.symbols)).nonzero().squeeze(1)
        lattice_of = lat.arc_lattice()[bad]
        out = []
        for i in torch.unique(lattice_of).tolist():
            a = int(bad[lattice_of == i][0])
            out.append(Failure(lat.utt_ids[i], f"utterance {lat.utt_ids[i]}: arc "
                               f"{a - int(lat.arc_splits[i])} has label {int(lat.label[a])}, "
                               f"but words.txt has only {len(self.symbols)} symbols (lattice and "
                               f"words.txt disagree)"))
        return out

    def rescore(self, lat: Lattice) -> RescoredBatch:
        """Rescore a batch; a lattice that fails is reported and the others are still rescored."""
        failed = self.check_labels(lat)
        if failed:
            bad = {f.utt_id for f in failed}
            lat = lat.select([i for i, u in enumerate(lat.utt_ids) if u not in bad])
            if lat.num_lattices == 0:
                return RescoredBatch(None, None, failed)
        try:
            return self._rescore(lat, failed)
        except InputError as e:
            if lat.num_lattices == 1:
                return RescoredBatch(None, None, failed + [Failure(lat.utt_ids[0], str(e))])
        parts = []  # a batch-wide step (e.g. connect) failed: isolate the lattice(s) that broke it
        for i in range(lat.num_lattices):
            try:
                parts.append(self._rescore(lat[i], []))
            except InputError as e:
                failed.append(Failure(lat.utt_ids[i], str(e)))
        return self._merge(parts, failed)

    def _rescore(self, lat: Lattice, failed: list[Failure]) -> RescoredBatch:
        o = self.options
        arcs_in = lat.num_arcs
        if not o.keep_attributes:
            lat = replace(lat, arc_attrs={}, state_attrs={}, ragged_arc_attrs={})
        path = o.path_weights
        if o.beam is not None:
            lat, _ = prune_beam(lat, o.beam, path)
        else:
            lat, _ = connect(lat)
        if o.determinize:
            # Paths with the same words differ after rescoring only in acoustic_scale * am +
            # first_pass_scale * lm: keeping the best by that keeps the rescored best path.
            # More det-states than max_arcs would pass max_arcs once expanded.
            lat, _ = determinize(lat, replace(o.weights, lm_scale=o.first_pass_scale),
                                 max_states=o.max_arcs)
        coarse: dict[str, int] = {}
        if o.prune_order is not None and (self.order is None or o.prune_order < self.order):
            lat, coarse_failed, coarse["coarse_histories"] = self._coarse_prune(lat)
            failed = failed + coarse_failed
            if lat.num_lattices == 0:
                return RescoredBatch(None, None, failed, arcs_in, counts=coarse)
        result = self.method.score(self.model, lat, self.tokens, self.settings(self.order))
        ex = self.scored(result)
        best = best_path(ex, path)
        best_oov = self.is_oov[best.words]
        return RescoredBatch(ex, best, failed + result.failed, arcs_in, lat.num_arcs,
                             int(best_oov.sum()), int(best.words.numel()),
                             result.counts | coarse)

    def _coarse_prune(self, lat: Lattice) -> tuple[Lattice, list[Failure], int]:
        """Score exactly at ``prune_order`` (every LM, combined as in the full pass), keep the
        arcs within ``prune_beam`` of the best path, and give the survivors back their
        first-pass scores; also the failures and the number of distinct histories scored."""
        o = self.options
        result: MethodResult = fixed_point(self.model, lat, self.tokens,
                                           self.settings(o.prune_order))
        ex = result.lattice
        columns = self.lms.columns(result, o.chunk)
        scored = ex.with_scores(lm=self.lms.combined(ex, columns, o.first_pass_scale))
        pruned, kept = prune_beam(scored, o.prune_beam, o.path_weights)
        failed = [Failure(f.utt_id, f"coarse pass (order {o.prune_order}): {f.message}")
                  for f in result.failed]
        return pruned.with_scores(lm=ex.scores["lm"][kept]), failed, result.counts["histories"]

    def _merge(self, parts: list[RescoredBatch], failed: list[Failure]) -> RescoredBatch:
        """One result from per-lattice results."""
        if not parts:
            return RescoredBatch(None, None, failed)
        lat = Lattice.cat([p.lattice for p in parts])
        return RescoredBatch(lat, best_path(lat, self.options.path_weights),
                             failed + [f for p in parts for f in p.failed],
                             sum(p.arcs_in for p in parts), sum(p.arcs_pruned for p in parts),
                             sum(p.oov_words for p in parts),
                             sum(p.words for p in parts),
                             {k: sum(p.counts.get(k, 0) for p in parts)
                              for k in dict.fromkeys(k for p in parts for k in p.counts)})

    def nbest_lists(self, result: RescoredBatch, n: int) -> list[list[list[int]]]:
        """Word ids of the ``n`` best paths of each rescored lattice: [lattice][path][word].

        Paths are distinct paths of the rescored lattice, best first under the new scores;
        their word sequences can repeat (as with Kaldi's lattice-to-nbest on an undeterminized
        lattice).
        """
        if result.lattice is None:
            return []
        return nbest(result.lattice, n, self.options.path_weights).word_lists()
