import kaldifst
import pytest
import torch

from lattice_testing import enumerate_paths, path_words, random_batch, to_kaldifst
from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.nbest import nbest
from lmrescore.lattice.shortest_path import best_path
from lmrescore.lattice.weights import Weights

SCALES = Weights(acoustic_scale=0.7, lm_scale=1.3, word_ins_penalty=0.4)


def test_tiny_nbest():
    # 0 -a-> 1 -b-> 2 -> 3(final), scores -1 -1 0; 0 -c-> 2 score -1.5; 0 -eps-> 2 score -3
    lat = Lattice.from_arcs("u", 4, [0, 1, 2, 0, 0], [1, 2, 3, 2, 2], [1, 2, -1, 3, 0],
                            {"am": [-1, -1, 0, -1.5, -3], "lm": [0, 0, 0, 0, 0]})
    out = nbest(lat, 10)
    assert out.score.tolist() == [-1.5, -2.0, -3.0]
    assert out.word_lists() == [[[3], [1, 2], []]]
    assert out.arcs.tolist() == [3, 2, 0, 1, 2, 4, 2]


@pytest.mark.parametrize("n", [1, 3, 50])
def test_matches_enumeration(n):
    lat = random_batch(seed=30 + n, num_lattices=12)
    out = nbest(lat, n, SCALES)
    arc_score = SCALES.arc_scores(lat)
    words = out.word_lists()
    for i in range(lat.num_lattices):
        paths = enumerate_paths(lat, i)
        scores = sorted((arc_score[p].sum().item() for p in paths), reverse=True)[:n]
        p0, p1 = int(out.path_splits[i]), int(out.path_splits[i + 1])
        assert out.score[p0:p1].tolist() == pytest.approx(scores, abs=1e-9)
        got = [tuple(out.arcs[out.arc_splits[p]:out.arc_splits[p + 1]].tolist())
               for p in range(p0, p1)]
        assert len(set(got)) == len(got)  # distinct paths
        assert all(list(p) in paths for p in got)
        assert words[i] == [path_words(lat, list(p)) for p in got]
        assert torch.allclose(out.path_sum(arc_score)[p0:p1], out.score[p0:p1])


def test_first_is_best_path():
    lat = random_batch(seed=4, num_lattices=15, max_states=20, max_extra_arcs=40)
    out = nbest(lat, 4, SCALES)
    best = best_path(lat, SCALES)
    assert torch.allclose(out.score[out.path_splits[:-1]], best.score)


def test_matches_kaldifst_nshortest():
    # lattices with many paths: the 100 best scores equal OpenFst's 100 shortest paths
    lat = random_batch(seed=8, num_lattices=4, max_states=25, max_extra_arcs=60)
    out = nbest(lat, 100, SCALES)
    arc_score = SCALES.arc_scores(lat)
    for i in range(lat.num_lattices):
        fst = to_kaldifst(lat, i, arc_score, final_arcs=True)
        paths = kaldifst.convert_nbest_to_vector(kaldifst.shortest_path(fst, n=100))
        theirs = sorted((-kaldifst.get_linear_symbol_sequence(p)[3].value for p in paths),
                        reverse=True)
        assert len(theirs) == 100
        ours = out.score[out.path_splits[i]:out.path_splits[i + 1]]
        assert ours.tolist() == pytest.approx(theirs, abs=1e-4)


def test_no_path_names_utterance():
    lat = Lattice.from_arcs("nopath", 3, [0], [1], [4], {"am": [0.0], "lm": [0.0]})
    with pytest.raises(InputError, match="utterance nopath: .*no path"):
        nbest(lat, 3)
