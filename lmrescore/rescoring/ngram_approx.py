"""Baseline: Kaldi's pruned RNNLM lattice rescoring (``lattice-lmrescore-kaldi-rnnlm-pruned``).

Kaldi composes the lattice with an RNNLM "FST" whose states are the last ``n-1`` words (the
``--max-ngram-order n``). The RNN state kept for such a state is the exact recurrent state after
the FIRST path that reached it; other paths with the same last ``n-1`` words are merged into it
and scored from that state. Kaldi's pruned composition explores the lattice best-first, so a
state is first reached along its best-scoring path.

Here: expand histories with K = n-1 (:func:`lmrescore.rescoring.expand.expand`), then walk
the expanded lattice one topological level at a time. Each expanded state takes its RNN state
from ONE incoming arc, the last arc of the best first-pass path into it (highest
``acoustic_scale * am + lm - word_ins_penalty * words``; ties go to the highest arc id, as in
:func:`lmrescore.lattice.shortest_path.best_path`): ``model.step(state of that arc's source,
word)``, one token at a time for subword units. Every arc then scores
``log p(word | RNN state of its source)`` (token by token) and arcs into the final state score
``</s>``. The RNN runs its exact recurrence whatever order the model was trained at.

With ``n-1`` at least the number of tokens of the longest path plus one (``<s>``) every
expanded state has one full-sentence history, so the result is the exact sequential score of
every path; with smaller ``n`` it is Kaldi's approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.rescoring.expand import Expansion, TokenTable, expand
from lmrescore.lattice.lattice import FINAL_LABEL, Lattice
from lmrescore.lm.interface import BLOCK_ROWS, LanguageModel, put, select
from lmrescore.lattice.semiring import forward_scores
from lmrescore.lattice.weights import Weights
from lmrescore.lattice.topsort import Levels, levels


@dataclass
class NgramApproxScores:
    """Kaldi-style pruned RNNLM scores of an expanded batch.

    Attributes:
        expansion: the lattices expanded to unique ``n-1``-token histories.
        rnnlm: (A',) float32 LM log-probability of each expanded arc (0 on epsilon arcs).
        best_in: (S',) int64 the incoming arc each expanded state took its RNN state from
            (-1 for start and final states).
        rnn_states: RNN states computed (one per expanded state that has out-arcs).
    """

    expansion: Expansion
    rnnlm: Tensor
    best_in: Tensor
    rnn_states: int


def best_incoming_arcs(lat: Lattice, lv: Levels, weights: Weights) -> Tensor:
    """(S,) int64 last arc of the best first-pass path into each state (-1 at start states).

    First-pass score: ``weights.arc_scores``; ties go to the
    highest arc id.
    """
    score = weights.arc_scores(lat)
    alpha = forward_scores(lat, lv, score, "tropical")
    into = alpha[lat.src] + score
    wins = (into == alpha[lat.dst]) & torch.isfinite(into)
    best = torch.full((lat.num_states,), -1, dtype=torch.int64)
    return best.scatter_reduce_(0, lat.dst[wins], wins.nonzero().squeeze(1), "amax")


@torch.no_grad()
def ngram_approx_scores(model: LanguageModel, lat: Lattice, table: TokenTable, max_ngram_order: int,
                        bos: int, eos: int, weights: Weights = Weights(0.1),
                        max_arcs: int | None = None,
                        chunk: int = BLOCK_ROWS) -> NgramApproxScores:
    """Score a batch the way Kaldi's pruned RNNLM rescoring does (see the module docstring).

    Args:
        model: the LM, stepped token by token (an RNN's exact recurrence).
        lat: a batch of connected lattices.
        table: lattice label -> LM tokens.
        max_ngram_order: n >= 2; states are merged by their last n-1 tokens.
        bos, eos: LM ids of ``<s>`` and ``</s>``.
        weights: the first-pass score that picks each state's path.
        max_arcs: drop (and report) a lattice whose expansion passes this many arcs.
        chunk: softmax rows per model call.
    Returns:
        the expansion, per-arc scores, and each state's chosen incoming arc.
    """
    if max_ngram_order < 2:
        raise ValueError(f"max-ngram-order must be >= 2, got {max_ngram_order}")
    exp = expand(lat, table, max_ngram_order - 1, bos, max_arcs)
    ex = exp.lattice
    lv = levels(ex)
    best_in = best_incoming_arcs(ex, lv, weights)
    best_in[ex.final_states] = -1
    dev = model.device
    state = model.start(ex.num_states)
    starts = ex.start_states[ex.nonempty()]
    put(state, starts, model.step(model.start(starts.shape[0]),
                                  torch.full((starts.shape[0],), bos, device=dev)))
    labels = ex.label
    word = labels.clamp(min=0)
    num_tokens = torch.where(labels > 0, table.splits[word + 1] - table.splits[word], 0)
    rnnlm = torch.zeros(ex.num_arcs, dtype=torch.float32)
    rnn_states = 0
    for k in range(lv.num_levels):
        arcs, group, states = lv.by_src.level(k)
        if not arcs.numel():
            continue
        rnn_states += states.shape[0]
        # first token of each word arc, </s> on arcs into the final state
        ask = (num_tokens[arcs] > 0) | (labels[arcs] == FINAL_LABEL)
        tok = torch.where(labels[arcs] == FINAL_LABEL, eos, table.token(word[arcs], 0))
        rnnlm[arcs[ask]] += model.token_log_probs(select(state, states), group[ask], tok[ask],
                                                  chunk)
        # step through the words of arcs that score more tokens or give their dst its state
        chosen = best_in[ex.dst[arcs]] == arcs
        n = num_tokens[arcs]
        walk = (n > 1) | (chosen & (n > 0))
        cur, n, chosen = arcs[walk], n[walk], chosen[walk]
        cur_state = select(state, ex.src[cur])
        for j in range(int(n.max()) if n.numel() else 0):
            act = ((n > j + 1) | (chosen & (n > j))).nonzero().squeeze(1)
            new = model.step(select(cur_state, act), table.token(word[cur[act]], j).to(dev))
            put(cur_state, act, new)
            more = (n[act] > j + 1).nonzero().squeeze(1)
            if more.numel():
                rnnlm[cur[act[more]]] += model.token_log_probs(
                    new, more, table.token(word[cur[act[more]]], j + 1), chunk)
        # each dst takes the state at the end of its chosen in-arc (epsilon: the src's state)
        done = (chosen & (n > 0)).nonzero().squeeze(1)
        put(state, ex.dst[cur[done]], select(cur_state, done))
        eps = arcs[(best_in[ex.dst[arcs]] == arcs) & (num_tokens[arcs] == 0)
                   & (labels[arcs] != FINAL_LABEL)]
        put(state, ex.dst[eps], select(state, ex.src[eps]))
    return NgramApproxScores(expansion=exp, rnnlm=rnnlm, best_in=best_in, rnn_states=rnn_states)
