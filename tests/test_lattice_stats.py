import math

import pytest
import torch

from lattice_testing import enumerate_paths, random_batch
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.stats import lattice_stats


def test_tiny_stats():
    # 0 -> 1 (two arcs), 1 -> 2, 0 -> 2, 2 -> 3 (final): 3 paths, levels 0,1,2,3
    lat = Lattice.from_arcs("u", 4, [0, 0, 1, 0, 2], [1, 1, 2, 2, 3], [1, 2, 3, 4, -1],
                            {"am": [0.0] * 5, "lm": [0.0] * 5})
    nopath = Lattice.from_arcs("v", 3, [0], [1], [1], {"am": [0.0], "lm": [0.0]})
    stats = lattice_stats(Lattice.cat([lat, nopath]))
    assert stats.num_states.tolist() == [4, 3]
    assert stats.num_arcs.tolist() == [5, 1]
    assert stats.depth.tolist() == [4, 2]
    assert stats.num_paths.tolist() == pytest.approx([3.0, 0.0])
    total = stats.total()
    assert (total["states"], total["arcs"], total["max_depth"]) == (7.0, 6.0, 4.0)
    assert total["paths"] == pytest.approx(3.0)


def test_paths_match_enumeration():
    lat = random_batch(seed=12, num_lattices=10)
    stats = lattice_stats(lat)
    counts = [len(enumerate_paths(lat, i)) for i in range(lat.num_lattices)]
    assert stats.num_paths.round().long().tolist() == counts


def test_huge_path_count_stays_finite_in_log():
    # a chain of 2000 pairs of parallel arcs: 2**2000 paths overflow float64 but not their log
    n = 2001
    src = [s for s in range(n - 2) for _ in range(2)] + [n - 2]
    lat = Lattice.from_arcs("big", n, src, [s + 1 for s in src], [1] * (len(src) - 1) + [-1],
                            {"am": [0.0] * len(src), "lm": [0.0] * len(src)})
    stats = lattice_stats(lat)
    assert stats.log_num_paths.item() == pytest.approx((n - 2) * math.log(2))
    assert torch.isinf(stats.num_paths).all()
