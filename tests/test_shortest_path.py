import math
from dataclasses import replace

import kaldifst
import pytest
import torch

from lattice_testing import enumerate_paths, path_words, random_batch, to_kaldifst
from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.shortest_path import best_path, viterbi_scores
from lmrescore.lattice.weights import Weights

SCALES = [Weights(), Weights(acoustic_scale=0.5, lm_scale=1.5, word_ins_penalty=0.7),
          Weights(acoustic_scale=1 / 12, lm_scale=1.0, word_ins_penalty=-0.5)]


def test_tiny_lattice():
    # 0 -a-> 1 -b-> 2 -> 3 (final) scores -1, -1, 0 ; 0 -c-> 2 score -3 ; 0 -eps-> 2 score -1.5
    lat = Lattice.from_arcs("u", 4, [0, 1, 2, 0, 0], [1, 2, 3, 2, 2], [1, 2, -1, 3, 0],
                            {"am": [-1, -1, 0, -3, -1.5], "lm": [0, 0, 0, 0, 0]})
    best = best_path(lat)
    assert best.score.tolist() == [-1.5]  # the epsilon path
    assert best.arcs.tolist() == [4, 2] and best.word_lists() == [[]]
    best = best_path(lat, Weights(word_ins_penalty=-1.0))  # a bonus of 1 per word: a b wins with 0
    assert best.score.tolist() == [0.0] and best.word_lists() == [[1, 2]]


@pytest.mark.parametrize("batch", [1, 3, 17])
@pytest.mark.parametrize("scales", SCALES)
def test_matches_kaldifst(batch, scales):
    lat = random_batch(seed=batch, num_lattices=batch, max_states=12, max_extra_arcs=20)
    best = best_path(lat, scales)
    arc_score = scales.arc_scores(lat)
    words = best.word_lists()
    for i in range(batch):
        fst = kaldifst.shortest_path(to_kaldifst(lat, i, arc_score))
        ok, ilabels, _, weight = kaldifst.get_linear_symbol_sequence(fst)
        assert ok
        assert best.score[i].item() == pytest.approx(-weight.value, abs=1e-4)
        assert words[i] == ilabels
        path = best.arcs[best.arc_splits[i]:best.arc_splits[i + 1]]
        assert arc_score[path].sum().item() == pytest.approx(best.score[i].item(), abs=1e-9)


@pytest.mark.parametrize("sort_src", [False, True])
def test_path_is_connected_and_best_by_enumeration(sort_src):
    lat = random_batch(seed=5, num_lattices=6)
    if sort_src:  # arcs in source order, as read Kaldi lattices come: levels() skips a sort
        perm = torch.argsort(lat.src, stable=True)
        lat = replace(lat, src=lat.src[perm], dst=lat.dst[perm], label=lat.label[perm],
                      scores={k: v[perm] for k, v in lat.scores.items()})
    best = best_path(lat, Weights(0.3))
    arc_score = Weights(0.3).arc_scores(lat)
    for i in range(lat.num_lattices):
        path = best.arcs[best.arc_splits[i]:best.arc_splits[i + 1]]
        assert int(lat.src[path[0]]) == int(lat.start_states[i])
        assert int(lat.dst[path[-1]]) == int(lat.final_states[i])
        assert torch.equal(lat.dst[path[:-1]], lat.src[path[1:]])
        scores = [arc_score[p].sum().item() for p in enumerate_paths(lat, i)]
        assert best.score[i].item() == pytest.approx(max(scores), abs=1e-9)
        assert best.word_lists()[i] == path_words(lat, path.tolist())


def test_viterbi_scores_meet_at_best_score():
    lat = random_batch(seed=2, num_lattices=5)
    arc_score, alpha, beta = viterbi_scores(lat, Weights(lm_scale=2.0))
    best = best_path(lat, Weights(lm_scale=2.0))
    through = alpha[lat.src] + arc_score + beta[lat.dst]
    per_lattice = torch.full((lat.num_lattices,), -math.inf, dtype=torch.float64)
    per_lattice.scatter_reduce_(0, lat.arc_lattice(), through, "amax")
    assert torch.allclose(per_lattice, best.score)
    assert torch.allclose(beta[lat.start_states], best.score)


def test_no_path_names_utterance():
    good = Lattice.from_arcs("good", 2, [0], [1], [-1], {"am": [0.0], "lm": [0.0]})
    bad = Lattice.from_arcs("bad", 3, [0], [1], [5], {"am": [0.0], "lm": [0.0]})
    with pytest.raises(InputError, match="utterance bad: .*no path"):
        best_path(Lattice.cat([good, bad]))
