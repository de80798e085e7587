"""Determinization of word lattices with Kaldi's lattice semantics, batched over the whole batch.

A decoder's lattice holds the same word sequence along many paths (other timings, other
alignments); expanding such a lattice to LM histories multiplies them. ``determinize`` keeps,
for each word sequence, ONE path, scored as the best original path with that word sequence
under the weighted score (``Weights.arc_scores``), with the winner's own split into score
columns ("am", "lm", ...) and the winner's arcs: Kaldi's ``LatticeWeight`` compares by the
weighted sum and keeps both parts, and its determinizer keeps the winner's string of
transition ids. Two steps:

1. ``remove_epsilons`` (lattice/epsilon.py): each arc stands for a best epsilon path and a word.
2. Subset construction by depth (words read): a det-state is a set of (original state,
   residual score, residual string) members, sorted by state; a member's string is the arcs of
   its best path that no det arc carries yet. All members of all det-states found at one depth
   are expanded through their out-arcs at once, grouped by (det-state, word); per destination
   the best path wins, residual scores are taken relative to the best destination (whose score
   goes on the det arc), the strings' common prefix goes on the det arc and the rest stays in
   the members (the strings of one det-state's members all have one length, the words read
   since the prefix), and each subset is looked up by a hash of its states, residual scores
   quantized by ``delta`` and residual strings (then checked member by member) among the
   det-states of every depth and lattice.

The arcs into the final state (label -1) are handled as words: they lead to the det-state
{final state}, so a det-state's final weight is the best (residual + final arc) of its members,
and its one member's whole string goes on the -1 arc. Along any det path the arcs' strings
concatenate to the arcs of the best original path with its words, so the ragged attributes
(Kaldi transition ids) concatenate to that path's; as in Kaldi, a det arc's string need not
hold its own word's arcs. A det arc's ``arc_attrs`` are those of the word arc of the best
member of its (det-state, word) group (its arc map); a det-state's ``state_attrs`` are those of
its best member's state.

Residual strings are compared by their arcs' ragged-attribute values (``strings.py``), so, as in
Kaldi, subsets whose members' pending transition ids differ stay apart: a lattice with
transition ids can determinize to more states than the same lattice without them (drop
``ragged_arc_attrs`` first to determinize by words and scores alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.epsilon import (best_per_key, epsilon_free, group_argmax, out_arcs,
                                       score_matrix)
from lmrescore.lattice.lattice import Lattice, derive
from lmrescore.lattice.ragged import ragged_arange, splits_of, take_rows
from lmrescore.lattice.strings import arc_contents, split_strings, string_hash
from lmrescore.lattice.weights import Weights

_P = 2_147_483_647  # 2^31 - 1: hash lanes are computed mod P, so int64 products never overflow
_LANES = (1_000_003, 998_244_353)  # multiplier of each of the two hash lanes (one 62-bit key)


def determinize(lat: Lattice, weights: Weights = Weights(), delta: float = 1 / 1024,
                max_states: int | None = None) -> tuple[Lattice, Tensor]:
    """One path per word sequence, with the best weighted score (Kaldi's lattice-determinize).

    No state of the result has two out-arcs with the same label and there are no epsilons. The
    scores of a word sequence's path are those of the best original path with those words
    (best by ``acoustic_scale * am + lm_scale * lm - word_ins_penalty * words``; all paths of a
    word sequence have the same words, so the penalty never changes the winner), up to ``delta``
    per det-state merge. Score columns other than "am" and "lm" follow the winner too, and so
    do the ragged attributes: along the path, they concatenate to the winner's (its transition
    ids, epsilon arcs' included).

    Args:
        lat: a batch of L acyclic lattices, each with a path; score columns include "am", "lm".
        weights: the weighted score (``Weights.arc_scores``).
        delta: residual scores are quantized by ``delta`` to tell det-states apart.
        max_states: raise if a lattice's result passes this many states.
    Returns:
        A batch of the same L lattices (``utt_ids``, ``symbols`` kept; attributes carried as
        above) and its (A',) arc map: for each det arc, the word arc of ``lat`` of the best
        member of its group (whose ``arc_attrs`` it carries).
    Raises:
        InputError: a lattice has a cycle, no path, a non-finite score, or passes ``max_states``
            (the message names the utterance).
    """
    vals = score_matrix(lat, weights)
    eps_free, eps_map, vals = epsilon_free(lat, vals)
    det, det_map = _subset_construction(eps_free, vals, delta, max_states)
    return det, eps_map[det_map]


@dataclass
class _Members:
    """Members of subsets, ragged [subset][member], sorted by state.

    Attributes:
        state: (M,) original state of each member.
        quant: (M, C) int64 its residual score columns quantized.
        splits: (N+1,) row splits of the members by subset.
        string: (X,) its residual string: arcs of the lattice, ragged [member][arc].
        string_splits: (M+1,) row splits of ``string`` by member.
    """

    state: Tensor
    quant: Tensor
    splits: Tensor
    string: Tensor
    string_splits: Tensor

    @property
    def num(self) -> int:
        return self.splits.shape[0] - 1

    def take(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Members of subsets ``rows`` (K,): (k,) member ids, (K+1,) splits, strings, splits."""
        size = self.splits[rows + 1] - self.splits[rows]
        members = ragged_arange(self.splits[rows], size)
        return members, splits_of(size), *take_rows(self.string, self.string_splits, members)


@dataclass
class _Subsets(_Members):
    """A growing table of subsets.

    Attributes:
        keys: (N,) the subsets' hash keys, ascending.
        key_subset: (N,) the subset of each entry of ``keys``.
        content: (A,) ``arc_contents`` of the lattice's arcs: strings are compared by them.
    """

    keys: Tensor
    key_subset: Tensor
    content: Tensor

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
        length = cand.string_splits[a + 1] - cand.string_splits[a]
        differ = ((cand.state[a] != self.state[b]) | (cand.quant[a] != self.quant[b]).any(1)
                  | (length != self.string_splits[b + 1] - self.string_splits[b]))
        differ = differ.long()
        if cand.string.numel():  # members equal so far: compare their strings
            both = (differ == 0).nonzero().squeeze(1)
            arc_a = cand.string[ragged_arange(cand.string_splits[a[both]], length[both])]
            arc_b = self.string[ragged_arange(self.string_splits[b[both]], length[both])]
            differ.index_add_(0, torch.repeat_interleave(both, length[both]),
                              (self.content[arc_a] != self.content[arc_b]).long())
        pair = torch.repeat_interleave(torch.arange(pick.shape[0]), size[pick])
        bad = torch.zeros(pick.shape[0], dtype=torch.int64).index_add_(0, pair, differ)
        same[pick] = bad == 0
        return same

    def _append(self, cand: "_Candidates", rows: Tensor) -> Tensor:
        """Add candidates ``rows`` as new subsets; returns their (k,) ids."""
        members, splits, string, string_splits = cand.take(rows)
        ids = torch.arange(self.num, self.num + rows.shape[0])
        self.state = torch.cat([self.state, cand.state[members]])
        self.quant = torch.cat([self.quant, cand.quant[members]])
        self.splits = torch.cat([self.splits, self.splits[-1] + splits[1:]])
        self.string = torch.cat([self.string, string])
        self.string_splits = torch.cat([self.string_splits,
                                        self.string_splits[-1] + string_splits[1:]])
        keys = torch.cat([self.keys, cand.keys[rows]])
        order = torch.argsort(keys, stable=True)
        self.keys, self.key_subset = keys[order], torch.cat([self.key_subset, ids])[order]
        return ids


@dataclass
class _Candidates(_Members):
    """Subsets reached at one depth.

    Attributes:
        residual: (M, 1+C) float64 each member's score relative to the candidate's best member.
        keys: (n,) hash key of each candidate (a function of its states, ``quant`` and the
            contents of its strings).
    """

    residual: Tensor
    keys: Tensor

    @classmethod
    def build(cls, state: Tensor, residual: Tensor, splits: Tensor, string: Tensor,
              string_splits: Tensor, content: Tensor, delta: float) -> "_Candidates":
        """Quantize the residuals and hash each candidate (a set hash: sum over members)."""
        quant = torch.round(residual[:, 1:] / delta).long()
        size = splits[1:] - splits[:-1]
        member_of = torch.repeat_interleave(torch.arange(size.shape[0]), size)
        strings = string_hash(string, string_splits, content, _LANES[0], _P)
        quant_string = torch.cat([quant, strings[:, None]], 1)
        key = torch.zeros(size.shape[0], dtype=torch.int64)
        for mult in _LANES:
            h = state % _P
            for j in range(quant_string.shape[1]):
                h = (h * mult + quant_string[:, j] % _P) % _P
            h = (h * h + mult) % _P  # nonlinear, so that the sum over members mixes
            total = torch.zeros(size.shape[0], dtype=torch.int64).index_add_(0, member_of, h)
            key = key * _P + (total % _P * mult + size) % _P
        return cls(state, quant, splits, string, string_splits, residual, key)


def _subset_construction(lat: Lattice, vals: Tensor, delta: float,
                         max_states: int | None) -> tuple[Lattice, Tensor]:
    """Determinize an epsilon-free batch, one depth (words read) per step.

    Args:
        lat: a trimmed, epsilon-free batch of L lattices with S states and A arcs.
        vals: (A, 1+C) float64 arc score rows, column 0 the weighted score.
        delta: quantization step of the residuals.
        max_states: raise if a lattice passes this many det-states.
    Returns:
        The det batch (attributes carried from ``lat``) and its (A',) map to arcs of ``lat``.
    """
    order, counts, starts = out_arcs(lat.src, lat.num_states)
    content = arc_contents(lat)
    state_lattice = lat.state_lattice()
    start = lat.start_states[lat.nonempty()]
    zero = torch.zeros(1, dtype=torch.int64)
    first = _Candidates.build(start, torch.zeros(start.shape[0], vals.shape[1],
                                                 dtype=torch.float64),
                              torch.arange(start.shape[0] + 1), zero[:0],
                              torch.zeros(start.shape[0] + 1, dtype=torch.int64), content,
                              delta)
    table = _Subsets(state=zero[:0], quant=first.quant[:0], splits=zero, string=zero[:0],
                     string_splits=zero, keys=zero[:0], key_subset=zero[:0], content=content)
    f_det, _ = table.resolve(first)  # ids 0..num_starts-1
    best_state = [start]  # the state of each det-state's best member
    # frontier: the members of the det-states first found at the current depth
    f_state, f_res, f_string, f_string_splits = start, first.residual, first.string, \
        first.string_splits
    # det arcs: src, dst, score rows, best member's arc, strings (values, lengths)
    arcs_out = [(zero[:0], zero[:0], vals[:0], zero[:0], zero[:0], zero[:0])]
    depth = 0
    while f_det.numel():
        arcs = order[ragged_arange(starts[f_state], counts[f_state])]
        rep = torch.repeat_interleave(torch.arange(f_det.shape[0]), counts[f_state])
        score = f_res[rep] + vals[arcs]
        # best per (det-state, word, destination); groups come sorted in that order
        win, key = best_per_key(torch.stack([f_det[rep], lat.label[arcs], lat.dst[arcs]], 1),
                                score)
        score, arcs = score[win], arcs[win]
        new_trans = torch.ones(key.shape[0], dtype=torch.bool)
        new_trans[1:] = (key[1:, :2] != key[:-1, :2]).any(1)
        trans = torch.cumsum(new_trans, 0) - 1  # (det-state, word) transition of each member
        num_trans = int(trans[-1]) + 1 if trans.numel() else 0
        top = group_argmax(score[:, 0], trans, num_trans)
        best = score[top]
        size = torch.bincount(trans, minlength=num_trans)
        heads = new_trans.nonzero().squeeze(1)
        emitted, string, string_splits = split_strings(
            *take_rows(f_string, f_string_splits, rep[win]), arcs, trans, heads, content)
        cand = _Candidates.build(key[:, 2], score - best[trans], splits_of(size), string,
                                 string_splits, content, delta)
        dst, added = table.resolve(cand)
        arcs_out.append((key[heads, 0], dst, best, arcs[top], *emitted))
        best_state.append(key[top[added], 2])
        members, _, f_string, f_string_splits = cand.take(added)
        f_det = torch.repeat_interleave(dst[added], size[added])
        f_state, f_res = cand.state[members], cand.residual[members]
        depth += 1
        if max_states is not None:
            _check_size(lat, state_lattice[table.state[table.splits[:-1]]], max_states, depth)
    return _assemble(lat, table, [torch.cat(x) for x in zip(*arcs_out)], torch.cat(best_state),
                     start.shape[0])


def _check_size(lat: Lattice, subset_lattice: Tensor, max_states: int, depth: int) -> None:
    """Raise ``InputError`` naming the first lattice with more than ``max_states`` det-states."""
    over = (torch.bincount(subset_lattice, minlength=lat.num_lattices) > max_states)
    if over.any():
        utts = [lat.utt_ids[i] for i in over.nonzero().squeeze(1).tolist()]
        raise InputError(f"utterance {utts[0]}: determinization passed {max_states} states "
                         f"after {depth} words; prune harder (smaller --beam) or rescore it "
                         f"undeterminized; lattices over the limit: {', '.join(utts)}")


def _assemble(lat: Lattice, table: _Subsets, arcs: list[Tensor], best_state: Tensor,
              num_starts: int) -> tuple[Lattice, Tensor]:
    """The det lattice: states numbered lattice by lattice, start first and final last.

    Args:
        lat: the epsilon-free batch that was determinized.
        table: the det-states; the first ``num_starts`` are the start states.
        arcs: the det arcs (A',): src and dst det-state ids, (A', 1+C) float64 score rows, the
            arc of ``lat`` of the best member, and ragged [det arc][arc of ``lat``] (values,
            (A',) lengths): the arcs whose strings each det arc carries.
        best_state: (N,) the state of ``lat`` of each det-state's best member.
    Returns:
        The det batch and its (A',) map to arcs of ``lat``.
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
    src, dst, vals, arc_map, string, string_length = arcs
    src, dst = new_id[src], new_id[dst]
    by_src = torch.argsort(src, stable=True)
    state_counts = torch.bincount(det_lattice, minlength=lat.num_lattices)
    arc_counts = torch.bincount(det_lattice[order][src], minlength=lat.num_lattices)
    det = derive(lat, src[by_src], dst[by_src], arc_map[by_src], best_state[order],
                 splits_of(state_counts), splits_of(arc_counts),
                 scores={k: vals[by_src, 1 + j].float() for j, k in enumerate(lat.scores)},
                 arc_strings=take_rows(string, splits_of(string_length), by_src))
    return det, arc_map[by_src]
