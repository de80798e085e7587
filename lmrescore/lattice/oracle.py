"""Oracle path: the lattice path with the fewest word errors against a reference.

Edit-distance composition of each lattice with its reference, as a dynamic programme over
(state, reference position), one topological level at a time for all lattices of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.ragged import ragged_lists
from lmrescore.lattice.nbest import assemble_paths
from lmrescore.lattice.topsort import levels, no_path_error

_INF = 1 << 30  # more errors than any path can have
_PAD = -2  # reference padding: matches no label


@dataclass
class Oracle:
    """The oracle path of each of L lattices.

    Attributes:
        errors: (L,) int64 word errors (insertions + deletions + substitutions) of the path.
        arcs: (N,) int64 arc ids of the paths, start to final: [lattice][arc].
        arc_splits: (L+1,) row splits of ``arcs``.
        words: (W,) int64 word ids (labels > 0) of the paths: [lattice][word].
        word_splits: (L+1,) row splits of ``words``.
    """

    errors: Tensor
    arcs: Tensor
    arc_splits: Tensor
    words: Tensor
    word_splits: Tensor

    def word_lists(self) -> list[list[int]]:
        """The word ids of each lattice's oracle path as Python lists."""
        return ragged_lists(self.words, self.word_splits)


def _pad_refs(refs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """(L, R) int64 references padded with ``_PAD`` (R >= 1) and (L,) their lengths."""
    lengths = torch.tensor([len(r) for r in refs], dtype=torch.int64)
    padded = torch.full((len(refs), max([1] + lengths.tolist())), _PAD, dtype=torch.int64)
    for i, r in enumerate(refs):
        padded[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.int64)
    return padded, lengths


def _arc_costs(lat: Lattice, arcs: Tensor, cost: Tensor, ref: Tensor,
               arc_lattice: Tensor) -> Tensor:
    """(n, R+1) errors to reach each position through each arc (before deletions at its end).

    Word arcs match or substitute ``ref[j-1]`` (from position j-1) or insert (from j); epsilon
    and final arcs keep the position.

    Args:
        lat: the lattice batch.
        arcs: (n,) arc ids.
        cost: (S, R+1) int32 errors of the states (complete for the arcs' sources).
        ref: (L, R) padded references.
        arc_lattice: (A,) lattice of each arc.
    """
    label = lat.label[arcs]
    from_src = cost[lat.src[arcs]]
    sub = torch.full_like(from_src, _INF)
    wrong = ref[arc_lattice[arcs]] != label.unsqueeze(1)
    sub[:, 1:] = from_src[:, :-1] + wrong.to(from_src.dtype)
    word = torch.minimum(from_src + 1, sub)
    return torch.where((label > 0).unsqueeze(1), word, from_src)


def oracle_path(lat: Lattice, refs: Sequence[Sequence[int]]) -> Oracle:
    """The path of each lattice with the fewest word errors against its reference.

    Ties go to the arc with the highest id; deletions are placed as late as possible.

    Args:
        lat: a batch of L lattices with S states.
        refs: L reference word-id sequences (R = the longest).
    Returns:
        Errors, arcs and words of each lattice's oracle path.
    Raises:
        InputError: a lattice has a cycle or no path from start to final state.
    """
    assert len(refs) == lat.num_lattices, "one reference per lattice"
    lv = levels(lat)
    ref, ref_len = _pad_refs(refs)
    width = ref.shape[1] + 1
    positions = torch.arange(width, dtype=torch.int32)
    cost = torch.full((lat.num_states, width), _INF, dtype=torch.int32)
    nonempty = lat.nonempty()
    cost[lat.start_states[nonempty]] = positions  # deletions before the first arc
    back = torch.full((lat.num_states, width), -1, dtype=torch.int64)
    arc_lattice = lat.arc_lattice()
    for k in range(1, lv.num_levels):
        arcs, group, states = lv.by_dst.level(k)
        cand = _arc_costs(lat, arcs, cost, ref, arc_lattice)
        index = group.unsqueeze(1).expand(-1, width)
        arrive = cost[states].scatter_reduce(0, index, cand, "amin")
        wins = cand == arrive[group]
        back[states] = back[states].scatter_reduce(
            0, index, torch.where(wins, arcs.unsqueeze(1), -1), "amax")
        # deletions at the state: cost[j] = min over i <= j of arrive[i] + (j - i)
        cost[states] = torch.cummin(arrive - positions, 1).values + positions
    errors = torch.full((lat.num_lattices,), _INF, dtype=torch.int64)
    errors[nonempty] = cost[lat.final_states[nonempty], ref_len[nonempty]].long()
    if (errors >= _INF).any():
        raise no_path_error(lat, errors >= _INF)
    return _trace_back(lat, cost, back, ref, ref_len, errors)


def _trace_back(lat: Lattice, cost: Tensor, back: Tensor, ref: Tensor, ref_len: Tensor,
                errors: Tensor) -> Oracle:
    """Walk back from (final state, reference length) to (start state, 0), all lattices at once.

    Args:
        lat: the lattice batch.
        cost: (S, R+1) errors of each (state, position).
        back: (S, R+1) best arc into each (state, position), before deletions; -1 for none.
        ref: (L, R) padded references; ref_len: (L,) their lengths.
        errors: (L,) the oracle errors.
    """
    arc_lattice = lat.arc_lattice()
    num = lat.num_lattices
    state, pos = lat.final_states.clone(), ref_len.clone()
    step = torch.zeros(num, dtype=torch.int64)
    active = torch.arange(num)
    path_ids, steps, step_arcs = [], [], []
    while active.numel():
        here = cost[state, pos]
        prev = (pos - 1).clamp(min=0)
        delete = (pos > 0) & (here == cost[state, prev] + 1)
        arc = torch.where(delete, -1, back[state, pos])
        moving = arc >= 0
        arc = arc.clamp(min=0)
        path_ids.append(active[moving])
        steps.append(step[moving])
        step_arcs.append(arc[moving])
        # a word arc came from position p-1 when that gives exactly `here` (match/substitution)
        src = lat.src[arc]
        wrong = ref[arc_lattice[arc], prev] != lat.label[arc]
        from_prev = (lat.label[arc] > 0) & (pos > 0) & (cost[src, prev] + wrong.int() == here)
        pos = torch.where(delete | (moving & from_prev), pos - 1, pos)
        state = torch.where(moving, src, state)
        step = step + moving.long()
        alive = delete | moving  # neither: the start state at position 0
        active, state, pos, step = active[alive], state[alive], pos[alive], step[alive]
    arcs, arc_splits, words, word_splits = assemble_paths(
        lat, num, torch.cat(path_ids), torch.cat(steps), torch.cat(step_arcs))
    return Oracle(errors=errors, arcs=arcs, arc_splits=arc_splits, words=words,
                  word_splits=word_splits)
