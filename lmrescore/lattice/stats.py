"""Size statistics of a batch of lattices: states, arcs, depth, number of paths."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.semiring import forward_scores
from lmrescore.lattice.topsort import levels


@dataclass
class LatticeStats:
    """Statistics of each of L lattices.

    Attributes:
        num_states: (L,) int64 states.
        num_arcs: (L,) int64 arcs.
        depth: (L,) int64 topological levels (longest chain of arcs + 1; 0 for no states).
        log_num_paths: (L,) float64 natural log of the number of start-to-final paths.
    """

    num_states: Tensor
    num_arcs: Tensor
    depth: Tensor
    log_num_paths: Tensor

    @property
    def num_paths(self) -> Tensor:
        """(L,) float64 number of paths (inf beyond float64's range)."""
        return torch.exp(self.log_num_paths)

    def total(self) -> dict[str, float]:
        """Batch totals: lattices, states, arcs, paths (and log paths), deepest and mean depth."""
        return {"lattices": float(self.num_states.shape[0]),
                "states": float(self.num_states.sum()), "arcs": float(self.num_arcs.sum()),
                "log_paths": float(torch.logsumexp(self.log_num_paths, 0)),
                "paths": float(torch.exp(torch.logsumexp(self.log_num_paths, 0))),
                "max_depth": float(self.depth.max()) if self.depth.numel() else 0.0,
                "mean_depth": float(self.depth.double().mean()) if self.depth.numel() else 0.0}


def lattice_stats(lat: Lattice) -> LatticeStats:
    """States, arcs, depth and number of paths of each lattice.

    Args:
        lat: a batch of L lattices.
    Returns:
        The per-lattice statistics.
    Raises:
        InputError: a lattice has a cycle.
    """
    lv = levels(lat)
    depth = torch.zeros(lat.num_lattices, dtype=torch.int64)
    depth.scatter_reduce_(0, lat.state_lattice(), lv.state_level + 1, "amax")
    log_paths = forward_scores(lat, lv, torch.zeros(lat.num_arcs, dtype=torch.float64), "log")
    log_num_paths = torch.full((lat.num_lattices,), -torch.inf, dtype=torch.float64)
    nonempty = lat.nonempty()
    log_num_paths[nonempty] = log_paths[lat.final_states[nonempty]]
    return LatticeStats(num_states=lat.state_splits[1:] - lat.state_splits[:-1],
                        num_arcs=lat.arc_splits[1:] - lat.arc_splits[:-1], depth=depth,
                        log_num_paths=log_num_paths)
