"""determinize: one path per word sequence, scored as its best original path (kaldifst oracle)."""

from __future__ import annotations

from dataclasses import asdict

import math
from pathlib import Path

import kaldifst
import pytest
import torch

from lattice_testing import (enumerate_paths, path_tids, path_words, random_batch, to_kaldifst,
                             with_transition_ids)
from lmrescore.lattice.determinize import determinize
from lmrescore.lattice.epsilon import remove_epsilons
from lmrescore.errors import InputError
from lmrescore.formats import read_lattice_batches
from lmrescore.formats.kaldi import TIDS
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.ragged import ragged_lists
from lmrescore.lattice.nbest import nbest
from lmrescore.lattice.prune import prune_beam
from lmrescore.lattice.weights import Weights
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.lattice.shortest_path import best_path
from lmrescore.lm.units import WordUnits
from lmrescore.vocab import Vocab
from test_nbest_rescore import LM_VOCAB, SYMBOLS
from test_rescore import model

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = [(ROOT / "tests/fixtures/lats.ark", ROOT / "tests/fixtures/words.txt"),
            (ROOT / "egs/ptb/s5/demo/lat.ark", ROOT / "egs/ptb/s5/demo/words.txt")]
SCALES = Weights(acoustic_scale=0.5, lm_scale=1.5, word_ins_penalty=0.25)


def best_per_words(lat: Lattice, i: int, **scales: float) -> dict[tuple[int, ...], tuple]:
    """Word sequence -> (weighted score, am, lm) of its best path in lattice ``i`` (brute force)."""
    weighted = Weights(**scales).arc_scores(lat)
    best: dict[tuple[int, ...], tuple] = {}
    for path in enumerate_paths(lat, i):
        words = tuple(path_words(lat, path))
        row = (float(weighted[path].sum()), float(lat.scores["am"][path].double().sum()),
               float(lat.scores["lm"][path].double().sum()))
        if words not in best or row[0] > best[words][0]:
            best[words] = row
    return best


def one_path_per_words(lat: Lattice, i: int, **scales: float) -> dict[tuple[int, ...], tuple]:
    """Word sequence -> (weighted score, am, lm) of lattice ``i``; asserts no sequence repeats."""
    rows = best_per_words(lat, i, **scales)
    assert len(rows) == len(enumerate_paths(lat, i))
    return rows


def fst_paths(fst: kaldifst.StdVectorFst) -> dict[tuple[int, ...], float]:
    """Word sequence (nonzero labels) -> lowest cost, over all paths of an acyclic fst."""
    out: dict[tuple[int, ...], float] = {}

    def visit(state: int, words: tuple[int, ...], cost: float) -> None:
        final = fst.final(state).value
        if math.isfinite(final):
            out[words] = min(out.get(words, math.inf), cost + final)
        for arc in kaldifst.ArcIterator(fst, state):
            label = (arc.ilabel,) if arc.ilabel else ()
            visit(arc.nextstate, words + label, cost + arc.weight.value)

    visit(fst.start, (), 0.0)
    return out


def assert_deterministic(lat: Lattice) -> None:
    """No epsilons, and no state has two out-arcs with the same label."""
    assert not (lat.label == 0).any()
    pairs = torch.stack([lat.src, lat.label], 1)
    assert torch.unique(pairs, dim=0).shape[0] == lat.num_arcs


def test_tiny() -> None:
    # 0 -a-> 1 -b-> 3 -> 4, 0 -a-> 2 -b-> 3 and 2 -eps-> 3: "a b" twice, "a" once. Determinized:
    # {0} -a-> {1, 2} -b-> {3} -> {4}, and {1, 2} -> {4} (the path "a" through 2's epsilon).
    lat = Lattice.from_arcs("u", 5, [0, 1, 3, 0, 2, 2], [1, 3, 4, 2, 3, 3], [1, 2, -1, 1, 0, 2],
                            {"am": [-1.0, -1.0, 0.0, -2.0, -0.5, -0.25],
                             "lm": [0.0, -1.0, 0.0, 0.0, -0.5, 0.0]})
    det, _ = determinize(lat)
    assert_deterministic(det)
    assert det.num_states == 4 and det.num_arcs == 4
    got = one_path_per_words(det, 0)
    # "a b": best of -1-1-1 = -3 (via 1) and -2-0.25 = -2.25 (via 2, am -2.25, lm 0)
    assert got[(1, 2)] == pytest.approx((-2.25, -2.25, 0.0))
    assert got[(1,)] == pytest.approx((-3.0, -2.5, -0.5))


@pytest.mark.parametrize("seed", range(6))
def test_one_best_path_per_word_sequence(seed: int) -> None:
    lat = random_batch(seed=seed, num_lattices=12, max_states=9, max_extra_arcs=12)
    det, _ = determinize(lat, SCALES)
    assert_deterministic(det)
    assert det.utt_ids == lat.utt_ids
    for i in range(lat.num_lattices):
        want = best_per_words(lat, i, **asdict(SCALES))
        got = one_path_per_words(det, i, **asdict(SCALES))
        assert set(got) == set(want)
        for words, row in got.items():
            assert row == pytest.approx(want[words], abs=1e-4)


def best_tids_per_words(lat: Lattice, i: int, **scales: float) -> dict[tuple[int, ...], list]:
    """Word sequence -> the transition ids of each path of lattice ``i`` within 1e-4 of its best
    weighted score (brute force; one path unless scores tie)."""
    weighted = Weights(**scales).arc_scores(lat)
    scored = [(tuple(path_words(lat, p)), float(weighted[p].sum()), path_tids(lat, p))
              for p in enumerate_paths(lat, i)]
    best: dict[tuple[int, ...], float] = {}
    for words, score, _ in scored:
        best[words] = max(score, best.get(words, -math.inf))
    out: dict[tuple[int, ...], list] = {}
    for words, score, tids in scored:
        if score >= best[words] - 1e-4:
            out.setdefault(words, []).append(tids)
    return out


def test_transition_ids_follow_the_best_path() -> None:
    # 0 -a-> 1 (am -1, tids [1]), 0 -a-> 2 (-2, [2]), 1 -b-> 3 (-5, [3]), 2 -b-> 3 (-1, [4]),
    # 1 -c-> 3 (-1, [5]), 3 -> 4 (0, [6]). "a b" is best via 2 (-3, not -6): tids [2, 4, 6];
    # "a c" only via 1: [1, 5, 6]. Determinized: {0} -a-> {1, 2} -b-> {3} -> {4} and
    # {1, 2} -c-> {3}. The a arc's best member is 1 (arc 0) but the members' strings differ,
    # so it carries no tids; the b arc carries [2, 4] (a via 2, then b), the c arc [1, 5].
    lat = Lattice.from_arcs("u", 5, [0, 0, 1, 2, 1, 3], [1, 2, 3, 3, 3, 4], [1, 1, 2, 2, 3, -1],
                            {"am": [-1.0, -2.0, -5.0, -1.0, -1.0, 0.0], "lm": [0.0] * 6},
                            arc_attrs={"aux": torch.arange(6)},
                            state_attrs={"times": torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4])},
                            ragged_arc_attrs={TIDS: (torch.tensor([1, 2, 3, 4, 5, 6]),
                                                     torch.arange(7))})
    det, arc_map = determinize(lat)
    assert det.label.tolist() == [1, 2, 3, -1]
    assert arc_map.tolist() == [0, 3, 4, 5] and det.arc_attrs["aux"].tolist() == [0, 3, 4, 5]
    assert ragged_lists(*det.ragged_arc_attrs[TIDS]) == [[], [2, 4], [1, 5], [6]]
    assert det.state_attrs["times"].tolist() == pytest.approx([0.0, 0.1, 0.3, 0.4])
    assert det.scores["am"].tolist() == [-1.0, -2.0, -1.0, 0.0]


@pytest.mark.parametrize("seed", range(6))
def test_paths_carry_the_best_paths_transition_ids(seed: int) -> None:
    lat = with_transition_ids(random_batch(seed=seed, num_lattices=12, max_states=9,
                                           max_extra_arcs=12), seed)
    det, arc_map = determinize(lat, SCALES)
    assert torch.equal(det.label, lat.label[arc_map]) and (det.label != 0).all()
    assert torch.equal(det.arc_attrs["aux"], arc_map)
    for i in range(lat.num_lattices):
        want = best_tids_per_words(lat, i, **asdict(SCALES))
        got = {tuple(path_words(det, p)): path_tids(det, p) for p in enumerate_paths(det, i)}
        assert set(got) == set(want)
        for words, tids in got.items():
            assert tids in want[words], (lat.utt_ids[i], words)
    before, after = best_path(lat, SCALES), best_path(det, SCALES)
    assert after.word_lists() == before.word_lists()
    for i in range(lat.num_lattices):
        path = lambda b: b.arcs[b.arc_splits[i]:b.arc_splits[i + 1]].tolist()
        assert path_tids(det, path(after)) == path_tids(lat, path(before))


def test_remove_epsilons_keeps_the_best_paths_transition_ids() -> None:
    lat = with_transition_ids(random_batch(seed=9, num_lattices=10, max_states=9,
                                           max_extra_arcs=10), 9)
    out, arc_map = remove_epsilons(lat, SCALES)
    assert torch.equal(out.label, lat.label[arc_map]) and (out.label != 0).all()
    assert torch.equal(out.arc_attrs["aux"], arc_map)
    for i in range(lat.num_lattices):
        want = best_tids_per_words(lat, i, **asdict(SCALES))
        got = best_tids_per_words(out, i, **asdict(SCALES))
        assert set(got) == set(want)
        for words, tids in got.items():
            assert all(t in want[words] for t in tids), (lat.utt_ids[i], words)


@pytest.mark.parametrize("seed", range(4))
def test_same_word_costs_as_kaldifst(seed: int) -> None:
    lat = random_batch(seed=100 + seed, num_lattices=10, max_states=10, max_extra_arcs=14)
    det, _ = determinize(lat, SCALES)
    for i in range(lat.num_lattices):
        fst = to_kaldifst(lat, i, SCALES.arc_scores(lat))
        kaldifst.rmepsilon(fst)
        theirs = fst_paths(kaldifst.determinize(fst, delta=1e-6))
        ours = fst_paths(to_kaldifst(det, i, SCALES.arc_scores(det), final_arcs=True))
        assert set(ours) == set(theirs)
        for words, cost in ours.items():
            assert cost == pytest.approx(theirs[words], abs=1e-4)


def test_hash_collisions_do_not_merge_subsets(monkeypatch: pytest.MonkeyPatch) -> None:
    lat = random_batch(seed=5, num_lattices=8, max_states=9, max_extra_arcs=12)
    want, _ = determinize(lat, SCALES)
    monkeypatch.setattr("lmrescore.lattice.determinize._P", 3)  # subset keys in 0..8: many collisions
    got, _ = determinize(lat, SCALES)
    assert torch.equal(got.state_splits, want.state_splits)
    assert torch.equal(got.arc_splits, want.arc_splits)
    for i in range(lat.num_lattices):
        assert one_path_per_words(got, i, **asdict(SCALES)) == one_path_per_words(want, i, **asdict(SCALES))


def test_remove_epsilons_keeps_best_per_word_sequence() -> None:
    lat = random_batch(seed=7, num_lattices=10, max_states=9, max_extra_arcs=10)
    out, _ = remove_epsilons(lat, SCALES)
    assert not (out.label == 0).any()
    for i in range(lat.num_lattices):
        want = best_per_words(lat, i, **asdict(SCALES))
        got = best_per_words(out, i, **asdict(SCALES))
        assert set(got) == set(want)
        for words, row in got.items():
            assert row == pytest.approx(want[words], abs=1e-4)


def test_max_states_names_the_utterance() -> None:
    lat = random_batch(seed=3, num_lattices=6, max_states=9, max_extra_arcs=12)
    sizes = determinize(lat)[0].state_splits.diff()
    big = int(sizes.argmax())
    with pytest.raises(InputError, match=f"utterance {lat.utt_ids[big]}:"):
        determinize(lat, max_states=int(sizes.max()) - 1)
    assert torch.equal(determinize(lat, max_states=int(sizes.max()))[0].state_splits.diff(),
                       sizes)


@pytest.mark.parametrize("method,first_pass_scale", [("fixed-point", 0.0),
                                                     ("fixed-point", 0.3), ("nbest", 0.3)])
def test_rescoring_keeps_the_best_path(method: str, first_pass_scale: float) -> None:
    # each word sequence keeps its path with the best acoustic_scale * am + first_pass_scale *
    # lm, which is its best path after rescoring: the rescored best path is unchanged
    lat = random_batch(seed=31, num_lattices=8, max_states=9, max_extra_arcs=12)
    lm = model("lstm", 2).float()
    best = {}
    for det in (False, True):
        opts = RescoreOptions(method=method, num_paths=1000, weights=Weights(0.5, 0.8, 0.7),
                              first_pass_scale=first_pass_scale, unk_penalty=2.0,
                              determinize=det)
        best[det] = LatticeRescorer(lm, WordUnits(LM_VOCAB), SYMBOLS, opts).rescore(lat).best
    assert torch.allclose(best[True].score, best[False].score, atol=1e-4)
    assert best[True].word_lists() == best[False].word_lists()


@pytest.mark.parametrize("method", ["fixed-point", "nbest"])
def test_rescoring_keeps_transition_ids(method: str) -> None:
    # the rescored best path carries the transition ids of the original path with its words
    # that determinization kept: the best by acoustic_scale * am + first_pass_scale * lm
    lat = with_transition_ids(random_batch(seed=31, num_lattices=8, max_states=9,
                                           max_extra_arcs=12), 31)
    opts = RescoreOptions(method=method, num_paths=1000, weights=Weights(0.5, 0.8, 0.7),
                          first_pass_scale=0.3, unk_penalty=2.0, determinize=True)
    out = LatticeRescorer(model("lstm", 2).float(), WordUnits(LM_VOCAB), SYMBOLS,
                          opts).rescore(lat)
    assert out.lattice.utt_ids == lat.utt_ids
    best = out.best
    for i, words in enumerate(best.word_lists()):
        want = best_tids_per_words(lat, i, acoustic_scale=0.5, lm_scale=0.3,
                                   word_ins_penalty=0.7)[tuple(words)]
        arcs = best.arcs[best.arc_splits[i]:best.arc_splits[i + 1]].tolist()
        assert path_tids(out.lattice, arcs) in want


def _fixture_lattices() -> list[tuple[str, Lattice]]:
    out = []
    for ark, words in FIXTURES:
        for lat, _ in read_lattice_batches(f"ark:{ark}", "kaldi", Vocab.load(words)):
            out.append((ark.name, lat))
    return out


@pytest.mark.parametrize("beam,acoustic_scale", [(3.0, 0.1), (8.0, 0.05)])
def test_real_lattices_same_best_and_nbest(beam: float, acoustic_scale: float) -> None:
    for name, lat in _fixture_lattices():
        pruned, _ = prune_beam(lat, beam, Weights(acoustic_scale))
        det, _ = determinize(pruned, Weights(acoustic_scale))
        assert_deterministic(det)
        print(f"{name} beam {beam} acoustic scale {acoustic_scale}: {lat.num_arcs} arcs, "
              f"{pruned.num_arcs} pruned, {det.num_arcs} determinized")
        before, after = best_path(pruned, Weights(acoustic_scale)), best_path(det, Weights(acoustic_scale))
        assert torch.allclose(after.score, before.score, atol=1e-4)
        # the original's N best paths, first occurrence of each word sequence, are exactly the
        # determinized lattice's best word sequences (above the original's N-th path score)
        n = 300
        ours = nbest(det, 20, Weights(acoustic_scale))
        theirs = nbest(pruned, n, Weights(acoustic_scale))
        for i in range(lat.num_lattices):
            seen: dict[tuple[int, ...], float] = {}
            p0, p1 = int(theirs.path_splits[i]), int(theirs.path_splits[i + 1])
            for words, score in zip(theirs.word_lists()[i], theirs.score[p0:p1].tolist()):
                seen.setdefault(tuple(words), score)
            floor = float(theirs.score[p1 - 1]) if p1 - p0 == n else -math.inf
            q0, q1 = int(ours.path_splits[i]), int(ours.path_splits[i + 1])
            got = [(tuple(w), s) for w, s in zip(ours.word_lists()[i],
                                                 ours.score[q0:q1].tolist()) if s > floor + 1e-3]
            assert len({w for w, _ in got}) == len(got)
            for words, score in got:
                assert score == pytest.approx(seen[words], abs=1e-4)
            assert len(got) == min(q1 - q0, sum(s > floor + 1e-3 for s in seen.values()))
