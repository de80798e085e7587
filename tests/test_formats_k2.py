"""k2 ``as_dict`` layouts (Fsa and FsaVec), score mapping, round trips; k2 is not imported."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import test_cli_score as cli
import torch
from formats_testing import VOCAB, assert_same, random_lattice

from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.formats import input_format, read_lattices, write_lattices
from lmrescore.formats.k2 import from_dict, to_dict
from lmrescore.vocab import Vocab


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


# --- icefall's lattices: ragged aux_labels, as k2 writes them ---------------------------------
# k2/python/k2/fsa.py ``Fsa.as_dict``: ``{"arcs": _k2.fsa_to_tensor(arcs), <every tensor
# attribute as it is>, <every non-tensor attribute>}``; a ragged aux_labels is a k2.RaggedTensor,
# the pybind11 class ``_k2.ragged.RaggedTensor`` whose ``__getstate__``
# (k2/python/csrc/torch/v2/any.cu, ``py::pickle``) is ``(row_splits1, "row_ids1", values)``.
# The stand-in below pickles exactly as that class does (NEWOBJ of the global, BUILD with the
# state); it is put in sys.modules only for these tests.


class _RaggedTensor:
    """k2.RaggedTensor as the pickler sees it (state only); ``.lists`` for the tests."""

    def __init__(self, lists: list[list[int]]) -> None:
        splits = torch.tensor([0] + [len(x) for x in lists]).cumsum(0).int()
        values = torch.tensor([v for x in lists for v in x], dtype=torch.int32)
        self.state = (splits, "row_ids1", values)

    def __getstate__(self) -> tuple:
        return self.state

    def __setstate__(self, state: tuple) -> None:
        self.state = state

    @property
    def lists(self) -> list[list[int]]:
        s, v = self.state[0].tolist(), self.state[2].tolist()
        return [v[b:e] for b, e in zip(s[:-1], s[1:])]


@pytest.fixture
def k2_module(monkeypatch: pytest.MonkeyPatch) -> type:
    mod_k2, mod_ragged = types.ModuleType("_k2"), types.ModuleType("_k2.ragged")
    cls = type("RaggedTensor", (_RaggedTensor,), {"__module__": "_k2.ragged"})
    mod_ragged.RaggedTensor = cls
    mod_k2.ragged = mod_ragged
    monkeypatch.setitem(sys.modules, "_k2", mod_k2)
    monkeypatch.setitem(sys.modules, "_k2.ragged", mod_ragged)
    return cls


# Two FSAs (src, dst, token, words, score). The first: arcs with 0, 1 and 3 words, -1 on its
# final arc (as k2.determinize leaves it); the second: an empty list on its final arc.
FSA1 = [(0, 1, 5, [], -1.0), (0, 1, 6, [7], -2.0), (0, 2, 8, [9, 10, 11], -0.5),
        (1, 2, 3, [12, 13, 14], -0.25), (1, 3, -1, [15, -1], -3.0), (2, 3, -1, [-1], -0.125)]
FSA2 = [(0, 1, 2, [16], -1.5), (0, 2, 4, [], -0.75), (1, 2, 0, [17, 18], 0.5),
        (2, 3, -1, [], -2.0)]


def _k2_dict(cls: type, fsas: list[list[tuple]]) -> dict:
    """An FsaVec's as_dict(): arcs as _k2.fsa_to_tensor lays out an FsaVec, ragged aux_labels."""
    states = [max(max(a[0], a[1]) for a in f) + 1 for f in fsas]
    rows = [a for f in fsas for a in f]
    head = [len(fsas), 0, 0, *torch.tensor(states).cumsum(0).tolist(),
            0, *torch.tensor([len(f) for f in fsas]).cumsum(0).tolist()]
    arcs = _arcs([(a[0], a[1], a[2], a[4]) for a in rows]).reshape(-1)
    return {"arcs": torch.cat([torch.tensor(head, dtype=torch.int32), arcs]),
            "aux_labels": cls([a[3] for a in rows]),
            "lm_scores": torch.tensor([a[4] / 4 for a in rows]),
            "labels_version": 0, "utt_ids": ["a", "b", "c"][:len(fsas)]}


def _k2_paths(fsa: list[tuple]) -> list[tuple[tuple[int, ...], float]]:
    """(words, score) of every path of a k2 FSA; words as icefall's get_texts takes them (> 0)."""
    final = max(a[1] for a in fsa)
    out = []

    def walk(state: int, words: tuple[int, ...], score: float) -> None:
        if state == final:
            out.append((words, round(score, 4)))
        for src, dst, _, ws, s in fsa:
            if src == state:
                walk(dst, words + tuple(w for w in ws if w > 0), score + s)
    walk(0, (), 0.0)
    return sorted(out)


def _our_paths(lat) -> list[tuple[tuple[int, ...], float]]:
    """(words, am + lm) of every path of a batch of one."""
    src, dst, label = lat.src.tolist(), lat.dst.tolist(), lat.label.tolist()
    score = (lat.scores["am"] + lat.scores["lm"]).tolist()
    final, out = lat.num_states - 1, []

    def walk(state: int, words: tuple[int, ...], total: float) -> None:
        if state == final:
            out.append((words, round(total, 4)))
        for a in range(lat.num_arcs):
            if src[a] == state:
                walk(dst[a], words + ((label[a],) if label[a] > 0 else ()), total + score[a])
    walk(0, (), 0.0)
    return sorted(out)


def test_ragged_aux_labels_become_word_chains(k2_module: type, tmp_path: Path) -> None:
    torch.save(_k2_dict(k2_module, [FSA1, FSA2]), tmp_path / "lats.pt")
    got = dict(read_lattices(str(tmp_path / "lats.pt"), "k2", VOCAB))
    assert list(got) == ["a", "b"]
    for fsa, utt in ((FSA1, "a"), (FSA2, "b")):
        assert _our_paths(got[utt]) == _k2_paths(fsa)
    a = got["a"]  # 0, 1 and 3 words: 1 + 1 + 3 + 3 + 2 + 1 arcs, 2 + 2 + 1 new states
    assert a.num_arcs == 11 and a.num_states == 4 + 5
    assert a.label[a.dst == a.num_states - 1].eq(-1).all()
    assert a.arc_attrs["labels"].tolist().count(0) == 5  # tokens on each chain's first arc


def test_ragged_round_trip_gives_k2_s_dict_back(k2_module: type, tmp_path: Path) -> None:
    d = _k2_dict(k2_module, [FSA1, FSA2])
    torch.save(d, tmp_path / "in.pt")
    assert main(["convert", str(tmp_path / "in.pt"), str(tmp_path / "out.pt"),
                 "--out-format", "k2"]) == 0
    back = torch.load(tmp_path / "out.pt", weights_only=False)  # as k2 users load it
    assert isinstance(back["aux_labels"], k2_module)
    assert back["aux_labels"].lists == d["aux_labels"].lists
    assert torch.equal(back["arcs"], d["arcs"])
    assert torch.equal(back["lm_scores"], d["lm_scores"])
    assert back["utt_ids"] == ["a", "b"]


def test_rescoring_a_ragged_lattice_writes_k2_s_layout(k2_module: type, tmp_path: Path) -> None:
    model = tmp_path / "lm.pt"
    cli.make_model(model)
    torch.save(_k2_dict(k2_module, [FSA1, FSA2]), tmp_path / "lats.pt")
    assert main(["--log-level", "WARNING", "score", "--model", str(model),
                 "--lattice", str(tmp_path / "lats.pt"), "--words", cli.WORDS,
                 "--acoustic-scale", "1", "--one-best", str(tmp_path / "hyp"),
                 "--write-lattice", str(tmp_path / "out.pt")]) == 0
    words = Vocab.load(cli.WORDS)
    hyp = dict(line.split(" ", 1) for line in (tmp_path / "hyp").read_text().splitlines())
    for fsa, utt in ((FSA1, "a"), (FSA2, "b")):
        assert hyp[utt].split() in [words.decode(list(w)) for w, _ in _k2_paths(fsa)]
    back = torch.load(tmp_path / "out.pt", weights_only=False)
    assert isinstance(back["aux_labels"], k2_module)
    n = int(back["arcs"][0])
    assert len(back["aux_labels"].lists) == int(back["arcs"][3 + 2 * n])  # one list per arc
    again = dict(read_lattices(str(tmp_path / "out.pt"), "auto", words))
    assert set(again) == {"a", "b"} and not any(isinstance(x, InputError) for x in again.values())


def test_bad_ragged_aux_labels_fail_their_dict(k2_module: type, tmp_path: Path) -> None:
    d = _k2_dict(k2_module, [FSA1])
    d["aux_labels"].state = (d["aux_labels"].state[0][:-1], "row_ids1", d["aux_labels"].state[2])
    torch.save(d, tmp_path / "bad.pt")
    (_, err), = read_lattices(str(tmp_path / "bad.pt"), "k2")
    assert isinstance(err, InputError) and "RaggedTensor" in str(err)


def test_pt_is_k2_by_default(tmp_path: Path) -> None:
    assert input_format("lats.pt") == "k2" and input_format("ark:lats.pt") == "kaldi"
    assert input_format("ark,t:-") == "kaldi" and input_format("x.pt", "slf") == "slf"
    lat = from_dict({"arcs": _arcs([(0, 1, 3, -1.0), (1, 2, -1, 0.0)])}, ["x"])
    write_lattices(str(tmp_path / "l.pt"), [lat], "k2")
    assert main(["info", str(tmp_path / "l.pt")]) == 0  # no --format: read as k2


_BOMB = """
import resource, sys, torch
torch.save({"arcs": torch.zeros(4, dtype=torch.int32).expand(2**31, 4)}, sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from lmrescore.cli import main
sys.exit(main(["info", sys.argv[1]]))
"""


def test_stride_zero_tensor_is_refused_before_use(tmp_path: Path) -> None:
    # 2**31 x 4 int32 from a 16-byte storage: any op on it would need 32 GB
    bomb = tmp_path / "bomb.pt"
    p = subprocess.run([sys.executable, "-c", _BOMB, str(bomb)], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert bomb.stat().st_size < 4096
    errors = [x for x in p.stderr.splitlines() if str(bomb) in x]
    assert p.returncode == 1, p.stderr
    assert len(errors) == 1 and "storage holds 16" in errors[0], p.stderr
