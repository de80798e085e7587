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

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

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
