"""Lattice: a batch of word lattices as flat arc arrays in k2's arc layout.

Conventions (k2's):
- States are numbered globally across the batch; lattice ``i`` owns states
  ``state_splits[i] .. state_splits[i+1]-1`` and arcs ``arc_splits[i] .. arc_splits[i+1]-1``.
- The start state of a lattice is its first state; its final state is its LAST state, and the
  only arcs into it are labelled ``-1`` (they carry the final weights). No other arc has label -1.
- Label 0 is epsilon. Labels index ``symbols`` (a ``words.txt``) when one is given.
- Scores are log-domain (higher is better). Kaldi costs are negated on read and write.
  Standard score columns: ``"am"`` (acoustic) and ``"lm"`` (graph / language model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from lmrescore.errors import InputError
from lmrescore.lattice.ragged import ragged_take, take_rows
from lmrescore.vocab import Vocab

FINAL_LABEL = -1


@dataclass
class Lattice:
    """A batch of lattices.

    Attributes:
        src, dst: (A,) int64, global state ids of each arc.
        label: (A,) int64 word id; 0 = epsilon, -1 = arc into the final state.
        scores: score name -> (A,) float32 log-domain scores.
        state_splits: (L+1,) int64 row splits [lattice][state].
        arc_splits: (L+1,) int64 row splits [lattice][arc]; arcs are grouped by lattice.
        utt_ids: L utterance ids.
        symbols: the symbol table for ``label``, or None.
        arc_attrs: other per-arc tensors (first dim A), e.g. ``aux_labels``.
        state_attrs: per-state tensors (first dim S), e.g. ``times`` in seconds.
        ragged_arc_attrs: name -> (values, splits (A+1,)): a variable-length list per arc,
            e.g. Kaldi transition-ids of a CompactLattice arc.
    """

    src: Tensor
    dst: Tensor
    label: Tensor
    scores: dict[str, Tensor]
    state_splits: Tensor
    arc_splits: Tensor
    utt_ids: list[str]
    symbols: Vocab | None = None
    arc_attrs: dict[str, Tensor] = field(default_factory=dict)
    state_attrs: dict[str, Tensor] = field(default_factory=dict)
    ragged_arc_attrs: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = self.src.shape[0]
        for name, t in [("dst", self.dst), ("label", self.label), *self.scores.items(),
                        *self.arc_attrs.items()]:
            assert t.shape[0] == a, f"per-arc tensor {name!r} has {t.shape[0]} rows, want {a}"
        for name, (_, splits) in self.ragged_arc_attrs.items():
            assert splits.shape[0] == a + 1, f"ragged attribute {name!r} has wrong splits"
        for name, t in self.state_attrs.items():
            assert t.shape[0] == self.num_states, f"per-state tensor {name!r} has wrong length"
        assert len(self.utt_ids) == self.num_lattices
        assert self.arc_splits.shape == self.state_splits.shape

    @property
    def num_lattices(self) -> int:
        return self.state_splits.shape[0] - 1

    @property
    def num_states(self) -> int:
        return int(self.state_splits[-1])

    @property
    def num_arcs(self) -> int:
        return self.src.shape[0]

    @property
    def start_states(self) -> Tensor:
        """(L,) global id of each lattice's start state."""
        return self.state_splits[:-1]

    @property
    def final_states(self) -> Tensor:
        """(L,) global id of each lattice's final state."""
        return self.state_splits[1:] - 1

    def nonempty(self) -> Tensor:
        """(L,) bool: lattices with at least one state (others have no start or final state)."""
        return self.state_splits[1:] > self.state_splits[:-1]

    def arc_lattice(self) -> Tensor:
        """(A,) index of the lattice each arc belongs to."""
        counts = self.arc_splits[1:] - self.arc_splits[:-1]
        return torch.repeat_interleave(torch.arange(self.num_lattices), counts)

    def state_lattice(self) -> Tensor:
        """(S,) index of the lattice each state belongs to."""
        counts = self.state_splits[1:] - self.state_splits[:-1]
        return torch.repeat_interleave(torch.arange(self.num_lattices), counts)

    def total_score(self, weights: dict[str, float]) -> Tensor:
        """(A,) weighted sum of score columns, e.g. ``{"am": 1/12, "lm": 1.0}``."""
        total = torch.zeros(self.num_arcs, dtype=torch.float32)
        for name, w in weights.items():
            total = total + w * self.scores[name]
        return total

    def with_scores(self, **scores: Tensor) -> "Lattice":
        """A copy with score columns added or replaced."""
        return replace(self, scores={**self.scores, **scores})

    @classmethod
    def from_arcs(cls, utt_id: str, num_states: int, src: Tensor | Sequence[int],
                  dst: Tensor | Sequence[int], label: Tensor | Sequence[int],
                  scores: dict[str, Tensor | Sequence[float]], symbols: Vocab | None = None,
                  arc_attrs: dict[str, Tensor] | None = None,
                  state_attrs: dict[str, Tensor] | None = None,
                  ragged_arc_attrs: dict[str, tuple[Tensor, Tensor]] | None = None) -> "Lattice":
        """One lattice from arcs with local state ids (0 = start, ``num_states-1`` = final).

        Args:
            utt_id: the utterance id.
            num_states: S, number of states (at least 1).
            src, dst: (A,) local state ids in ``0..S-1``.
            label: (A,) word ids; -1 exactly on the arcs into the final state.
            scores: name -> (A,) log-domain scores.
        Returns:
            A batch of one lattice.
        Raises:
            InputError: a state id out of range, or -1 labels not exactly on the arcs into the
                final state.
        """
        src = torch.as_tensor(src, dtype=torch.int64).reshape(-1)
        dst = torch.as_tensor(dst, dtype=torch.int64).reshape(-1)
        label = torch.as_tensor(label, dtype=torch.int64).reshape(-1)
        if num_states < 1:
            raise InputError(f"utterance {utt_id}: a lattice needs at least one state")
        bad = ((src < 0) | (src >= num_states) | (dst < 0) | (dst >= num_states)).nonzero()
        if bad.numel():
            a = int(bad[0])
            raise InputError(f"utterance {utt_id}: arc {a} ({int(src[a])} -> {int(dst[a])}) "
                             f"has a state outside 0..{num_states - 1}")
        bad = ((label == FINAL_LABEL) != (dst == num_states - 1)).nonzero()
        if bad.numel():
            a = int(bad[0])
            raise InputError(f"utterance {utt_id}: arc {a} ({int(src[a])} -> {int(dst[a])}, "
                             f"label {int(label[a])}): label -1 must mark exactly the arcs "
                             f"into the final state {num_states - 1}")
        return cls(src=src, dst=dst, label=label,
                   scores={k: torch.as_tensor(v, dtype=torch.float32).reshape(-1)
                           for k, v in scores.items()},
                   state_splits=torch.tensor([0, num_states]),
                   arc_splits=torch.tensor([0, src.shape[0]]), utt_ids=[utt_id], symbols=symbols,
                   arc_attrs=dict(arc_attrs or {}), state_attrs=dict(state_attrs or {}),
                   ragged_arc_attrs=dict(ragged_arc_attrs or {}))

    @classmethod
    def cat(cls, lattices: Sequence["Lattice"]) -> "Lattice":
        """Concatenate batches into one; all must have the same score and attribute names.

        Args:
            lattices: batches of L_1, L_2, ... lattices.
        Returns:
            A batch of sum(L_i) lattices, state ids renumbered globally.
        """
        assert lattices, "cat needs at least one batch"
        first = lattices[0]
        state_offsets = [0]
        arc_offsets = [0]
        for lat in lattices:
            state_offsets.append(state_offsets[-1] + lat.num_states)
            arc_offsets.append(arc_offsets[-1] + lat.num_arcs)
        src = torch.cat([lat.src + off for lat, off in zip(lattices, state_offsets)])
        dst = torch.cat([lat.dst + off for lat, off in zip(lattices, state_offsets)])
        state_splits = torch.cat([torch.zeros(1, dtype=torch.int64)] + [
            lat.state_splits[1:] + off for lat, off in zip(lattices, state_offsets)])
        arc_splits = torch.cat([torch.zeros(1, dtype=torch.int64)] + [
            lat.arc_splits[1:] + off for lat, off in zip(lattices, arc_offsets)])
        ragged = {}
        for name in first.ragged_arc_attrs:
            values = [lat.ragged_arc_attrs[name][0] for lat in lattices]
            value_offsets = torch.tensor([0] + [v.shape[0] for v in values]).cumsum(0)
            splits = torch.cat([torch.zeros(1, dtype=torch.int64)] + [
                lat.ragged_arc_attrs[name][1][1:] + off
                for lat, off in zip(lattices, value_offsets.tolist())])
            ragged[name] = (torch.cat(values), splits)
        return cls(src=src, dst=dst, label=torch.cat([lat.label for lat in lattices]),
                   scores={k: torch.cat([lat.scores[k] for lat in lattices]) for k in first.scores},
                   state_splits=state_splits, arc_splits=arc_splits,
                   utt_ids=[u for lat in lattices for u in lat.utt_ids], symbols=first.symbols,
                   arc_attrs={k: torch.cat([lat.arc_attrs[k] for lat in lattices])
                              for k in first.arc_attrs},
                   state_attrs={k: torch.cat([lat.state_attrs[k] for lat in lattices])
                                for k in first.state_attrs},
                   ragged_arc_attrs=ragged)

    def select(self, indices: Sequence[int] | Tensor) -> "Lattice":
        """The sub-batch of the given lattices, in the given order.

        Args:
            indices: (K,) lattice indices.
        Returns:
            A batch of K lattices.
        """
        indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        state_idx, state_splits = ragged_take(self.state_splits, indices)
        arc_idx, arc_splits = ragged_take(self.arc_splits, indices)
        # each kept lattice's states move by one offset: nothing is sized by the whole batch
        shift = state_splits[:-1] - self.state_splits[indices]
        shift = torch.repeat_interleave(shift, arc_splits.diff())
        return derive(self, self.src[arc_idx] + shift, self.dst[arc_idx] + shift, arc_idx,
                      state_idx, state_splits, arc_splits, kept=indices)

    def __getitem__(self, i: int) -> "Lattice":
        """Lattice ``i`` as a batch of one."""
        return self.select([i])



def derive(lat: Lattice, src: Tensor, dst: Tensor, arc_map: Tensor, state_map: Tensor,
           state_splits: Tensor, arc_splits: Tensor, kept: Tensor | None = None,
           scores: dict[str, Tensor] | None = None,
           arc_strings: tuple[Tensor, Tensor] | None = None) -> Lattice:
    """A batch built from ``lat``'s arcs and states, every attribute carried over.

    Each new arc stands for the arc ``arc_map`` of ``lat`` (its label, score columns and
    ``arc_attrs``) and for the arcs ``arc_strings`` (its ``ragged_arc_attrs``, concatenated);
    each new state for the state ``state_map`` (its ``state_attrs``); each new lattice for the
    lattice ``kept`` (its utterance id).

    Args:
        lat: a batch of L lattices with S states and A arcs.
        src, dst: (A',) the new arcs' global state ids.
        arc_map: (A',) arc of ``lat`` of each new arc.
        state_map: (S',) state of ``lat`` of each new state.
        state_splits, arc_splits: (K+1,) row splits [lattice][state] and [lattice][arc].
        kept: (K,) lattice of ``lat`` of each new lattice (default: all L, in order).
        scores: the new arcs' score columns, where they are not those of ``arc_map`` (A',).
        arc_strings: ragged [new arc][arc of ``lat``] (values, (A'+1,) splits) whose ragged
            attributes each new arc concatenates (default: the one arc ``arc_map``).
    Returns:
        The batch of K lattices.
    """
    ragged = {}
    for name, (values, splits) in lat.ragged_arc_attrs.items():
        if arc_strings is None:
            ragged[name] = take_rows(values, splits, arc_map)
        else:  # [new arc][arc] then [arc][value]: the values of each new arc's arcs, in order
            idx, arc_value_splits = ragged_take(splits, arc_strings[0])
            ragged[name] = (values[idx], arc_value_splits[arc_strings[1]])
    utt_ids = lat.utt_ids if kept is None else [lat.utt_ids[i] for i in kept.tolist()]
    return replace(lat, src=src, dst=dst, label=lat.label[arc_map],
                   scores=scores if scores is not None else {
                       k: v[arc_map] for k, v in lat.scores.items()},
                   state_splits=state_splits, arc_splits=arc_splits, utt_ids=utt_ids,
                   arc_attrs={k: v[arc_map] for k, v in lat.arc_attrs.items()},
                   state_attrs={k: v[state_map] for k, v in lat.state_attrs.items()},
                   ragged_arc_attrs=ragged)
