from dataclasses import replace

import pytest
import torch

from lattice_testing import enumerate_paths, path_words, random_batch
from lmrescore.errors import InputError
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.topsort import connect, has_path, levels
from lmrescore.lattice.weights import Weights


def test_tiny_levels():
    # arcs: 0->2, 2->1, 0->1, 1->4(final), plus 3->2 where state 3 has no way in.
    # longest distances from a source: 0:0, 3:0, 2:1, 1:2, 4:3
    lat = Lattice.from_arcs("u", 5, [0, 2, 0, 1, 3], [2, 1, 1, 4, 2], [1, 2, 3, -1, 0],
                            {"am": [0.0] * 5, "lm": [0.0] * 5})
    lv = levels(lat)
    assert lv.state_level.tolist() == [0, 2, 1, 0, 3]
    assert lv.num_levels == 4
    arcs, group, states = lv.by_dst.level(1)  # arcs into level-1 states: 0->2 and 3->2
    assert sorted(arcs.tolist()) == [0, 4] and group.tolist() == [0, 0] and states.tolist() == [2]


def test_levels_random_batch():
    lat = random_batch(seed=11, num_lattices=20, max_states=15, max_extra_arcs=25)
    lv = levels(lat)
    level = lv.state_level
    assert bool((level[lat.dst] > level[lat.src]).all())
    # each state with in-arcs sits exactly one above its highest predecessor (longest distance)
    top = torch.full((lat.num_states,), -1, dtype=torch.int64)
    top.scatter_reduce_(0, lat.dst, level[lat.src], "amax")
    has_in = torch.bincount(lat.dst, minlength=lat.num_states) > 0
    assert torch.equal(level[has_in], top[has_in] + 1)
    assert bool((level[~has_in] == 0).all())
    for groups, end in [(lv.by_dst, lat.dst), (lv.by_src, lat.src)]:
        assert torch.equal(groups.order.sort().values, torch.arange(lat.num_arcs))
        for k in range(lv.num_levels):
            arcs, group, states = groups.level(k)
            assert torch.equal(end[arcs], states[group])
            assert bool((level[states] == k).all())
            assert states.unique().shape == states.shape


def _arcs_sorted_by_src(lat: Lattice) -> Lattice:
    """The batch with its arcs reordered by source state (as read Kaldi lattices come)."""
    perm = torch.argsort(lat.src, stable=True)
    return replace(lat, src=lat.src[perm], dst=lat.dst[perm], label=lat.label[perm],
                   scores={k: v[perm] for k, v in lat.scores.items()})


@pytest.mark.parametrize("sort_src", [False, True])
def test_by_src_is_sorted_by_level_state_arc(sort_src):
    # levels() takes arcs sorted by source as they are, and argsorts others: same grouping
    base = random_batch(seed=7, num_lattices=12, max_states=15, max_extra_arcs=25)
    lat = _arcs_sorted_by_src(base) if sort_src else base
    assert bool((lat.src[1:] >= lat.src[:-1]).all()) == sort_src
    lv = levels(lat)
    assert torch.equal(lv.state_level, levels(base).state_level)
    key = lv.state_level[lat.src] * lat.num_states + lat.src
    order = torch.argsort(key, stable=True)
    assert torch.equal(lv.by_src.order, order)
    states = torch.unique_consecutive(lat.src[order])
    assert torch.equal(lv.by_src.state, states)
    arc_counts = torch.bincount(lv.state_level[lat.src], minlength=lv.num_levels)
    assert lv.by_src.arc_splits.tolist() == [0, *arc_counts.cumsum(0).tolist()]
    group_counts = torch.bincount(lv.state_level[states], minlength=lv.num_levels)
    assert lv.by_src.group_splits.tolist() == [0, *group_counts.cumsum(0).tolist()]


def test_cycle_names_utterance():
    good = Lattice.from_arcs("good", 2, [0], [1], [-1], {"am": [0.0], "lm": [0.0]})
    loop = Lattice.from_arcs("loopy", 4, [0, 1, 2, 2], [1, 2, 1, 3], [1, 2, 3, -1],
                             {"am": [0.0] * 4, "lm": [0.0] * 4})
    with pytest.raises(InputError, match=r"utterance loopy: the lattice has a cycle"):
        levels(Lattice.cat([good, loop, good]))


def test_has_path():
    ok = Lattice.from_arcs("ok", 2, [0], [1], [-1], {"am": [0.0], "lm": [0.0]})
    dead = Lattice.from_arcs("dead", 4, [0, 2], [1, 3], [4, -1],
                             {"am": [0.0] * 2, "lm": [0.0] * 2})  # 0->1, 2->final: no path
    empty = Lattice(src=torch.zeros(0, dtype=torch.int64), dst=torch.zeros(0, dtype=torch.int64),
                    label=torch.zeros(0, dtype=torch.int64), scores={"am": torch.zeros(0),
                                                                     "lm": torch.zeros(0)},
                    state_splits=torch.tensor([0, 0]), arc_splits=torch.tensor([0, 0]),
                    utt_ids=["empty"])
    assert has_path(Lattice.cat([ok, dead, empty, ok])).tolist() == [True, False, False, True]


def test_connect_tiny():
    # 0 -1-> 1 -> 4(final); 0 -2-> 2 (dead end); 3 (unreachable) -3-> 1
    lat = Lattice.from_arcs("u", 5, [0, 1, 0, 3], [1, 4, 2, 1], [1, -1, 2, 3],
                            {"am": [-1.0, -2.0, -3.0, -4.0], "lm": [0.0] * 4},
                            state_attrs={"times": torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4])},
                            ragged_arc_attrs={"tids": (torch.arange(6),
                                                       torch.tensor([0, 1, 3, 5, 6]))})
    out, arc_map = connect(lat)
    assert arc_map.tolist() == [0, 1]
    assert out.src.tolist() == [0, 1] and out.dst.tolist() == [1, 2]
    assert out.state_splits.tolist() == [0, 3]
    assert out.scores["am"].tolist() == [-1.0, -2.0]
    assert out.state_attrs["times"].tolist() == pytest.approx([0.0, 0.1, 0.4])
    values, splits = out.ragged_arc_attrs["tids"]
    assert values.tolist() == [0, 1, 2] and splits.tolist() == [0, 1, 3]


def _with_junk(lat: Lattice) -> Lattice:
    """Each lattice of ``lat`` with an unreachable state and a dead end added before its final."""
    parts = []
    for i in range(lat.num_lattices):
        one = lat[i]
        n = one.num_states  # new states n-1 (unreachable), n (dead end); final moves to n+1
        remap = torch.where(one.src == n - 1, n + 1, one.src), torch.where(one.dst == n - 1,
                                                                           n + 1, one.dst)
        src = torch.cat([remap[0], torch.tensor([n - 1, 0, n - 1])])
        dst = torch.cat([remap[1], torch.tensor([n, n, n + 1])])
        parts.append(Lattice.from_arcs(
            one.utt_ids[0], n + 2, src, dst, torch.cat([one.label, torch.tensor([7, 8, -1])]),
            {k: torch.cat([v, torch.tensor([-1.0, -1.0, -1.0])]) for k, v in one.scores.items()}))
    return Lattice.cat(parts)


def test_connect_removes_junk_and_keeps_paths():
    lat = random_batch(seed=3, num_lattices=8)
    out, arc_map = connect(_with_junk(lat))
    assert torch.equal(out.state_splits, lat.state_splits)
    assert torch.equal(out.arc_splits, lat.arc_splits)
    for i in range(lat.num_lattices):
        def path_set(x):
            score = Weights().arc_scores(x)
            return sorted((round(score[p].sum().item(), 6), tuple(path_words(x, p)))
                          for p in enumerate_paths(x, i))
        assert path_set(out) == path_set(lat)
    junk = _with_junk(lat)
    assert torch.equal(out.label, junk.label[arc_map])
    assert torch.equal(out.scores["am"], junk.scores["am"][arc_map])


def test_connect_no_path_names_utterance():
    ok = Lattice.from_arcs("ok", 2, [0], [1], [-1], {"am": [0.0], "lm": [0.0]})
    lat = Lattice.from_arcs("u", 3, [0, 1], [1, 2], [3, -1], {"am": [0.0] * 2, "lm": [0.0] * 2})
    with pytest.raises(InputError, match="utterance u: .*no path"):
        connect(Lattice.cat([ok, lat]), keep_arcs=torch.tensor([True, True, False]))
