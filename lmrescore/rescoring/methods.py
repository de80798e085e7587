"""The rescoring methods: one registry, every entry returning the same ``MethodResult``.

- ``fixed-point``: exact order-K scores on the lattice expanded to unique K-token histories
  (:mod:`lmrescore.rescoring.exact`).
- ``ngram-approx``: Kaldi's pruned algorithm, the exact RNN state of the best first-pass path
  into each state of the lattice expanded to ``n-1``-token histories
  (:mod:`lmrescore.rescoring.ngram_approx`).
- ``nbest``: the N best first-pass paths scored as whole sentences
  (:mod:`lmrescore.rescoring.nbest`); the rescored lattice is the union of those paths.

A new method is a module with a function of ``Method.score``'s signature and one entry in
``METHODS``; the CLI's ``--method`` choices come from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor

from lmrescore.errors import Failure, InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lm.interface import LanguageModel
from lmrescore.rescoring.exact import arc_log_probs
from lmrescore.rescoring.expand import Expansion, TokenTable, expand
from lmrescore.rescoring.nbest import nbest_scores
from lmrescore.rescoring.ngram_approx import ngram_approx_scores


@dataclass
class Tokens:
    """How lattice labels become LM tokens.

    Attributes:
        table: lattice label -> LM token ids.
        bos, eos: LM ids of ``<s>`` and ``</s>``.
    """

    table: TokenTable
    bos: int
    eos: int


@dataclass
class MethodResult:
    """What a method computed for a batch of L lattices.

    Attributes:
        lattice: the scored lattices (expanded, or the union of the N best paths), A' arcs; the
            lattices of ``failed`` are not in it.
        rnnlm: (A',) float32 LM log-probability of each arc (0 on epsilon arcs).
        failed: the lattices the method could not score.
        counts: the method's work, e.g. "histories" (distinct histories), and the output-layer
            rows the model counted in its ``work`` (RNNLM: "softmax_rows", or "head_rows" and
            "tail_rows"), registry entries only.
        expansion: the expansion of the batch that ``lattice`` is (fixed-point: K tokens of
            history, ngram-approx: n-1), on which another model of that order is scored
            exactly; None for nbest.
    """

    lattice: Lattice
    rnnlm: Tensor
    failed: list[Failure] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    expansion: Expansion | None = None


@dataclass(frozen=True)
class MethodSettings:
    """The settings a method reads (from ``RescoreOptions``).

    Attributes:
        order: the history length the model sees (K for fixed-point; n-1 for ngram-approx; the
            order n-best sentences are scored at, None = exact recurrence).
        num_paths: N for nbest.
        max_ngram_order: n for ngram-approx.
        weights: the first-pass weights that rank paths (nbest) or pick each state's path
            (ngram-approx).
        max_arcs: a lattice whose expansion passes this many arcs fails.
        chunk: rows per output-layer call.
    """

    order: int | None
    num_paths: int
    max_ngram_order: int
    weights: Weights
    max_arcs: int
    chunk: int


def _failures(lat: Lattice, exp: Expansion) -> list[Failure]:
    return [Failure(lat.utt_ids[i], msg) for i, msg in exp.failed.items()]


def fixed_point(model: LanguageModel, lat: Lattice, tokens: Tokens, s: MethodSettings) -> MethodResult:
    """Exact order-K scores on the lattice expanded to unique K-token histories."""
    exp = expand(lat, tokens.table, s.order, tokens.bos, s.max_arcs)
    rnnlm, histories = arc_log_probs(model, exp, tokens.table, tokens.bos, tokens.eos, s.chunk)
    return MethodResult(exp.lattice, rnnlm, _failures(lat, exp), {"histories": histories}, exp)


def ngram_approx(model: LanguageModel, lat: Lattice, tokens: Tokens, s: MethodSettings) -> MethodResult:
    """Kaldi's pruned rescoring: states merged by their last n-1 tokens."""
    ng = ngram_approx_scores(model, lat, tokens.table, s.max_ngram_order, tokens.bos,
                             tokens.eos, s.weights, s.max_arcs, s.chunk)
    return MethodResult(ng.expansion.lattice, ng.rnnlm, _failures(lat, ng.expansion),
                        {"rnn_states": ng.rnn_states}, ng.expansion)


def nbest(model: LanguageModel, lat: Lattice, tokens: Tokens, s: MethodSettings) -> MethodResult:
    """The N best first-pass paths scored as sentences."""
    nb = nbest_scores(model, lat, tokens.table, s.num_paths, tokens.bos, tokens.eos, s.order,
                      s.weights, s.chunk)
    return MethodResult(nb.lattice, nb.rnnlm, [],
                        {"paths": nb.paths, "sentences": nb.sentences, "tokens": nb.tokens})


def _own_order(order: int | None, model_order: int | None, max_ngram_order: int) -> int | None:
    return order or model_order


def _required_order(order: int | None, model_order: int | None, max_ngram_order: int) -> int:
    k = order or model_order
    if k is None:
        raise InputError("the model uses the exact recurrence (BPTT): give --order K to "
                         "rescore it at order K")
    return k


def _ngram_order(order: int | None, model_order: int | None, max_ngram_order: int) -> int:
    return max_ngram_order - 1


def _counted(score: Callable[..., MethodResult]) -> Callable[..., MethodResult]:
    """``score`` that also reports how much the model's ``work`` counters (if any) grew."""
    def run(model: LanguageModel, lat: Lattice, tokens: Tokens, s: MethodSettings) -> MethodResult:
        before = dict(getattr(model, "work", {}))
        result = score(model, lat, tokens, s)
        result.counts.update({k: v - before.get(k, 0)
                              for k, v in getattr(model, "work", {}).items()})
        return result
    return run


@dataclass(frozen=True)
class Method:
    """A registry entry.

    Attributes:
        score: rescore a batch of connected lattices.
        order: (--order, the model's order, --max-ngram-order) -> the history length it uses.
        summary: option names that only this method has, reported in the run summary.
    """

    score: Callable[[LanguageModel, Lattice, Tokens, MethodSettings], MethodResult]
    order: Callable[[int | None, int | None, int], int | None]
    summary: tuple[str, ...] = ()


METHODS: dict[str, Method] = {
    "fixed-point": Method(_counted(fixed_point), _required_order),
    "ngram-approx": Method(_counted(ngram_approx), _ngram_order, ("max_ngram_order",)),
    "nbest": Method(_counted(nbest), _own_order, ("num_paths",)),
}
