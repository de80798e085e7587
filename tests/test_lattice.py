import pytest
import torch

from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice, derive
from lmrescore.lattice.ragged import ragged_lists
from lmrescore.lattice.weights import Weights


def _two() -> tuple[Lattice, Lattice]:
    a = Lattice.from_arcs("a", 3, [0, 0, 1], [1, 1, 2], [5, 0, -1],
                          {"am": [1.0, 2.0, 3.0], "lm": [0.5, 0.0, 0.0]},
                          state_attrs={"times": torch.tensor([0.0, 0.5, 1.0])},
                          ragged_arc_attrs={"tids": (torch.tensor([1, 2, 3, 4]),
                                                     torch.tensor([0, 1, 1, 4]))})
    b = Lattice.from_arcs("b", 2, [0], [1], [-1], {"am": [7.0], "lm": [1.0]},
                          state_attrs={"times": torch.tensor([0.0, 0.2])},
                          ragged_arc_attrs={"tids": (torch.tensor([9]), torch.tensor([0, 1]))})
    return a, b


def test_cat_renumbers_states_and_ragged_values():
    a, b = _two()
    c = Lattice.cat([a, b, a])
    assert c.src.tolist() == [0, 0, 1, 3, 5, 5, 6]
    assert c.dst.tolist() == [1, 1, 2, 4, 6, 6, 7]
    assert c.state_splits.tolist() == [0, 3, 5, 8] and c.arc_splits.tolist() == [0, 3, 4, 7]
    values, splits = c.ragged_arc_attrs["tids"]
    assert values.tolist() == [1, 2, 3, 4, 9, 1, 2, 3, 4]
    assert splits.tolist() == [0, 1, 1, 4, 5, 6, 6, 9]
    assert c.final_states.tolist() == [2, 4, 7]


def test_select_inverts_cat():
    a, b = _two()
    c = Lattice.cat([a, b, a])
    for picked, want in [(c.select([2, 1]), Lattice.cat([a, b])), (c[1], b)]:
        assert picked.utt_ids == want.utt_ids
        for name in ["src", "dst", "label", "state_splits", "arc_splits"]:
            assert torch.equal(getattr(picked, name), getattr(want, name)), name
        assert torch.equal(picked.scores["am"], want.scores["am"])
        assert torch.equal(picked.state_attrs["times"], want.state_attrs["times"])
        for got, exp in zip(picked.ragged_arc_attrs["tids"], want.ragged_arc_attrs["tids"]):
            assert torch.equal(got, exp)


def test_weights_arc_scores():
    a, _ = _two()
    # labels 5, 0 (epsilon), -1 (final): the penalty hits the first arc only
    got = Weights(acoustic_scale=0.5, lm_scale=2.0, word_ins_penalty=1.0).arc_scores(a)
    assert got.tolist() == pytest.approx([0.5 + 1.0 - 1.0, 1.0, 1.5])


def test_from_arcs_errors_name_utterance():
    with pytest.raises(InputError, match=r"utterance x: arc 0 \(0 -> 3\) has a state outside"):
        Lattice.from_arcs("x", 3, [0], [3], [1], {})
    with pytest.raises(InputError, match=r"utterance y: arc 1 .*label -1 must mark"):
        Lattice.from_arcs("y", 3, [0, 1], [1, 2], [4, 7], {})
    with pytest.raises(InputError, match="utterance z: .*at least one state"):
        Lattice.from_arcs("z", 0, [], [], [], {})


def test_derive_carries_every_attribute():
    a, _ = _two()
    a.arc_attrs["aux"] = torch.tensor([50, 60, 70])
    # a: 0 -5-> 1 (tids [1]), 0 -eps-> 1 (tids []), 1 -> 2 (tids [2, 3, 4]). Derived: states
    # 0, 1, 2; arc 0 -5-> 1 stands for arc 0 and takes the tids of arcs 0 and 1, arc 1 -> 2
    # stands for arc 2 and takes the tids of arcs 2 and 0, in that order
    got = derive(a, torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([0, 2]),
                 torch.tensor([0, 1, 2]), torch.tensor([0, 3]), torch.tensor([0, 2]),
                 kept=torch.tensor([0]),
                 arc_strings=(torch.tensor([0, 1, 2, 0]), torch.tensor([0, 2, 4])))
    assert got.label.tolist() == [5, -1] and got.utt_ids == ["a"]
    assert got.scores["am"].tolist() == [1.0, 3.0] and got.arc_attrs["aux"].tolist() == [50, 70]
    assert got.state_attrs["times"].tolist() == [0.0, 0.5, 1.0]
    assert ragged_lists(*got.ragged_arc_attrs["tids"]) == [[1], [2, 3, 4, 1]]
    # without arc_strings each arc takes the tids of its arc_map arc; scores can be given
    plain = derive(a, got.src, got.dst, torch.tensor([1, 2]), torch.tensor([2, 1, 0]),
                   got.state_splits, got.arc_splits,
                   scores={"am": torch.tensor([9.0, 8.0]), "lm": torch.zeros(2)})
    assert plain.scores["am"].tolist() == [9.0, 8.0] and plain.label.tolist() == [0, -1]
    assert plain.state_attrs["times"].tolist() == [1.0, 0.5, 0.0]
    assert ragged_lists(*plain.ragged_arc_attrs["tids"]) == [[], [2, 3, 4]]
