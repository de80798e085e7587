"""History expansion: split lattice states until each has a unique K-token LM history.

An order-K model's state after a path depends only on the path's last K tokens, so on the
expanded lattice the model's score of every arc is exact. A history is a row of K LM token ids,
right-aligned, ``-1`` before the sentence start: after ``<s> a`` with K = 3 it is ``[-1, <s>, a]``.
A word may be several tokens (subword units); epsilon arcs keep the history; arcs into the final
state (label -1) lead to one final state. States are expanded one topological level at a time
for the whole batch at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.lattice.lattice import FINAL_LABEL, Lattice, derive
from lmrescore.lattice.ragged import ragged_arange, splits_of, unique_rows
from lmrescore.lattice.topsort import levels

VOID = -1  # history slot before the start of the sentence


@dataclass
class TokenTable:
    """Lattice label -> LM token ids, ragged: [label][token].

    Attributes:
        values: (N,) LM token ids.
        splits: (num_labels+1,) row splits of ``values``.
    """

    values: Tensor
    splits: Tensor

    @property
    def max_len(self) -> int:
        return int((self.splits[1:] - self.splits[:-1]).max()) if self.splits.numel() > 1 else 0

    def token(self, labels: Tensor, j: int) -> Tensor:
        """(n,) the j-th token of each label, or -1 where the label has fewer tokens."""
        start, end = self.splits[labels], self.splits[labels + 1]
        has = start + j < end
        out = torch.full_like(labels, -1)
        out[has] = self.values[start[has] + j]
        return out


def advance(history: Tensor, labels: Tensor, table: TokenTable) -> Tensor:
    """Histories after reading each arc's label (epsilon and -1 arcs change nothing).

    Args:
        history: (n, K) token histories.
        labels: (n,) arc labels.
    Returns:
        (n, K) new histories.
    """
    history = history.clone()
    is_word = labels > 0
    for j in range(table.max_len):
        tok = table.token(labels.clamp(min=0), j)
        shift = is_word & (tok >= 0)
        history[shift] = torch.cat([history[shift, 1:], tok[shift, None]], dim=1)
    return history


@dataclass
class Expansion:
    """An expanded batch of lattices.

    Attributes:
        lattice: the expanded lattices; their arcs carry the original arcs' scores/attributes.
        arc_map: (A',) original arc of each expanded arc.
        state_map: (S',) original state of each expanded state.
        history: (S', K) LM history of each expanded state.
        failed: original lattice index -> reason, for lattices dropped from the expansion.
        kept: indices (into the original batch) of the lattices in ``lattice``, in order.
    """

    lattice: Lattice
    arc_map: Tensor
    state_map: Tensor
    history: Tensor
    failed: dict[int, str]
    kept: list[int]


def expand(lat: Lattice, table: TokenTable, order: int, bos: int,
           max_arcs: int | None = None) -> Expansion:
    """Expand every lattice of a batch so each state has a unique ``order``-token history.

    Args:
        lat: a batch of lattices (connected: every state on a start-final path).
        table: lattice label -> LM tokens.
        order: K, the model's order.
        bos: the LM id of ``<s>``.
        max_arcs: drop (and report in ``failed``) a lattice whose expansion passes this many arcs.
    """
    lv = levels(lat)
    out_order = torch.argsort(lat.src, stable=True)
    out_counts = torch.bincount(lat.src, minlength=lat.num_states)
    out_starts = torch.cumsum(out_counts, 0) - out_counts
    state_lattice = lat.state_lattice()
    alive = torch.ones(lat.num_lattices, dtype=torch.bool)
    arcs_per_lattice = torch.zeros(lat.num_lattices, dtype=torch.int64)
    failed: dict[int, str] = {}

    start_hist = torch.full((lat.num_lattices, order), VOID, dtype=torch.int64)
    start_hist[:, -1] = bos
    pending: dict[int, list[Tensor]] = defaultdict(list)
    pending[0].append(torch.cat([lat.start_states[:, None], start_hist], dim=1))
    state_keys: list[Tensor] = []  # per level: (n, 1+K) rows [orig state, history]
    arc_src: list[Tensor] = []  # index into cat(state_keys)
    arc_dst_keys: list[Tensor] = []
    arc_orig: list[Tensor] = []
    num_keys = 0
    for level in range(lv.num_levels):
        if not pending[level]:
            continue
        keys, _ = unique_rows(torch.cat(pending.pop(level)))
        keys = keys[alive[state_lattice[keys[:, 0]]]]
        if max_arcs is not None:  # this level's arcs, from its out-degrees, before allocating
            arcs_per_lattice.index_add_(0, state_lattice[keys[:, 0]], out_counts[keys[:, 0]])
            over = (arcs_per_lattice > max_arcs) & alive
            for i in over.nonzero().squeeze(1).tolist():
                failed[i] = (f"utterance {lat.utt_ids[i]}: history expansion passed "
                             f"--max-arcs {max_arcs} at topological level {level}; prune harder "
                             f"(smaller --beam) or raise --max-arcs")
            alive &= ~over
            keys = keys[alive[state_lattice[keys[:, 0]]]]
        state_keys.append(keys)
        s = keys[:, 0]
        counts = out_counts[s]
        arcs = out_order[ragged_arange(out_starts[s], counts)]
        rep = torch.repeat_interleave(torch.arange(keys.shape[0]), counts)
        labels = lat.label[arcs]
        hist = advance(keys[rep, 1:], labels, table)
        hist[labels == FINAL_LABEL] = VOID
        dst_keys = torch.cat([lat.dst[arcs, None], hist], dim=1)
        arc_src.append(rep + num_keys)
        arc_dst_keys.append(dst_keys)
        arc_orig.append(arcs)
        num_keys += keys.shape[0]

        dst_level = lv.state_level[dst_keys[:, 0]]
        for lvl in torch.unique(dst_level).tolist():
            pending[lvl].append(dst_keys[dst_level == lvl])

    return _assemble(lat, state_keys, arc_src, arc_dst_keys, arc_orig, alive, failed)


def _assemble(lat: Lattice, state_keys: list[Tensor], arc_src: list[Tensor],
              arc_dst_keys: list[Tensor], arc_orig: list[Tensor], alive: Tensor,
              failed: dict[int, str]) -> Expansion:
    """Number the expanded states lattice by lattice (start first, final last) and build arcs."""
    keys = torch.cat(state_keys)
    src_key = torch.cat(arc_src)
    dst_keys = torch.cat(arc_dst_keys)
    orig = torch.cat(arc_orig)
    state_lattice = lat.state_lattice()

    keep_arc = alive[state_lattice[keys[src_key, 0]]]
    keep_state = alive[state_lattice[keys[:, 0]]]
    # rank within a lattice: the start state first, the final state last
    orig_state = keys[:, 0]
    rank = torch.ones_like(orig_state)
    rank[orig_state == lat.start_states[state_lattice[orig_state]]] = 0
    rank[orig_state == lat.final_states[state_lattice[orig_state]]] = 2
    sort_key = (state_lattice[orig_state] * 3 + rank) * (lat.num_states + 1) + orig_state
    order = torch.argsort(sort_key[keep_state], stable=True)
    kept_states = keep_state.nonzero().squeeze(1)[order]
    new_id = torch.full((keys.shape[0],), -1, dtype=torch.int64)
    new_id[kept_states] = torch.arange(kept_states.shape[0])

    # dst keys -> state ids: every dst key of a kept arc is a kept state's key
    _, inverse = unique_rows(torch.cat([keys, dst_keys]))
    id_of_unique = torch.full((int(inverse.max()) + 1 if inverse.numel() else 0,), -1,
                              dtype=torch.int64)
    id_of_unique[inverse[: keys.shape[0]]] = new_id
    dst = id_of_unique[inverse[keys.shape[0]:]]
    src = new_id[src_key]

    arcs = keep_arc.nonzero().squeeze(1)
    arcs = arcs[torch.argsort(src[arcs], stable=True)]  # group arcs by lattice (via src order)
    kept = alive.nonzero().squeeze(1)
    state_map = keys[kept_states, 0]
    states_per_lattice = torch.bincount(state_lattice[state_map], minlength=lat.num_lattices)
    orig = orig[arcs]
    arcs_per_lattice = torch.bincount(lat.arc_lattice()[orig], minlength=lat.num_lattices)
    expanded = derive(lat, src[arcs], dst[arcs], orig, state_map,
                      splits_of(states_per_lattice[kept]), splits_of(arcs_per_lattice[kept]),
                      kept=kept)
    return Expansion(lattice=expanded, arc_map=orig, state_map=state_map,
                     history=keys[kept_states, 1:], failed=failed, kept=kept.tolist())
