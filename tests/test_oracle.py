import random

import kaldialign
import pytest

from lattice_testing import enumerate_paths, path_words, random_batch
from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.oracle import oracle_path


def _errors(ref, hyp):
    return kaldialign.edit_distance(ref, hyp)["total"]


def test_tiny_oracle():
    # paths "1 2" and "3". Reference "1 2": 0 errors; "3 2": 1 error either way (a
    # substitution or a deletion); empty: "3" with 1 insertion
    lat = Lattice.from_arcs("u", 4, [0, 1, 2, 0], [1, 2, 3, 2], [1, 2, -1, 3],
                            {"am": [0.0] * 4, "lm": [0.0] * 4})
    out = oracle_path(Lattice.cat([lat, lat, lat]), [[1, 2], [3, 2], []])
    assert out.errors.tolist() == [0, 1, 1]
    assert out.word_lists()[0] == [1, 2]
    assert out.word_lists()[2] == [3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_enumeration(seed):
    lat = random_batch(seed=40 + seed, num_lattices=15)
    rng = random.Random(seed)
    refs = [[rng.randrange(1, 6) for _ in range(rng.randrange(0, 6))]
            for _ in range(lat.num_lattices)]
    out = oracle_path(lat, refs)
    words = out.word_lists()
    for i in range(lat.num_lattices):
        best = min(_errors(refs[i], path_words(lat, p)) for p in enumerate_paths(lat, i))
        assert out.errors[i].item() == best
        path = out.arcs[out.arc_splits[i]:out.arc_splits[i + 1]].tolist()
        assert path in enumerate_paths(lat, i)
        assert words[i] == path_words(lat, path)
        assert _errors(refs[i], words[i]) == best


def test_no_path_names_utterance():
    lat = Lattice.from_arcs("nopath", 3, [0], [1], [4], {"am": [0.0], "lm": [0.0]})
    with pytest.raises(InputError, match="utterance nopath: .*no path"):
        oracle_path(lat, [[4]])
