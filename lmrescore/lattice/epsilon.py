"""Epsilon removal in the tropical semiring, keeping the best path's arcs (Kaldi's string).

Epsilon closures are grown one epsilon arc at a time for the whole batch (best (start, end)
pair per step, with a pointer to the pair it extends; the longest epsilon chain bounds the
steps). Each closure pair is joined with the non-epsilon arcs leaving its end, and parallel
(src, label, dst) arcs are merged to the best. A new arc stands for its best epsilon path and
its word arc: it carries the word arc's label and ``arc_attrs`` and the concatenated
``ragged_arc_attrs`` (Kaldi transition ids) of all those arcs, like a CompactLattice arc.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice, derive
from lmrescore.lattice.ragged import ragged_arange, splits_of, unique_rows
from lmrescore.lattice.topsort import connect, levels, require_paths
from lmrescore.lattice.weights import Weights


def remove_epsilons(lat: Lattice, weights: Weights = Weights()) -> tuple[Lattice, Tensor]:
    """An equivalent lattice without epsilon arcs (label 0), in the tropical semiring.

    Every word sequence keeps its best weighted score and the winner's score columns; parallel
    arcs with the same (src, label, dst) are merged to the best.

    Args:
        lat: a batch of L acyclic lattices, each with a path.
        weights: how arc scores are weighted.
    Returns:
        A trimmed batch of the same L lattices with only word and -1 arcs, attributes carried
        (ragged ones concatenated over each arc's epsilon path and word arc), and its (A',)
        map to the word arcs of ``lat``.
    Raises:
        InputError: a lattice has a cycle, no path or a non-finite score.
    """
    out, arc_map, _ = epsilon_free(lat, score_matrix(lat, weights))
    return out, arc_map


def score_matrix(lat: Lattice, weights: Weights) -> Tensor:
    """(A, 1+C) float64: the weighted score, then the C score columns of ``lat`` in key order.

    Raises:
        InputError: a cycle, no path, or a non-finite score (naming the utterance).
    """
    require_paths(lat, levels(lat))
    vals = torch.stack([weights.arc_scores(lat)]
                       + [v.double() for v in lat.scores.values()], dim=1)
    bad = (~torch.isfinite(vals).all(1)).nonzero().squeeze(1)
    if bad.numel():
        a = int(bad[0])
        i = int(lat.arc_lattice()[a])
        raise InputError(f"utterance {lat.utt_ids[i]}: arc {a - int(lat.arc_splits[i])} has a "
                         f"non-finite score; cannot determinize")
    return vals


def group_argmax(values: Tensor, group: Tensor, num_groups: int) -> Tensor:
    """(G,) index of the largest value of each group (ties: the highest index).

    Args:
        values: (n,) float64.
        group: (n,) int64 in ``0..G-1``, every group non-empty.
    """
    top = torch.full((num_groups,), -torch.inf, dtype=values.dtype)
    top.scatter_reduce_(0, group, values, "amax")
    wins = (values == top[group]).nonzero().squeeze(1)
    idx = torch.full((num_groups,), -1, dtype=torch.int64)
    return idx.scatter_reduce_(0, group[wins], wins, "amax")


def best_per_key(keys: Tensor, vals: Tensor) -> tuple[Tensor, Tensor]:
    """The best row (by ``vals[:, 0]``) of each distinct key row.

    Args:
        keys: (n, k) int64 >= -1.
        vals: (n, 1+C) float64.
    Returns:
        (U,) index of the winning row of each distinct key, keys in lexicographic order;
        (U, k) the distinct keys.
    """
    uniq, inverse = unique_rows(keys)
    return group_argmax(vals[:, 0], inverse, uniq.shape[0]), uniq


def out_arcs(src: Tensor, num_states: int) -> tuple[Tensor, Tensor, Tensor]:
    """Arcs grouped by source: (A,) arc order, (S,) counts, (S,) starts into the order."""
    order = torch.argsort(src, stable=True)
    counts = torch.bincount(src, minlength=num_states)
    return order, counts, torch.cumsum(counts, 0) - counts


def epsilon_free(lat: Lattice, vals: Tensor) -> tuple[Lattice, Tensor, Tensor]:
    """``remove_epsilons`` on score rows.

    Args:
        lat: a batch of acyclic lattices with S states and A arcs.
        vals: (A, 1+C) float64 arc scores, column 0 the weighted score.
    Returns:
        The epsilon-free, trimmed batch (A' arcs), its (A',) map to the word arcs of ``lat``
        and its (A', 1+C) float64 score rows.
    """
    num_states = lat.num_states
    eps_arcs = (lat.label == 0).nonzero().squeeze(1)
    order, counts, starts = out_arcs(lat.src[eps_arcs], num_states)
    # closure pairs (frm, to, score of the best epsilon path frm -> to, its length, the pair it
    # extends by its last epsilon arc), one epsilon step a round; pair ids run over all rounds
    frm = torch.arange(num_states)
    to, score = frm, torch.zeros(num_states, vals.shape[1], dtype=torch.float64)
    none = torch.full((num_states,), -1, dtype=torch.int64)
    pairs = [(frm, to, score, torch.zeros_like(frm), none, none)]
    first_id = 0
    while frm.numel():
        arcs = eps_arcs[order[ragged_arange(starts[to], counts[to])]]
        rep = torch.repeat_interleave(torch.arange(frm.shape[0]), counts[to])
        frm, to, score = frm[rep], lat.dst[arcs], score[rep] + vals[arcs]
        win, _ = best_per_key(torch.stack([frm, to], 1), score)
        frm, to, score, parent = frm[win], to[win], score[win], first_id + rep[win]
        first_id += pairs[-1][0].shape[0]
        pairs.append((frm, to, score, torch.full_like(frm, len(pairs)), parent, arcs[win]))
    frm, to, score, length, parent, last = (torch.cat(x) for x in zip(*pairs))
    pair, _ = best_per_key(torch.stack([frm, to], 1), score)

    word_arcs = (lat.label != 0).nonzero().squeeze(1)
    order, counts, starts = out_arcs(lat.src[word_arcs], num_states)
    arcs = word_arcs[order[ragged_arange(starts[to[pair]], counts[to[pair]])]]
    rep = torch.repeat_interleave(pair, counts[to[pair]])
    src, dst, score = frm[rep], lat.dst[arcs], score[rep] + vals[arcs]
    win, _ = best_per_key(torch.stack([src, lat.label[arcs], dst], 1), score)  # sorted by src
    src, dst, score, pair, arcs = src[win], dst[win], score[win], rep[win], arcs[win]
    arc_counts = torch.bincount(lat.state_lattice()[src], minlength=lat.num_lattices)
    eps_free = derive(lat, src, dst, arcs, torch.arange(num_states), lat.state_splits,
                      splits_of(arc_counts),
                      scores={k: score[:, 1 + j].float() for j, k in enumerate(lat.scores)},
                      arc_strings=_strings(pair, arcs, length, parent, last))
    eps_free, arc_map = connect(eps_free)
    return eps_free, arcs[arc_map], score[arc_map]


def _strings(pair: Tensor, word_arc: Tensor, length: Tensor, parent: Tensor,
             last: Tensor) -> tuple[Tensor, Tensor]:
    """Ragged [new arc][arc]: the epsilon path of each new arc's closure pair, then its word arc.

    Args:
        pair: (A',) closure pair of each new arc.
        word_arc: (A',) its word arc.
        length, parent, last: (P,) of every closure pair: its epsilon arcs, the pair it extends
            and its last epsilon arc (-1 for the empty closure of a state).
    """
    splits = splits_of(length[pair] + 1)
    values = torch.empty(int(splits[-1]), dtype=torch.int64)
    values[splits[1:] - 1] = word_arc
    cur, pos = pair, splits[1:] - 2  # fill each epsilon path from its end, one arc a round
    while cur.numel():
        on = last[cur] >= 0
        cur, pos = cur[on], pos[on]
        values[pos] = last[cur]
        cur, pos = parent[cur], pos - 1
    return values, splits
