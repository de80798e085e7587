"""Topological levels of a batch of lattices, and connect (trim) over them.

The level of a state is the length in arcs of the longest path reaching it from a state with no
incoming arcs, so every arc goes from a lower to a higher level. Algorithms loop over levels and
process all states of a level, in all lattices of the batch, with one set of tensor ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice, derive
from lmrescore.lattice.ragged import splits_of


@dataclass
class ArcGroups:
    """Arcs sorted by the level of one end state, then by that state: ragged [level][state][arc].

    Attributes:
        order: (A,) arc ids in (level, state) order.
        state: (G,) the grouping state of each group, groups in (level, state) order.
        group_of: (A,) group of each position of ``order``.
        arc_splits: (D+1,) row splits of ``order`` by level.
        group_splits: (D+1,) row splits of the groups by level.
    """

    order: Tensor
    state: Tensor
    group_of: Tensor
    arc_splits: Tensor
    group_splits: Tensor

    def level(self, k: int) -> tuple[Tensor, Tensor, Tensor]:
        """Arcs of level ``k``: (n,) arc ids, (n,) group index local to the level, (g,) states."""
        a0, a1 = int(self.arc_splits[k]), int(self.arc_splits[k + 1])
        g0, g1 = int(self.group_splits[k]), int(self.group_splits[k + 1])
        return self.order[a0:a1], self.group_of[a0:a1] - g0, self.state[g0:g1]


@dataclass
class Levels:
    """Topological levels of a batch of lattices.

    Attributes:
        state_level: (S,) int64 level of each state.
        num_levels: D, one more than the highest level in the batch.
        by_src: arcs grouped by the level of their source state, then by source.
        dst: (A,) destination state of each arc (``by_dst`` is built from it when first used).
    """

    state_level: Tensor
    num_levels: int
    by_src: ArcGroups
    dst: Tensor

    @cached_property
    def by_dst(self) -> ArcGroups:
        """Arcs grouped by the level of their destination state, then by destination."""
        return _group_arcs(self.dst, self.state_level, self.num_levels)


def _group_arcs(key_state: Tensor, state_level: Tensor, num_levels: int) -> ArcGroups:
    """Group arcs by (level of ``key_state``, ``key_state``).

    Args:
        key_state: (A,) the state each arc is grouped by.
        state_level: (S,) level of each state.
        num_levels: D.
    """
    num_states = state_level.shape[0]
    key = state_level[key_state] * num_states + key_state
    order = torch.argsort(key, stable=True)
    key = key[order]
    new_group = torch.ones_like(key, dtype=torch.bool)
    new_group[1:] = key[1:] != key[:-1]
    group_of = torch.cumsum(new_group, 0) - 1
    state = key_state[order][new_group]
    arc_counts = torch.bincount(state_level[key_state], minlength=num_levels)
    group_counts = torch.bincount(state_level[state], minlength=num_levels)
    zero = torch.zeros(1, dtype=torch.int64)
    return ArcGroups(order=order, state=state, group_of=group_of,
                     arc_splits=torch.cat([zero, arc_counts.cumsum(0)]),
                     group_splits=torch.cat([zero, group_counts.cumsum(0)]))


def levels(lat: Lattice) -> Levels:
    """Topological levels by Kahn's algorithm, one level per step over the whole batch.

    The steps run in numpy (each is a handful of small array ops, where torch's per-call cost
    would dominate). The out-arcs of a level's states, taken in (state, arc id) order, are
    ``by_src``'s arcs of that level, so ``by_src`` comes at no extra cost.

    Args:
        lat: a batch of L lattices with S states and A arcs.
    Returns:
        The levels of all states and the arcs grouped by level.
    Raises:
        InputError: a lattice has a cycle (the message names its utterances).
    """
    num_states = lat.num_states
    src, dst = lat.src.numpy(), lat.dst.numpy()
    out_counts = np.bincount(src, minlength=num_states)
    out_starts = np.cumsum(out_counts) - out_counts
    # a state's out-arcs are a range of the arcs sorted by source (read lattices usually are)
    out_order = None if bool((src[1:] >= src[:-1]).all()) else np.argsort(src, kind="stable")
    in_degree = np.bincount(dst, minlength=num_states)
    state_level = np.full(num_states, -1, dtype=np.int64)
    frontier = np.flatnonzero(in_degree == 0)
    frontiers, level_arcs = [], []
    while frontier.size:
        state_level[frontier] = len(frontiers)
        counts = out_counts[frontier]
        ends = np.cumsum(counts)
        arcs = np.arange(ends[-1]) + np.repeat(out_starts[frontier] - ends + counts, counts)
        arcs = arcs if out_order is None else out_order[arcs]
        frontiers.append(frontier)
        level_arcs.append(arcs)
        to = dst[arcs]
        np.subtract.at(in_degree, to, 1)
        ready = np.sort(to[in_degree[to] == 0])
        frontier = np.concatenate((ready[:1], ready[1:][ready[1:] != ready[:-1]]))
    if (state_level < 0).any():
        raise _cycle_error(lat, torch.from_numpy(state_level))
    num_levels = len(frontiers)
    states = np.concatenate([np.zeros(0, np.int64), *frontiers])
    group_state = states[out_counts[states] > 0]
    t = torch.from_numpy
    zero = np.zeros(1, np.int64)
    level_sizes = np.array([a.shape[0] for a in level_arcs], dtype=np.int64)
    by_src = ArcGroups(
        order=t(np.concatenate([np.zeros(0, np.int64), *level_arcs])), state=t(group_state),
        group_of=t(np.repeat(np.arange(group_state.shape[0]), out_counts[group_state])),
        arc_splits=t(np.concatenate([zero, np.cumsum(level_sizes)])),
        group_splits=t(np.concatenate([zero, np.cumsum(np.bincount(
            state_level[group_state], minlength=num_levels))])))
    return Levels(state_level=t(state_level), num_levels=num_levels, by_src=by_src, dst=lat.dst)


def _cycle_error(lat: Lattice, state_level: Tensor) -> InputError:
    """The error naming the lattices with states that Kahn's algorithm left at level -1."""
    stuck = (state_level < 0).nonzero().squeeze(1)
    lattice_of = lat.state_lattice()[stuck]
    utts = [lat.utt_ids[i] for i in torch.unique(lattice_of).tolist()]
    local = int(stuck[0]) - int(lat.state_splits[lattice_of[0]])
    return InputError(f"utterance {utts[0]}: the lattice has a cycle (state {local} is on or "
                      f"after it); lattices with cycles: {', '.join(utts)}")


def _reachable(lat: Lattice, lv: Levels, forward: bool) -> Tensor:
    """(S,) bool: states reachable from the start (forward) or reaching the final state.

    Both directions walk ``by_src`` a level at a time: forward pushes from sources whose
    level is done, backward pulls from destinations (all on higher levels, so done).
    """
    seen = np.zeros(lat.num_states, dtype=bool)
    nonempty = lat.nonempty()
    ends = lat.start_states if forward else lat.final_states
    seen[ends[nonempty].numpy()] = True
    order, splits = lv.by_src.order.numpy(), lv.by_src.arc_splits.tolist()
    src, dst = lat.src.numpy()[order], lat.dst.numpy()[order]
    near, far = (src, dst) if forward else (dst, src)
    steps = range(lv.num_levels) if forward else range(lv.num_levels - 1, -1, -1)
    for k in steps:
        a0, a1 = splits[k], splits[k + 1]
        seen[far[a0:a1][seen[near[a0:a1]]]] = True
    return torch.from_numpy(seen)


def has_path(lat: Lattice, lv: Levels | None = None) -> Tensor:
    """(L,) bool: whether each lattice has a path from its start to its final state.

    Args:
        lat: a batch of L lattices.
        lv: ``levels(lat)``, if already computed.
    """
    lv = lv if lv is not None else levels(lat)
    nonempty = lat.nonempty()
    ok = torch.zeros(lat.num_lattices, dtype=torch.bool)
    ok[nonempty] = _reachable(lat, lv, forward=True)[lat.final_states[nonempty]]
    return ok


def require_paths(lat: Lattice, lv: Levels | None = None) -> None:
    """Raise ``InputError`` naming the lattices with no path from start to final state.

    Args:
        lat: a batch of L lattices.
        lv: ``levels(lat)``, if already computed.
    """
    bad = ~has_path(lat, lv)
    if bad.any():
        raise no_path_error(lat, bad)


def no_path_error(lat: Lattice, bad: Tensor) -> InputError:
    """The error for lattices with no path from start to final state.

    Args:
        lat: a batch of L lattices.
        bad: (L,) bool, the lattices with no path.
    """
    utts = [lat.utt_ids[i] for i in bad.nonzero().squeeze(1).tolist()]
    return InputError(f"utterance {utts[0]}: the lattice has no path from its start state to "
                      f"its final state; lattices with no path: {', '.join(utts)}")


def connect(lat: Lattice, keep_arcs: Tensor | None = None) -> tuple[Lattice, Tensor]:
    """Keep only states and arcs on some path from start to final state (trim).

    Args:
        lat: a batch of L lattices, each with a path.
        keep_arcs: (A,) bool, connect the sub-lattice of these arcs only (default: all arcs).
    Returns:
        The trimmed batch (same L, state order kept, attributes carried) and its (A',) int64
        map to arcs of ``lat``.
    Raises:
        InputError: a lattice (of the kept arcs) has a cycle or no path to its final state.
    """
    arc_map = torch.arange(lat.num_arcs)
    sub = lat
    if keep_arcs is not None:
        arc_map = keep_arcs.nonzero().squeeze(1)
        sub = _arc_subset(lat, arc_map)
    lv = levels(sub)
    require_paths(sub, lv)
    keep_state = _reachable(sub, lv, forward=True) & _reachable(sub, lv, forward=False)
    arc_map = arc_map[keep_state[sub.src] & keep_state[sub.dst]]
    new_id = torch.cumsum(keep_state, 0) - 1
    state_lattice = lat.state_lattice()
    counts = torch.bincount(state_lattice[keep_state], minlength=lat.num_lattices)
    arc_counts = torch.bincount(state_lattice[lat.src[arc_map]], minlength=lat.num_lattices)
    out = derive(lat, new_id[lat.src[arc_map]], new_id[lat.dst[arc_map]], arc_map,
                 keep_state.nonzero().squeeze(1), splits_of(counts), splits_of(arc_counts))
    return out, arc_map


def _arc_subset(lat: Lattice, arcs: Tensor) -> Lattice:
    """The topology of the batch with only the given arcs (ascending ids), all states kept.

    Args:
        lat: a batch with A arcs.
        arcs: (A',) ascending arc ids.
    Returns:
        A batch with the arcs' states and labels and no scores or attributes.
    """
    counts = torch.bincount(lat.arc_lattice()[arcs], minlength=lat.num_lattices)
    return Lattice(src=lat.src[arcs], dst=lat.dst[arcs], label=lat.label[arcs], scores={},
                   state_splits=lat.state_splits, arc_splits=splits_of(counts),
                   utt_ids=lat.utt_ids)
