"""Baseline: n-best rescoring (as in icefall): score the N best first-pass paths as sentences.

The N best paths of each lattice (first-pass score ``acoustic_scale * am + lm -
word_ins_penalty * words``) become a lattice of their own, the union of N linear paths sharing
the start and final states, whose arcs carry the original arcs' scores and attributes. Each
path's word sequence is one sentence ``<s> w1 .. wn </s>`` for the model: all unique sentences
of the batch run as one padded batch (in chunks), with the model's exact recurrence
(``order=None``) or its order-K fixed point. Each word arc gets the log-probability of its
tokens and the arc into the final state that of ``</s>``, so the best path of the paths lattice
under the combined scores is the best rescored hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.rescoring.expand import TokenTable
from lmrescore.lattice.lattice import Lattice, derive
from lmrescore.lattice.nbest import Nbest, nbest
from lmrescore.lattice.weights import Weights
from lmrescore.lattice.ragged import ragged_arange, splits_of, unique_rows
from lmrescore.lm.interface import BLOCK_ROWS, LanguageModel


@dataclass
class NbestScores:
    """The N-best paths of a batch as a lattice, with LM scores.

    Attributes:
        lattice: per input lattice, the union of its N best paths (L lattices, A' arcs).
        arc_map: (A',) original arc of each arc.
        rnnlm: (A',) float32 LM log-probability of each arc (0 on epsilon arcs).
        paths: P, paths scored.
        sentences: unique token sequences run through the model.
        tokens: tokens scored over the unique sequences (``</s>`` included).
    """

    lattice: Lattice
    arc_map: Tensor
    rnnlm: Tensor
    paths: int
    sentences: int
    tokens: int


def paths_lattice(lat: Lattice, nb: Nbest) -> tuple[Lattice, Tensor]:
    """Each lattice's n-best paths as one lattice: N chains from the start to the final state.

    Args:
        lat: a batch of L lattices.
        nb: ``nbest(lat, ...)``.
    Returns:
        the batch of L path lattices (path p's arcs in order, path after path), and its (A',)
        map to arcs of ``lat``.
    """
    num_paths = nb.path_splits[1:] - nb.path_splits[:-1]  # (L,)
    path_lattice = torch.repeat_interleave(torch.arange(lat.num_lattices), num_paths)
    length = nb.arc_splits[1:] - nb.arc_splits[:-1]  # (P,) arcs per path, >= 1
    inner = length - 1  # states strictly inside each path
    inner_per_lattice = torch.zeros(lat.num_lattices, dtype=torch.int64).index_add_(
        0, path_lattice, inner)
    state_splits = splits_of(inner_per_lattice + 2)
    inner_before = torch.cumsum(inner, 0) - inner  # over all paths
    base = (state_splits[path_lattice] + 1 + inner_before
            - inner_before[nb.path_splits[:-1]][path_lattice])  # first inner state of a path
    path_of = torch.repeat_interleave(torch.arange(length.shape[0]), length)  # (X,)
    pos = torch.arange(nb.arcs.shape[0]) - nb.arc_splits[path_of]
    start = state_splits[path_lattice[path_of]]
    final = state_splits[path_lattice[path_of] + 1] - 1
    src = torch.where(pos == 0, start, base[path_of] + pos - 1)
    last = pos == length[path_of] - 1
    dst = torch.where(last, final, base[path_of] + pos)
    orig = nb.arcs
    state_map = torch.empty(int(state_splits[-1]), dtype=torch.int64)
    state_map[src] = lat.src[orig]
    state_map[dst] = lat.dst[orig]
    arcs_per_lattice = torch.zeros(lat.num_lattices, dtype=torch.int64).index_add_(
        0, path_lattice, length)
    out = derive(lat, src, dst, orig, state_map, state_splits, splits_of(arcs_per_lattice))
    return out, orig


@torch.no_grad()
def sentence_log_probs(model: LanguageModel, sentences: Tensor, lengths: Tensor, bos: int,
                       eos: int, order: int | None, chunk: int = BLOCK_ROWS) -> Tensor:
    """log p(token | <s> and the tokens before it) at each position of padded sentences.

    Args:
        sentences: (N, T) token ids, right-padded (any id past ``lengths``).
        lengths: (N,) tokens of each sentence.
        order: None for the exact recurrence, else the fixed-point order K.
        chunk: about this many positions per model call (sentences sorted by length first).
    Returns:
        (N, T+1) float32 log-probabilities; column ``lengths[i]`` holds ``</s>``, later
        columns 0.
    """
    device = model.device
    num, width = sentences.shape
    out = torch.zeros(num, width + 1, dtype=torch.float32)
    by_len = torch.argsort(lengths, descending=True)
    c = 0
    while c < num:
        rows = max(1, chunk // (int(lengths[by_len[c]]) + 1))
        idx = by_len[c: c + rows]
        t = int(lengths[idx[0]]) + 1  # <s> + the longest sentence of the chunk
        inputs = torch.cat([torch.full((idx.shape[0], 1), bos), sentences[idx, : t - 1]], 1)
        targets = torch.cat([sentences[idx, : t - 1], torch.zeros(idx.shape[0], 1,
                                                                    dtype=torch.int64)], 1)
        targets[torch.arange(idx.shape[0]), lengths[idx]] = eos
        valid = torch.arange(t) <= lengths[idx, None]
        starts = torch.zeros_like(inputs, dtype=torch.bool)
        starts[:, 0] = True
        log_probs, _ = model.sequence_log_probs(inputs.to(device), targets.to(device),
                                                valid.to(device), starts.to(device), order)
        out[idx, :t] = log_probs.cpu()
        c += rows
    return out


def nbest_scores(model: LanguageModel, lat: Lattice, table: TokenTable, num_paths: int,
                 bos: int, eos: int, order: int | None, weights: Weights = Weights(0.1),
                 chunk: int = BLOCK_ROWS) -> NbestScores:
    """The ``num_paths`` best first-pass paths of each lattice, scored as sentences.

    Args:
        model: the LM.
        lat: a batch of connected lattices.
        table: lattice label -> LM tokens.
        num_paths: N.
        bos, eos: LM ids of ``<s>`` and ``</s>``.
        order: None for the exact recurrence, else the fixed-point order K.
        weights: the first-pass score that ranks the paths.
        chunk: about this many positions per model call.
    Returns:
        the paths lattice with per-arc LM scores.
    """
    nb = nbest(lat, num_paths, weights)
    paths, arc_map = paths_lattice(lat, nb)
    num = nb.score.shape[0]
    length = nb.arc_splits[1:] - nb.arc_splits[:-1]
    path_of_arc = torch.repeat_interleave(torch.arange(num), length)
    labels = paths.label
    word = labels.clamp(min=0)
    ntok = torch.where(labels > 0, table.splits[word + 1] - table.splits[word], 0)
    tok_arc = torch.repeat_interleave(torch.arange(paths.num_arcs), ntok)  # (X,) arc of token
    tokens = table.values[ragged_arange(table.splits[word], ntok)]
    tok_path = path_of_arc[tok_arc]
    tok_count = torch.bincount(tok_path, minlength=num)
    tok_pos = torch.arange(tokens.shape[0]) - (torch.cumsum(tok_count, 0) - tok_count)[tok_path]
    width = int(tok_count.max()) if num else 0
    padded = torch.zeros(num, width, dtype=torch.int64)
    padded[tok_path, tok_pos] = tokens
    unique, inverse = unique_rows(torch.cat([tok_count[:, None], padded], 1))
    log_probs = sentence_log_probs(model, unique[:, 1:], unique[:, 0], bos, eos, order, chunk)
    rnnlm = torch.zeros(paths.num_arcs, dtype=torch.float32)
    rnnlm.index_add_(0, tok_arc, log_probs[inverse[tok_path], tok_pos])
    final_arc = nb.arc_splits[1:] - 1  # the last arc of each path goes into the final state
    rnnlm.index_add_(0, final_arc, log_probs[inverse, tok_count])
    return NbestScores(lattice=paths, arc_map=arc_map, rnnlm=rnnlm, paths=num,
                       sentences=unique.shape[0], tokens=int(unique[:, 0].sum()) + unique.shape[0])
