"""HTK SLF: PocketSphinx fixtures, word placement conventions, scores, round trips, errors."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from formats_testing import VOCAB, assert_same, random_lattice

from lmrescore.errors import InputError
from lmrescore.formats import read_lattices, write_lattices
from lmrescore.formats.slf import parse_slf
from lmrescore.vocab import Vocab

FIXTURES = Path(__file__).parent / "fixtures"


def test_pocketsphinx_fixtures_word_of_start_node_labels_link() -> None:
    vocab = Vocab.load(FIXTURES / "words.txt")
    for path in sorted((FIXTURES / "slf").glob("*.slf")):
        text = path.read_text()
        lat = parse_slf(text, vocab, name=str(path))
        nodes = dict(re.findall(r"^I=(\d+)\s+t=\S+\s+W=(\S+)", text, re.M))
        links = re.findall(r"^J=\d+\s+S=(\d+)\s+E=(\d+)\s+a=(\S+)", text, re.M)
        assert lat.num_arcs == len(links) + 1  # plus the arc into the new final state
        words = [re.sub(r"\(\d+\)$", "", nodes[s]) for s, _, _ in links]
        want = sorted((0 if w.startswith(("!", "<")) else vocab.ids[w], np.float32(a))
                      for w, (_, _, a) in zip(words, links))
        real = lat.label >= 0
        got = sorted(zip(lat.label[real].tolist(), lat.scores["am"][real].numpy()))
        assert got == want
        assert "times" in lat.state_attrs and float(lat.state_attrs["times"][0]) == 0.0


def test_round_trip_through_slf_files(tmp_path: Path) -> None:
    # <s> and </s> read back as epsilon (sentence boundaries are implicit): keep them out
    lats = [random_lattice(s, f"u{s}", 5, 9, 0) for s in range(4)]
    lats = [replace(x, label=torch.where((x.label == VOCAB.bos) | (x.label == VOCAB.eos), 4,
                                         x.label)) for x in lats]
    assert write_lattices(str(tmp_path), lats, "slf") == (4, [])
    got = list(read_lattices(str(tmp_path), "slf", VOCAB))
    for lat, (utt, back) in zip(lats, got):
        assert utt == lat.utt_ids[0]
        # SLF has no transition ids; arcs into the end node come back as the -1 arcs
        assert_same(lat, back, ragged=False)


FORWARD = """VERSION=1.0
UTTERANCE=fw
base=10
N=4 L=4
I=0 t=0.0 W=!NULL
I=1 t=0.5 W=w1
I=2 t=0.5 W=w2(2)
I=3 t=1.0 W=!NULL
J=0 S=0 E=1 a=-2.0 l=-1.0
J=1 S=0 E=2 a=-3.0 l=-0.5 r=-0.25
J=2 S=1 E=3 a=0 l=0
J=3 S=2 E=3 a=0 l=0
"""


def test_forward_node_words_base_and_pron_prob() -> None:
    lat = parse_slf(FORWARD, VOCAB)
    assert lat.utt_ids == ["fw"]
    assert lat.label.tolist() == [VOCAB.ids["w1"], VOCAB.ids["w2"], -1, -1]
    ln10 = math.log(10)
    assert torch.allclose(lat.scores["am"], torch.tensor([-2.0, -3.0, 0, 0]) * ln10)
    assert torch.allclose(lat.scores["lm"], torch.tensor([-1.0, -0.75, 0, 0]) * ln10)
    assert lat.num_states == 4  # the end node is the final state


def test_unknown_word_and_missing_field() -> None:
    bad = FORWARD.replace("W=w1", "W=zebra")
    with pytest.raises(InputError, match=r"(?s)fw.*'zebra'"):
        parse_slf(bad, VOCAB, name="x.slf")
    lat = parse_slf(bad, VOCAB, oov="unk")
    assert lat.label[0] == VOCAB.unk
    with pytest.raises(InputError, match="lacks the field"):
        parse_slf(FORWARD.replace("J=2 S=1 E=3", "J=2 S=1"), VOCAB)
    with pytest.raises(InputError, match="N=4 L=5, file has 4 nodes and 4 links"):
        parse_slf(FORWARD.replace("L=4", "L=5"), VOCAB)


def test_bad_file_among_good_ones(tmp_path: Path) -> None:
    (tmp_path / "a.slf").write_text(FORWARD.replace("UTTERANCE=fw", "UTTERANCE=a"))
    (tmp_path / "b.slf").write_text(FORWARD.replace("W=w1", "W=zebra"))
    (tmp_path / "c.slf").write_text(FORWARD.replace("UTTERANCE=fw", "UTTERANCE=c"))
    got = list(read_lattices(str(tmp_path), "slf", VOCAB))
    assert [u for u, _ in got] == ["a", "b.slf", "c"]
    assert isinstance(got[1][1], InputError) and "b.slf" in str(got[1][1])
