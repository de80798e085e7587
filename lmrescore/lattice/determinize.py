"""Determinization of word lattices with Kaldi's lattice semantics, batched over the whole batch.

A decoder's lattice holds the same word sequence along many paths (other timings, other
alignments); expanding such a lattice to LM histories multiplies them. ``determinize`` keeps,
for each word sequence, ONE path, scored as the best original path with that word sequence
under the weighted score (``Lattice.weighted_score``), with the winner's own split into score
columns ("am", "lm", ...): Kaldi's ``LatticeWeight`` compares by the weighted sum and keeps both
parts. Two steps:

1. ``remove_epsilons``: epsilon closures grown one epsilon arc at a time for the whole batch
   (best (start, end) pair per step; the longest epsilon chain bounds the steps), each closure
   pair joined with the non-epsilon arcs leaving its end, parallel (src, label, dst) arcs merged
   to the best, then trimmed.
2. Subset construction by depth (words read): a det-state is a set of (original state,
   residual) pairs, sorted by state. All members of all det-states found at one depth are
   expanded through their out-arcs at once, grouped by (det-state, word); per destination the
   best score wins, residuals are taken relative to the best destination (whose score goes on
   the det arc), and each subset is looked up by a hash of its states and residuals quantized by
   ``delta`` (then checked member by member) among the det-states of every depth and lattice.

The arcs into the final state (label -1) are handled as words: they lead to the det-state
{final state}, so a det-state's final weight is the best (residual + final arc) of its members.
Per-arc and per-state attributes (Kaldi transition ids, times) are dropped: one det arc stands
for many original arcs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.ragged import ragged_arange
from lmrescore.lattice.ragged import unique_rows
from lmrescore.lattice.topsort import connect, levels, require_paths

_P = 2_147_483_647  # 2^31 - 1: hash lanes are computed mod P, so int64 products never overflow
_LANES = (1_000_003, 998_244_353)  # multiplier of each of the two hash lanes (one 62-bit key)


def determinize(lat: Lattice, acoustic_scale: float = 1.0, lm_scale: float = 1.0,
                word_ins_penalty: float = 0.0, delta: float = 1 / 1024,
                max_states: int | None = None) -> Lattice:
    """One path per word sequence, with the best weighted score (Kaldi's lattice-determinize).

    No state of the result has two out-arcs with the same label and there are no epsilons. The
    scores of a word sequence's path are those of the best original path with those words
    (best by ``acoustic_scale * am + lm_scale * lm - word_ins_penalty * words``; all paths of a
    word sequence have the same words, so the penalty never changes the winner), up to ``delta``
    per det-state merge. Score columns other than "am" and "lm" follow the winner too.

    Args:
        lat: a batch of L acyclic lattices, each with a path; score columns include "am", "lm".
        acoustic_scale, lm_scale, word_ins_penalty: the weighted score, see
            ``Lattice.weighted_score``.
        delta: residual scores are quantized by ``delta`` to tell det-states apart.
        max_states: raise if a lattice's result passes this many states.
    Returns:
        A batch of the same L lattices; scores as in ``lat``; ``utt_ids`` and ``symbols`` kept,
        ``arc_attrs``, ``state_attrs`` and ``ragged_arc_attrs`` dropped.
    Raises:
        InputError: a lattice has a cycle, no path, a non-finite score, or passes ``max_states``
            (the message names the utterance).
    """
    vals = _score_matrix(lat, acoustic_scale, lm_scale, word_ins_penalty)
    eps_free, vals = _remove_epsilons(lat, vals)
    return _subset_construction(eps_free, vals, delta, max_states)


def remove_epsilons(lat: Lattice, acoustic_scale: float = 1.0, lm_scale: float = 1.0,
                    word_ins_penalty: float = 0.0) -> Lattice:
    """An equivalent lattice without epsilon arcs (label 0), in the tropical semiring.

    Every word sequence keeps its best weighted score and the winner's score columns; parallel
    arcs with the same (src, label, dst) are merged to the best.

    Args:
        lat: a batch of L acyclic lattices, each with a path.
        acoustic_scale, lm_scale, word_ins_penalty: see ``Lattice.weighted_score``.
    Returns:
        A trimmed batch of the same L lattices with only word and -1 arcs; attributes dropped.
    Raises:
        InputError: a lattice has a cycle, no path or a non-finite score.
    """
    return _remove_epsilons(lat, _score_matrix(lat, acoustic_scale, lm_scale,
                                               word_ins_penalty))[0]


def _score_matrix(lat: Lattice, acoustic_scale: float, lm_scale: float,
                  word_ins_penalty: float) -> Tensor:
    """(A, 1+C) float64: the weighted score, then the C score columns of ``lat`` in key order.

    Raises:
        InputError: a cycle, no path, or a non-finite score (naming the utterance).
    """
    require_paths(lat, levels(lat))
    vals = torch.stack([lat.weighted_score(acoustic_scale, lm_scale, word_ins_penalty)]
                       + [v.double() for v in lat.scores.values()], dim=1)
    bad = (~torch.isfinite(vals).all(1)).nonzero().squeeze(1)
    if bad.numel():
        a = int(bad[0])
        i = int(lat.arc_lattice()[a])
        raise InputError(f"utterance {lat.utt_ids[i]}: arc {a - int(lat.arc_splits[i])} has a "
                         f"non-finite score; cannot determinize")
    return vals


def _group_argmax(values: Tensor, group: Tensor, num_groups: int) -> Tensor:
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


def _best_per_key(keys: Tensor, vals: Tensor) -> tuple[Tensor, Tensor]:
    """The best row (by ``vals[:, 0]``) of each distinct key row.

    Args:
        keys: (n, k) int64 >= -1.
        vals: (n, 1+C) float64.
    Returns:
        (U,) index of the winning row of each distinct key, keys in lexicographic order;
        (U, k) the distinct keys.
    """
    uniq, inverse = unique_rows(keys)
    return _group_argmax(vals[:, 0], inverse, uniq.shape[0]), uniq


def _out_arcs(src: Tensor, num_states: int) -> tuple[Tensor, Tensor, Tensor]:
    """Arcs grouped by source: (A,) arc order, (S,) counts, (S,) starts into the order."""
    order = torch.argsort(src, stable=True)
    counts = torch.bincount(src, minlength=num_states)
    return order, counts, torch.cumsum(counts, 0) - counts


def _remove_epsilons(lat: Lattice, vals: Tensor) -> tuple[Lattice, Tensor]:
    """``remove_epsilons`` on score rows.

    Args:
        lat: a batch of acyclic lattices with S states and A arcs.
        vals: (A, 1+C) float64 arc scores, column 0 the weighted score.
    Returns:
        The epsilon-free, trimmed batch (A' arcs) and its (A', 1+C) float64 score rows.
    """
    num_states = lat.num_states
    eps_arcs = (lat.label == 0).nonzero().squeeze(1)
    order, counts, starts = _out_arcs(lat.src[eps_arcs], num_states)
    # closure pairs (frm, to, score of the best epsilon path frm -> to), one epsilon step a round
    frm = torch.arange(num_states)
    to, score = frm, torch.zeros(num_states, vals.shape[1], dtype=torch.float64)
    pairs = [(frm, to, score)]
    while frm.numel():
        arcs = eps_arcs[order[ragged_arange(starts[to], counts[to])]]
        rep = torch.repeat_interleave(torch.arange(frm.shape[0]), counts[to])
        frm, to, score = frm[rep], lat.dst[arcs], score[rep] + vals[arcs]
        win, _ = _best_per_key(torch.stack([frm, to], 1), score)
        frm, to, score = frm[win], to[win], score[win]
        pairs.append((frm, to, score))
    frm, to, score = (torch.cat(x) for x in zip(*pairs))
    win, _ = _best_per_key(torch.stack([frm, to], 1), score)
    frm, to, score = frm[win], to[win], score[win]

    word_arcs = (lat.label != 0).nonzero().squeeze(1)
    order, counts, starts = _out_arcs(lat.src[word_arcs], num_states)
    arcs = word_arcs[order[ragged_arange(starts[to], counts[to])]]
    rep = torch.repeat_interleave(torch.arange(frm.shape[0]), counts[to])
    src, label, dst, score = frm[rep], lat.label[arcs], lat.dst[arcs], score[rep] + vals[arcs]
    win, _ = _best_per_key(torch.stack([src, label, dst], 1), score)  # sorted by src
    src, label, dst, score = src[win], label[win], dst[win], score[win]
    arc_counts = torch.bincount(lat.state_lattice()[src], minlength=lat.num_lattices)
    eps_free = Lattice(src=src, dst=dst, label=label,
                       scores={k: score[:, 1 + j].float() for j, k in enumerate(lat.scores)},
                       state_splits=lat.state_splits,
                       arc_splits=torch.cat([torch.zeros(1, dtype=torch.int64),
                                             arc_counts.cumsum(0)]),
                       utt_ids=lat.utt_ids, symbols=lat.symbols)
    eps_free, arc_map = connect(eps_free)
    return eps_free, score[arc_map]


@dataclass
class _Subsets:
    """A growing table of subsets: members ragged [subset][member], sorted by state.

    Attributes:
        state: (M,) original state of each member.
        quant: (M, C) its residual score columns quantized (integers).
        splits: (N+1,) row splits of the members by subset.
        keys: (N,) the subsets' hash keys, ascending.
        key_subset: (N,) the subset of each entry of ``keys``.
    """

    state: Tensor
    quant: Tensor
    splits: Tensor
    keys: Tensor
    key_subset: Tensor

    @property
    def num(self) -> int:
        return self.splits.shape[0] - 1

    def resolve(self, cand: "_Candidates") -> tuple[Tensor, Tensor]:
        """Each candidate's subset id, adding the candidates not in the table.

        Returns:
            (n,) subset id of each candidate; (k,) the candidates that became new subsets,
            in the order of their new ids.
        """
        ids = torch.full((cand.num,), -1, dtype=torch.int64)
        added = []
        todo = torch.arange(cand.num)
        while todo.numel():  # one round, and another for each hash collision met
            ids[todo] = self._lookup(cand, todo)
            todo = todo[ids[todo] < 0]
            _, inverse = torch.unique(cand.keys[todo], return_inverse=True)
            first = torch.full((int(inverse.max()) + 1 if todo.numel() else 0,), cand.num,
                               dtype=torch.int64)
            first.scatter_reduce_(0, inverse, torch.arange(todo.shape[0]), "amin")
            new = todo[torch.sort(first).values]  # new ids in candidate order
            ids[new] = self._append(cand, new)
            added.append(new)
            todo = todo[ids[todo] < 0]
        return ids, torch.cat(added) if added else todo

    def _lookup(self, cand: "_Candidates", rows: Tensor) -> Tensor:
        """(k,) subset id equal to each of the candidates ``rows``, or -1."""
        key = cand.keys[rows]
        lo = torch.searchsorted(self.keys, key)
        hi = torch.searchsorted(self.keys, key, right=True)
        found = torch.full_like(rows, -1)
        for off in range(int((hi - lo).max()) if rows.numel() else 0):
            check = ((lo + off < hi) & (found < 0)).nonzero().squeeze(1)
            subset = self.key_subset[lo[check] + off]
            same = self._same(cand, rows[check], subset)
            found[check[same]] = subset[same]
        return found

    def _same(self, cand: "_Candidates", rows: Tensor, subsets: Tensor) -> Tensor:
        """(k,) bool: candidate ``rows[i]`` has the members of subset ``subsets[i]``."""
        size = cand.splits[rows + 1] - cand.splits[rows]
        same = size == self.splits[subsets + 1] - self.splits[subsets]
        pick = same.nonzero().squeeze(1)
        a = ragged_arange(cand.splits[rows[pick]], size[pick])
        b = ragged_arange(self.splits[subsets[pick]], size[pick])
        differ = (cand.state[a] != self.state[b]) | (cand.quant[a] != self.quant[b]).any(1)
        pair = torch.repeat_interleave(torch.arange(pick.shape[0]), size[pick])
        bad = torch.zeros(pick.shape[0], dtype=torch.int64).index_add_(0, pair, differ.long())
        same[pick] = bad == 0
        return same

    def _append(self, cand: "_Candidates", rows: Tensor) -> Tensor:
        """Add candidates ``rows`` as new subsets; returns their (k,) ids."""
        size = cand.splits[rows + 1] - cand.splits[rows]
        members = ragged_arange(cand.splits[rows], size)
        ids = torch.arange(self.num, self.num + rows.shape[0])
        self.state = torch.cat([self.state, cand.state[members]])
        self.quant = torch.cat([self.quant, cand.quant[members]])
        self.splits = torch.cat([self.splits, self.splits[-1] + size.cumsum(0)])
        keys = torch.cat([self.keys, cand.keys[rows]])
        order = torch.argsort(keys, stable=True)
        self.keys, self.key_subset = keys[order], torch.cat([self.key_subset, ids])[order]
        return ids


@dataclass
class _Candidates:
    """Subsets reached at one depth: members ragged [candidate][member], sorted by state.

    Attributes:
        state: (M,) original state of each member.
        residual: (M, 1+C) float64 its score relative to the candidate's best member.
        quant: (M, C) int64 the residual score columns quantized.
        splits: (n+1,) row splits of the members by candidate.
        keys: (n,) hash key of each candidate (a function of its states and ``quant``).
    """

    state: Tensor
    residual: Tensor
    quant: Tensor
    splits: Tensor
    keys: Tensor

    @property
    def num(self) -> int:
        return self.splits.shape[0] - 1

    @classmethod
    def build(cls, state: Tensor, residual: Tensor, splits: Tensor,
              delta: float) -> "_Candidates":
        """Quantize the residuals and hash each candidate (a set hash: sum over members)."""
        quant = torch.round(residual[:, 1:] / delta).long()
        size = splits[1:] - splits[:-1]
        member_of = torch.repeat_interleave(torch.arange(size.shape[0]), size)
        key = torch.zeros(size.shape[0], dtype=torch.int64)
        for mult in _LANES:
            h = state % _P
            for j in range(quant.shape[1]):
                h = (h * mult + quant[:, j] % _P) % _P
            h = (h * h + mult) % _P  # nonlinear, so that the sum over members mixes
            total = torch.zeros(size.shape[0], dtype=torch.int64).index_add_(0, member_of, h)
            key = key * _P + (total % _P * mult + size) % _P
        return cls(state, residual, quant, splits, key)


def _subset_construction(lat: Lattice, vals: Tensor, delta: float,
                         max_states: int | None) -> Lattice:
    """Determinize an epsilon-free batch, one depth (words read) per step.

    Args:
        lat: a trimmed, epsilon-free batch of L lattices with S states and A arcs.
        vals: (A, 1+C) float64 arc score rows, column 0 the weighted score.
        delta: quantization step of the residuals.
        max_states: raise if a lattice passes this many det-states.
    """
    order, counts, starts = _out_arcs(lat.src, lat.num_states)
    state_lattice = lat.state_lattice()
    start = lat.start_states[lat.nonempty()]
    zero = torch.zeros(1, dtype=torch.int64)
    first = _Candidates.build(start, torch.zeros(start.shape[0], vals.shape[1],
                                                 dtype=torch.float64),
                              torch.arange(start.shape[0] + 1), delta)
    table = _Subsets(state=zero[:0], quant=first.quant[:0], splits=zero,
                     keys=zero[:0], key_subset=zero[:0])
    f_det, _ = table.resolve(first)  # ids 0..num_starts-1
    # frontier: the members of the det-states first found at the current depth
    f_state, f_res = start, first.residual
    arc_src, arc_label, arc_dst, arc_vals = [], [], [], []
    depth = 0
    while f_det.numel():
        arcs = order[ragged_arange(starts[f_state], counts[f_state])]
        rep = torch.repeat_interleave(torch.arange(f_det.shape[0]), counts[f_state])
        score = f_res[rep] + vals[arcs]
        # best per (det-state, word, destination); groups come sorted in that order
        win, key = _best_per_key(torch.stack([f_det[rep], lat.label[arcs], lat.dst[arcs]], 1),
                                 score)
        score = score[win]
        new_trans = torch.ones(key.shape[0], dtype=torch.bool)
        new_trans[1:] = (key[1:, :2] != key[:-1, :2]).any(1)
        trans = torch.cumsum(new_trans, 0) - 1  # (det-state, word) transition of each member
        num_trans = int(trans[-1]) + 1 if trans.numel() else 0
        best = score[_group_argmax(score[:, 0], trans, num_trans)]
        size = torch.bincount(trans, minlength=num_trans)
        cand = _Candidates.build(key[:, 2], score - best[trans],
                                 torch.cat([zero, size.cumsum(0)]), delta)
        dst, added = table.resolve(cand)
        heads = new_trans.nonzero().squeeze(1)
        arc_src.append(key[heads, 0])
        arc_label.append(key[heads, 1])
        arc_dst.append(dst)
        arc_vals.append(best)
        members = ragged_arange(cand.splits[added], size[added])
        f_det = torch.repeat_interleave(dst[added], size[added])
        f_state, f_res = cand.state[members], cand.residual[members]
        depth += 1
        if max_states is not None:
            _check_size(lat, state_lattice[table.state[table.splits[:-1]]], max_states, depth)
    return _assemble(lat, table, torch.cat(arc_src), torch.cat(arc_label), torch.cat(arc_dst),
                     torch.cat(arc_vals), start.shape[0])


def _check_size(lat: Lattice, subset_lattice: Tensor, max_states: int, depth: int) -> None:
    """Raise ``InputError`` naming the first lattice with more than ``max_states`` det-states."""
    over = (torch.bincount(subset_lattice, minlength=lat.num_lattices) > max_states)
    if over.any():
        utts = [lat.utt_ids[i] for i in over.nonzero().squeeze(1).tolist()]
        raise InputError(f"utterance {utts[0]}: determinization passed {max_states} states "
                         f"after {depth} words; prune harder (smaller --beam) or rescore it "
                         f"undeterminized; lattices over the limit: {', '.join(utts)}")


def _assemble(lat: Lattice, table: _Subsets, src: Tensor, label: Tensor, dst: Tensor,
              vals: Tensor, num_starts: int) -> Lattice:
    """The det lattice: states numbered lattice by lattice, start first and final last.

    Args:
        lat: the epsilon-free batch that was determinized.
        table: the det-states; the first ``num_starts`` are the start states.
        src, label, dst: (A',) det arcs (det-state ids).
        vals: (A', 1+C) float64 det arc score rows.
    """
    first_member = table.state[table.splits[:-1]]
    det_lattice = lat.state_lattice()[first_member]
    size = table.splits[1:] - table.splits[:-1]
    rank = torch.ones(table.num, dtype=torch.int64)
    rank[(size == 1) & (first_member == lat.final_states[det_lattice])] = 2
    rank[:num_starts] = 0
    order = torch.argsort(det_lattice * 3 + rank, stable=True)
    new_id = torch.empty_like(order)
    new_id[order] = torch.arange(table.num)
    src, dst = new_id[src], new_id[dst]
    arcs = torch.argsort(src, stable=True)
    zero = torch.zeros(1, dtype=torch.int64)
    state_counts = torch.bincount(det_lattice, minlength=lat.num_lattices)
    arc_counts = torch.bincount(det_lattice[order][src], minlength=lat.num_lattices)
    return Lattice(src=src[arcs], dst=dst[arcs], label=label[arcs],
                   scores={k: vals[arcs, 1 + j].float() for j, k in enumerate(lat.scores)},
                   state_splits=torch.cat([zero, state_counts.cumsum(0)]),
                   arc_splits=torch.cat([zero, arc_counts.cumsum(0)]),
                   utt_ids=lat.utt_ids, symbols=lat.symbols)
