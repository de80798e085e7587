import pytest
import torch

from lattice_testing import enumerate_paths, random_batch
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.posteriors import forward_backward
from lmrescore.lattice.prune import prune_beam, prune_posterior
from lmrescore.lattice.shortest_path import best_path
from lmrescore.lattice.weights import Weights


def test_tiny_beam():
    # 0 -> 1 (final) with scores -1, -2, -4: beam 1.5 keeps the first two arcs
    lat = Lattice.from_arcs("u", 2, [0, 0, 0], [1, 1, 1], [-1, -1, -1],
                            {"am": [-1.0, -2.0, -4.0], "lm": [0.0] * 3})
    out, arc_map = prune_beam(lat, 1.5)
    assert arc_map.tolist() == [0, 1]
    assert out.scores["am"].tolist() == [-1.0, -2.0]


@pytest.mark.parametrize("beam", [0.0, 1.0, 3.0])
def test_beam_keeps_exactly_arcs_on_paths_within_beam(beam):
    lat = random_batch(seed=21, num_lattices=10)
    out, arc_map = prune_beam(lat, beam, Weights(0.5))
    arc_score = Weights(0.5).arc_scores(lat)
    expected = []
    for i in range(lat.num_lattices):
        paths = enumerate_paths(lat, i)
        scores = [arc_score[p].sum().item() for p in paths]
        best = max(scores)
        expected += sorted({a for p, s in zip(paths, scores) if s >= best - beam - 1e-9 for a in p})
    assert arc_map.tolist() == expected
    assert torch.equal(out.label, lat.label[arc_map])
    assert torch.allclose(best_path(out, Weights(0.5)).score,
                          best_path(lat, Weights(0.5)).score)


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.6])
def test_posterior_prune(threshold):
    lat = random_batch(seed=22, num_lattices=12, max_states=10, max_extra_arcs=14)
    post = forward_backward(lat).arc_post
    best = best_path(lat)
    out, arc_map = prune_posterior(lat, threshold)
    # expected: arcs on some path made only of arcs with posterior >= threshold or on the best path
    keep = set((post >= threshold).nonzero().squeeze(1).tolist()) | set(best.arcs.tolist())
    expected = []
    for i in range(lat.num_lattices):
        paths = [p for p in enumerate_paths(lat, i) if keep.issuperset(p)]
        expected += sorted({a for p in paths for a in p})
    assert arc_map.tolist() == expected
    assert torch.equal(out.scores["lm"], lat.scores["lm"][arc_map])
    assert torch.allclose(best_path(out).score, best.score)
    assert (out.num_arcs == lat.num_arcs) == (threshold == 0.0)
