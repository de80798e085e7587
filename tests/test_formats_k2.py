"""k2 ``as_dict`` layouts (Fsa and FsaVec), score mapping, round trips; k2 is not imported."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from formats_testing import VOCAB, assert_same, random_lattice

from lmrescore.errors import InputError
from lmrescore.formats import read_lattices, write_lattices
from lmrescore.formats.k2 import from_dict, to_dict


def _arcs(rows: list[tuple[int, int, int, float]]) -> torch.Tensor:
    t = torch.tensor([r[:3] for r in rows], dtype=torch.int32)
    score = torch.tensor([r[3] for r in rows], dtype=torch.float32).view(torch.int32)
    return torch.cat([t, score[:, None]], 1)


def test_single_fsa_icefall_style() -> None:
    # 0 -1-> 1 -2-> 2 -(-1)-> 3; labels are tokens, aux_labels words; scores = am + lm
    arcs = _arcs([(0, 1, 5, -1.5), (1, 2, 6, -2.0), (2, 3, -1, 0.0)])
    d = {"arcs": arcs, "aux_labels": torch.tensor([3, 0, -1], dtype=torch.int32),
         "lm_scores": torch.tensor([-0.5, -1.0, 0.0])}
    lat = from_dict(d, ["u"], VOCAB)
    assert lat.label.tolist() == [3, 0, -1]
    assert lat.arc_attrs["labels"].tolist() == [5, 6, -1]
    assert lat.scores["lm"].tolist() == [-0.5, -1.0, 0.0]
    assert lat.scores["am"].tolist() == [-1.0, -1.0, 0.0]
    back = to_dict(lat)
    assert back["aux_labels"].tolist() == [3, 0, -1]
    assert back["arcs"][6:].reshape(-1, 4)[:, 2].tolist() == [5, 6, -1]


def test_fsavec_layout() -> None:
    a1 = _arcs([(0, 1, 1, 1.0), (1, 2, -1, 0.5)])
    a2 = _arcs([(0, 1, -1, 2.0)])
    flat = torch.cat([torch.tensor([2, 0, 0, 3, 5, 0, 2, 3], dtype=torch.int32),
                      a1.reshape(-1), a2.reshape(-1)])
    lat = from_dict({"arcs": flat}, ["a", "b"])
    assert lat.src.tolist() == [0, 1, 3] and lat.dst.tolist() == [1, 2, 4]
    assert lat.state_splits.tolist() == [0, 3, 5] and lat.arc_splits.tolist() == [0, 2, 3]
    assert lat.scores["am"].tolist() == [1.0, 0.5, 2.0]
    assert torch.equal(to_dict(lat)["arcs"][:8], flat[:8])


def test_round_trip_file(tmp_path: Path) -> None:
    lats = [random_lattice(s, f"u{s}", 4 + s, 6 + s) for s in range(5)]
    write_lattices(str(tmp_path / "l.pt"), lats, "k2")
    got = list(read_lattices(str(tmp_path / "l.pt"), "k2", VOCAB))
    assert [u for u, _ in got] == [x.utt_ids[0] for x in lats]
    for lat, (_, back) in zip(lats, got):
        assert_same(lat, back)


def test_list_and_dict_files(tmp_path: Path) -> None:
    lat = random_lattice(1, "x", 4, 5)
    d = to_dict(lat)
    del d["utt_ids"]
    torch.save({"k1": d, "k2": d}, tmp_path / "d.pt")
    assert [u for u, _ in read_lattices(str(tmp_path / "d.pt"), "k2")] == ["k1", "k2"]
    torch.save([d, {"arcs": torch.zeros(3)}], tmp_path / "l.pt")
    got = list(read_lattices(str(tmp_path / "l.pt"), "k2"))
    assert not isinstance(got[0][1], InputError) and isinstance(got[1][1], InputError)


def test_final_label_must_enter_last_state() -> None:
    arcs = _arcs([(0, 1, -1, 0.0), (1, 2, 3, 0.0)])
    with pytest.raises(InputError, match="label -1"):
        from_dict({"arcs": arcs}, ["u"])
