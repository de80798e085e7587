import math

import pytest
import torch

from lattice_testing import enumerate_paths, random_batch
from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.posteriors import forward_backward
from lmrescore.lattice.topsort import levels
from lmrescore.lattice.weights import Weights

SCALES = Weights(acoustic_scale=0.5, lm_scale=1.2, word_ins_penalty=0.3)


def test_tiny_posteriors():
    # two parallel arcs 0->1 with scores log(0.25), log(0.75), then 1->2 (final) score 0
    lat = Lattice.from_arcs("u", 3, [0, 0, 1], [1, 1, 2], [1, 2, -1],
                            {"am": [math.log(0.25), math.log(0.75), 0.0], "lm": [0.0] * 3})
    post = forward_backward(lat)
    assert post.total.tolist() == pytest.approx([0.0], abs=1e-6)  # scores are float32
    assert post.arc_post.tolist() == pytest.approx([0.25, 0.75, 1.0], abs=1e-6)
    assert post.state_post.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_total_is_logsumexp_over_enumerated_paths():
    lat = random_batch(seed=7, num_lattices=10)
    post = forward_backward(lat, SCALES)
    arc_score = SCALES.arc_scores(lat)
    for i in range(lat.num_lattices):
        paths = enumerate_paths(lat, i)
        scores = torch.stack([arc_score[p].sum() for p in paths])
        assert post.total[i].item() == pytest.approx(torch.logsumexp(scores, 0).item(), abs=1e-9)
        assert post.beta[lat.start_states[i]].item() == pytest.approx(post.total[i].item())
        # arc posterior = probability mass of the enumerated paths through the arc
        probs = torch.softmax(scores, 0)
        for a in range(int(lat.arc_splits[i]), int(lat.arc_splits[i + 1])):
            mass = sum(probs[j].item() for j, p in enumerate(paths) if a in p)
            assert post.arc_post[a].item() == pytest.approx(mass, abs=1e-9)


@pytest.mark.parametrize("batch", [1, 9])
def test_posterior_sums(batch):
    lat = random_batch(seed=100 + batch, num_lattices=batch, max_states=30, max_extra_arcs=60)
    post = forward_backward(lat, SCALES)
    lattice_of = lat.arc_lattice()
    ones = torch.ones(batch, dtype=torch.float64)
    # out of the start state
    from_start = lat.src == lat.start_states[lattice_of]
    out = torch.zeros(batch, dtype=torch.float64).index_add_(0, lattice_of[from_start],
                                                            post.arc_post[from_start])
    assert torch.allclose(out, ones)
    # every topological cut between levels k and k+1 is crossed by exactly one arc of each path
    level = levels(lat).state_level
    final_level = level[lat.final_states]
    for k in range(int(final_level.max())):
        cut = (level[lat.src] <= k) & (level[lat.dst] > k)
        sums = torch.zeros(batch, dtype=torch.float64).index_add_(0, lattice_of[cut],
                                                                 post.arc_post[cut])
        assert torch.allclose(sums[final_level > k], ones[final_level > k])
    # state occupancy = sum of out-arc posteriors = sum of in-arc posteriors
    out_sum = torch.zeros(lat.num_states, dtype=torch.float64).index_add_(0, lat.src,
                                                                          post.arc_post)
    in_sum = torch.zeros(lat.num_states, dtype=torch.float64).index_add_(0, lat.dst,
                                                                         post.arc_post)
    not_final = torch.ones(lat.num_states, dtype=torch.bool)
    not_final[lat.final_states] = False
    assert torch.allclose(post.state_post[not_final], out_sum[not_final])
    not_start = torch.ones(lat.num_states, dtype=torch.bool)
    not_start[lat.start_states] = False
    assert torch.allclose(post.state_post[not_start], in_sum[not_start])
    assert torch.allclose(post.state_post[lat.final_states], ones)


def test_long_lattice_does_not_underflow():
    # a chain of 3000 arcs with score -5 each: total -15000, posteriors still exactly 1
    n = 3001
    lat = Lattice.from_arcs("long", n, list(range(n - 1)), list(range(1, n)),
                            [1] * (n - 2) + [-1], {"am": [-5.0] * (n - 1), "lm": [0.0] * (n - 1)})
    post = forward_backward(lat)
    assert post.total.item() == pytest.approx(-15000.0)
    assert torch.allclose(post.arc_post, torch.ones(n - 1, dtype=torch.float64))


def test_no_path_names_utterance():
    lat = Lattice.from_arcs("nopath", 3, [0], [1], [4], {"am": [0.0], "lm": [0.0]})
    with pytest.raises(InputError, match="utterance nopath: .*no path"):
        forward_backward(lat)
