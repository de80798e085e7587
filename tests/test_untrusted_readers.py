"""Untrusted inputs: each reader fails one utterance with an InputError, never crashes or escapes.

One test per failure of issue #16 (reproduced before the fix), then property-based fuzzing of
every reader (SLF, k2 dict, words.txt, corpus text, ARPA) with a fixed example budget.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from formats_testing import VOCAB, assert_same, random_lattice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_arpa import SMALL as ARPA

from lmrescore.cli import main
from lmrescore.errors import Failure, InputError
from lmrescore.formats import read_lattices, write_lattices
from lmrescore.formats.k2 import from_dict, read_k2, to_dict
from lmrescore.formats.slf import parse_slf, read_slf, slf_file_name
from lmrescore.lattice.lattice import Lattice
from lmrescore.lm.arpa import read_arpa
from lmrescore.lm.data import read_sentences
from lmrescore.vocab import Vocab

FIXTURES = Path(__file__).parent / "fixtures"
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

GOOD_SLF = """VERSION=1.0
UTTERANCE=fw
N=4 L=4
I=0 t=0.0
I=1 t=0.5 W=w1
I=2 t=0.5 W=w2
I=3 t=1.0 W=!NULL
J=0 S=0 E=1 a=-2.0 l=-1.0
J=1 S=0 E=2 a=-3.0 l=-0.5
J=2 S=1 E=3 a=0 l=0
J=3 S=2 E=3 a=0 l=0
"""


def _plain(lat: Lattice) -> Lattice:
    """A copy without transition ids (SLF does not keep them)."""
    return Lattice(lat.src, lat.dst, lat.label, lat.scores, lat.state_splits, lat.arc_splits,
                   lat.utt_ids, lat.symbols)


# --- path traversal: SLF file names --------------------------------------------------------

@pytest.mark.parametrize("bad", ["../../x", "a/b", "/ABS/x", "..", "a..b", "a\\b", "a\nb",
                                 "a b", "", "a\x00b", 'a"b', "x" * 300, "\udc80"])
def test_slf_file_name_refuses_what_would_leave_or_break_the_folder(bad: str) -> None:
    with pytest.raises(InputError, match="utterance"):
        slf_file_name(bad)


def test_slf_file_name_keeps_ordinary_ids() -> None:
    for good in ("spk1-utt_0001", "ptb-001", "a.b", "über-3", "x" * 195):
        assert slf_file_name(good) == f"{good}.slf"


def test_write_slf_bad_id_fails_that_utterance_only(tmp_path: Path) -> None:
    out = tmp_path / "a" / "out"
    out.mkdir(parents=True)
    abs_target = tmp_path / "abs" / "x"
    ids = ["good1", "../../x", str(abs_target), "good2", "good1"]
    lats = [_plain(random_lattice(i, u, 4, 5)) for i, u in enumerate(ids)]
    written, failures = write_lattices(str(out), lats, "slf")
    assert written == 2
    assert [f.utt_id for f in failures] == ids[1:3] + ["good1"]
    assert all(isinstance(f, Failure) and f.message for f in failures)
    assert "twice" in failures[2].message
    assert sorted(p.name for p in out.iterdir()) == ["good1.slf", "good2.slf"]
    assert not (tmp_path / "x.slf").exists() and not (tmp_path / "abs").exists()
    back = dict(read_lattices(str(out), "slf", VOCAB))
    assert back["good2"].num_arcs == lats[3].num_arcs


def test_convert_counts_an_unwritable_id_as_failed(tmp_path: Path) -> None:
    lats = [random_lattice(1, "ok", 4, 5), random_lattice(2, "../evil", 4, 5)]
    write_lattices(str(tmp_path / "l.pt"), lats, "k2")
    args = ["convert", str(tmp_path / "l.pt"), str(tmp_path / "slf"), "--in-format", "k2",
            "--out-format", "slf", "--words", str(FIXTURES / "words.txt")]
    assert main(args) == 1
    assert main(args + ["--max-failures", "0.5"]) == 0
    assert [p.name for p in (tmp_path / "slf").iterdir()] == ["ok.slf"]
    assert not (tmp_path / "evil.slf").exists()


def score_args_with_an_id(tmp_path: Path, index: int, utt: str) -> list[str]:
    """``lmrescore score`` arguments over the fixtures as a k2 file, lattice ``index``
    renamed ``utt``, with a tiny random model; 1-best to tmp_path/hyp."""
    from test_cli_score import make_model

    make_model(tmp_path / "lm.pt")
    words = Vocab.load(FIXTURES / "words.txt")
    lats = [lat for _, lat in read_lattices(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", words)]
    lats[index] = replace(lats[index], utt_ids=[utt])
    write_lattices(str(tmp_path / "l.pt"), lats, "k2")
    return ["--log-level", "ERROR", "score", "--model", str(tmp_path / "lm.pt"), "--lattice",
            str(tmp_path / "l.pt"), "--format", "k2", "--words", str(FIXTURES / "words.txt"),
            "--one-best", str(tmp_path / "hyp")]


def test_score_counts_an_unwritable_id_as_failed(tmp_path: Path) -> None:
    args = score_args_with_an_id(tmp_path, 1, "../evil") + [
        "--write-lattice", str(tmp_path / "slf"), "--out-format", "slf"]
    assert main(args) == 1
    assert main(args + ["--max-failures", "0.2"]) == 0
    assert len((tmp_path / "hyp").read_text().splitlines()) == 5
    assert len(list((tmp_path / "slf").iterdir())) == 4
    assert not (tmp_path / "evil.slf").exists()


# --- k2: state indices, malformed dicts, sizes, costs ---------------------------------------

def _fsavec(lats: list[Lattice]) -> dict:
    return to_dict(Lattice.cat(lats))


@pytest.mark.parametrize("where", ["dst_next", "src_negative", "dst_negative"])
def test_k2_bad_state_index_does_not_reach_the_neighbour(where: str) -> None:
    a, b = random_lattice(1, "a", 4, 6), random_lattice(2, "b", 5, 7)
    d = _fsavec([a, b])
    arcs = d["arcs"][4 + 2 * 2:].reshape(-1, 4)
    col = 0 if where == "src_negative" else 1
    arcs[0, col] = 4 if where == "dst_next" else -1  # state 4 of a is state 0 of b
    got = list(read_k2_dict(d))
    assert [u for u, _ in got] == ["a", "b"]
    assert isinstance(got[0][1], InputError)
    assert "arc 0" in str(got[0][1]) and "utterance a" in str(got[0][1])
    assert_same(got[1][1], b)


def read_k2_dict(d: object) -> list:
    """Read ``d`` through a real ``.pt`` file, as the CLI does."""
    with tempfile.TemporaryDirectory() as tmpdir:
        path = Path(tmpdir) / "l.pt"
        torch.save(d, path)
        return list(read_k2(path, VOCAB))


def _one_fsa() -> dict:
    return to_dict(random_lattice(3, "u", 4, 6))


def _bad_dicts() -> dict[str, object]:
    single = {"arcs": torch.tensor([[0, 1, 2, 0], [1, 2, -1, 0]], dtype=torch.int32)}
    cases: dict[str, object] = {
        "arcs (A, 3)": {"arcs": single["arcs"][:, :3].contiguous()},
        "arcs float": {"arcs": single["arcs"].float()},
        "arcs 3-D": {"arcs": single["arcs"][None]},
        "arcs not a tensor": {"arcs": [[0, 1, 2, 0]]},
        "not a dict": [1, 2, 3],
        "lm_scores short": {**single, "lm_scores": torch.zeros(1)},
        "am_scores 2-D": {**single, "am_scores": torch.zeros(2, 2)},
        "aux_labels long": {**single, "aux_labels": torch.zeros(3, dtype=torch.int32)},
        "aux_labels float": {**single, "aux_labels": torch.zeros(2)},
        "attribute short": {**single, "tokens": torch.zeros(5)},
        "state_attrs short": {**single, "state_attrs": {"times": torch.zeros(1)}},
        "state_attrs not a dict": {**single, "state_attrs": 7},
        "ragged splits short": {**single, "ragged_arc_attrs": {"t": (torch.zeros(2),
                                                                    torch.zeros(2))}},
        "ragged splits decreasing": {**single, "ragged_arc_attrs": {
            "t": (torch.zeros(2), torch.tensor([0, 2, 1]))}},
        "utt_ids not strings": {**single, "utt_ids": [3]},
        "utt_ids wrong count": {**single, "utt_ids": ["a", "b"]},
        "utt_ids a string": {**single, "utt_ids": "ab"},
    }
    vec = _one_fsa()
    n_body = vec["arcs"].shape[0]
    for name, change in {"num_fsas negative": (0, -1), "num_fsas huge": (0, 10 ** 9),
                         "state splits decreasing": (3, -5), "arc splits past the end": (5, 999),
                         "arc splits not from 0": (4, 1)}.items():
        arcs = vec["arcs"].clone()
        arcs[change[0]] = change[1]
        cases[name] = {**vec, "arcs": arcs}
    cases["body truncated"] = {**vec, "arcs": vec["arcs"][: n_body - 2]}
    cases["header truncated"] = {"arcs": vec["arcs"][:3]}
    cases["empty arcs"] = {"arcs": torch.zeros(0, dtype=torch.int32)}
    return cases


@pytest.mark.parametrize("case", list(_bad_dicts()))
def test_k2_malformed_dict_is_an_input_error(case: str) -> None:
    d = _bad_dicts()[case]
    with pytest.raises(InputError, match="<k2>"):
        from_dict(d)


def test_k2_malformed_item_fails_only_itself(tmp_path: Path) -> None:
    good = _one_fsa()
    got = read_k2_dict([good, {"arcs": torch.zeros(3, 3, dtype=torch.int32)}, "junk", good])
    assert [isinstance(x, InputError) for _, x in got] == [False, True, True, False]
    assert "[1]" in str(got[1][1]) and "[2]" in str(got[2][1])


def test_k2_file_over_the_byte_cap_is_refused_unread(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "l.pt"
    torch.save(_one_fsa(), path)
    assert [isinstance(x, InputError) for _, x in read_k2(path, VOCAB)] == [False]
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    (utt, err), = read_k2(path, VOCAB, max_bytes=path.stat().st_size - 1)
    assert isinstance(err, InputError) and f"{path.stat().st_size} bytes, over the cap" in str(err)


def test_k2_arc_to_state_two_billion_fails_before_allocating() -> None:
    d = {"arcs": torch.tensor([[0, 2_000_000_000, 2, 0], [2_000_000_000, 2_000_000_001, -1, 0]],
                              dtype=torch.int32)}
    tic = time.time()
    with pytest.raises(InputError, match="states.*cap"):
        from_dict(d, ["u"])
    with pytest.raises(InputError, match="arcs.*cap"):
        from_dict(_one_fsa(), max_arcs=3)
    assert time.time() - tic < 5


def test_k2_fsavec_claiming_two_billion_states_fails_that_fsa() -> None:
    a, b = random_lattice(1, "a", 4, 6), random_lattice(2, "b", 5, 7)
    d = _fsavec([a, b])
    arcs = d["arcs"]
    arcs[3] = 2_000_000_000  # state_splits = [0, 2e9, 2e9 + 5]: the first FSA claims 2e9 states
    arcs[4] = 2_000_000_005
    got = read_k2_dict(d)
    assert isinstance(got[0][1], InputError) and "cap" in str(got[0][1])
    assert got[1][0] == "b" and got[1][1].num_states == 5


@pytest.mark.parametrize("value", [math.nan, -math.inf, math.inf])
def test_k2_non_finite_score_names_the_arc(value: float) -> None:
    a, b = random_lattice(1, "a", 4, 6), random_lattice(2, "b", 5, 7)
    d = _fsavec([a, b])
    d["lm_scores"][a.num_arcs + 2] = value
    got = read_k2_dict(d)
    assert not isinstance(got[0][1], InputError)
    assert isinstance(got[1][1], InputError)
    assert "utterance b" in str(got[1][1]) and "arc 2" in str(got[1][1])


def test_k2_label_below_minus_one_or_outside_symbols() -> None:
    for label in (-2, len(VOCAB)):
        d = _one_fsa()
        d["arcs"][6 + 2] = label  # arc 0's label, after the FsaVec header [1, 0, 0, S, 0, A]
        got = read_k2_dict(d)
        assert isinstance(got[0][1], InputError)
        assert re.search(rf"arc 0 \(0 -> \d+, label {label}\) has a label outside "
                         rf"-1\.\.{len(VOCAB) - 1}", str(got[0][1]))


# --- SLF: odd, truncated, undecodable, oversized files -------------------------------------

@pytest.mark.parametrize("text", ["", "\n", "N=0 L=0\n", "VERSION=1.0\nN=1 L=0\nI=0\nI=0\n",
                                  "I=0\nJ=0\n", "N=2 L=1\nI=0\nI=1\nJ=0 S=0 E=1 a=1e999\n",
                                  GOOD_SLF.replace("N=4", "N=x"),
                                  GOOD_SLF.replace("VERSION=1.0", "base=-1"),
                                  GOOD_SLF.replace("VERSION=1.0", "base=1"),
                                  GOOD_SLF.replace("VERSION=1.0", "start=q"),
                                  GOOD_SLF.replace("VERSION=1.0", "end=99999999999999999999"),
                                  GOOD_SLF.replace("S=0 E=1", "S=0 E=99999999999999999999"),
                                  GOOD_SLF.replace("a=-2.0", "a=nan"),
                                  GOOD_SLF.replace("VERSION=1.0", "base=0"),  # log(-2)
                                  GOOD_SLF.replace("N=4", "N=5")])
def test_slf_odd_text_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="x.slf"):
        parse_slf(text, VOCAB, name="x.slf")


def test_slf_non_finite_cost_names_the_link() -> None:
    with pytest.raises(InputError, match="J=1"):
        parse_slf(GOOD_SLF.replace("a=-3.0", "a=-inf"), VOCAB, name="x.slf")


def test_slf_undecodable_truncated_and_garbage_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.slf").write_bytes(GOOD_SLF.encode() + b"# caf\xe9\n")
    with gzip.open(tmp_path / "cut.slf.gz", "wb") as f:
        f.write(GOOD_SLF.encode() * 50)
    data = (tmp_path / "cut.slf.gz").read_bytes()
    (tmp_path / "cut.slf.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.slf.gz").write_bytes(b"\x1f\x8b\x08\x00junkjunk")
    (tmp_path / "empty.slf").write_bytes(b"")
    for name, where in [("latin1.slf", "latin1.slf:12"), ("cut.slf.gz", "cut.slf.gz"),
                        ("junk.slf.gz", "junk.slf.gz"), ("empty.slf", "empty.slf")]:
        with pytest.raises(InputError, match=where):
            read_slf(tmp_path / name, VOCAB)
    got = dict(read_lattices(str(tmp_path), "slf", VOCAB))
    assert len(got) == 4 and all(isinstance(x, InputError) for x in got.values())


def test_slf_counts_over_the_cap_fail_before_parsing() -> None:
    huge = GOOD_SLF.replace("N=4 L=4", "N=2000000000 L=4")
    with pytest.raises(InputError, match="N=2000000000.*cap"):
        parse_slf(huge, VOCAB, name="x.slf")
    with pytest.raises(InputError, match="L=4.*cap"):
        parse_slf(GOOD_SLF, VOCAB, name="x.slf", max_arcs=3)
    assert parse_slf(GOOD_SLF, VOCAB, max_states=4, max_arcs=4).num_arcs == 4


def test_slf_file_over_the_byte_cap_is_not_read_whole(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "bomb.slf.gz", "wb") as f:
        f.write(b"#" * (1 << 24))  # 16 MiB of comment, a few KiB compressed
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="bytes"):
            read_slf(tmp_path / "bomb.slf.gz", VOCAB, max_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_slf_one_long_field_does_not_multiply_memory() -> None:
    lines = GOOD_SLF.splitlines()
    text = "\n".join(lines[:3] + [f"x={'y' * 200_000}"] + lines[3:]
                     + [f"J={4 + i} S=0 E=1 a=0 l=0" for i in range(20_000)]) + "\n"
    text = text.replace("L=4", "L=20004")
    tracemalloc.start()
    try:
        lat = parse_slf(text, VOCAB, name="x.slf")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lat.num_arcs == 20_004
    assert peak < 200 << 20  # a fixed-width array would take 100k fields x 800 kB


# --- words.txt and corpus text --------------------------------------------------------------

@pytest.mark.parametrize("content, where", [
    (b"<eps> 0\n<s> 1\ncaf\xe9 2\n", ":3"),
    (b"<eps> 0\n<s> 1\n<s> 2\n", ":3: .*<s>.*twice"),
    (b"<eps> 0\n<s> 1\nx 1\n", ":3: .*id 1.*twice"),
    (b"<eps> 0\n<s> \xc2\xb2\n", ":2"),  # superscript two: isdigit() but not an int
    (b"<eps> 0\n<s> -1\n", ":2"),
    (b"<eps> 0\n<s> 1 2\n", ":2"),
    (b"<eps> 0\n<s> 5\n", ": id 1 is missing"),
    (b"", ": empty"),
])
def test_words_txt_errors_name_file_and_line(tmp_path: Path, content: bytes, where: str) -> None:
    (tmp_path / "words.txt").write_bytes(content)
    with pytest.raises(InputError, match=f"words.txt{where}"):
        Vocab.load(tmp_path / "words.txt")


def test_words_txt_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.txt"):
        Vocab.load(tmp_path / "nope.txt")


def test_corpus_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_bytes(b"a b\nc d\ncaf\xe9 e\n")
    with pytest.raises(InputError, match=r"c.txt:3"):
        read_sentences(tmp_path / "c.txt")
    (tmp_path / "ok.txt").write_bytes("a b\n\ncafé e\n".encode())
    assert read_sentences(tmp_path / "ok.txt") == [["a", "b"], ["café", "e"]]


# --- fuzzing: only InputError, bounded by the caps -----------------------------------------

SLF_TOKENS = ["VERSION=1.0", "UTTERANCE=u", "N=3", "L=2", "N=0", "L=0", "N=-1", "base=10",
              "base=0", "base=-2", "start=0", "end=2", "end=9", "dir=b", "I=0", "I=1", "I=2",
              "I=-1", "I=7", "J=0", "J=1", "S=0", "S=1", "E=2", "E=-1", "E=99999999999",
              "W=w1", "W=w2(2)", "W=!NULL", "W=zz", "a=-1.5", "a=nan", "a=1e999", "l=-inf",
              "r=x", "t=0.5", "t=", "=", "==", '"', "W=", "NODES=3", "LINKS=2", "#", "\n",
              "\n", " ", "\t", "\x00", "é", "N=2000000000", "PocketSphinx"]


@st.composite
def _mutated_slf(draw: st.DrawFn) -> str:
    """GOOD_SLF with a few tokens replaced, inserted or deleted (whole lines kept apart)."""
    tokens = [t for line in GOOD_SLF.splitlines() for t in line.split() + ["\n"]]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(tokens) - 1))
        new = draw(st.sampled_from(SLF_TOKENS) | st.text(max_size=6))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        tokens[i: i + (op != "insert")] = [] if op == "delete" else [new]
    return " ".join(tokens)


@FUZZ
@given(_mutated_slf() | st.lists(st.sampled_from(SLF_TOKENS) | st.text(max_size=6), max_size=40
                                 ).map(" ".join))
def test_fuzz_slf_text(text: str) -> None:
    try:
        lat = parse_slf(text, VOCAB, name="f.slf", max_states=100, max_arcs=100)
    except InputError as e:
        assert "f.slf" in str(e)
        return
    assert lat.num_states <= 101 and lat.num_arcs <= 101
    assert bool(torch.isfinite(lat.scores["am"]).all() & torch.isfinite(lat.scores["lm"]).all())


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_slf_bytes(tmp_path: Path, data: bytes, zipped: bool) -> None:
    path = tmp_path / ("f.slf.gz" if zipped else "f.slf")
    path.write_bytes(gzip.compress(data)[: len(data) + 10] if zipped else data)
    try:
        read_slf(path, VOCAB, max_states=100, max_arcs=100)
    except InputError as e:
        assert "f.slf" in str(e)


@st.composite
def _mutated_k2(draw: st.DrawFn) -> dict:
    """A good FsaVec dict of two FSAs with a few values, tensors or entries changed."""
    d = to_dict(Lattice.cat([random_lattice(s, f"u{s}", 3 + s, 4 + s) for s in range(2)]))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(["arcs", "arcs", "arcs", "lm_scores", "am_scores", "utt_ids",
                                    "state_attrs", "ragged_arc_attrs", "aux_labels", "extra"]))
        op = draw(st.sampled_from(["value", "drop", "tensor", "cut", "object", "non-finite"]))
        v = d.get(key)
        if op == "value" and isinstance(v, torch.Tensor) and v.numel():
            v = d[key] = v.clone()
            v.view(-1)[draw(st.integers(0, v.numel() - 1))] = draw(st.sampled_from(
                [-1, 0, 1, 2, 3, 5, 100, 2 ** 31 - 1, -2 ** 31]))
        elif op == "drop":
            d.pop(key, None)
        elif op == "tensor":
            d[key] = torch.zeros(draw(st.integers(0, 12)),
                                 dtype=draw(st.sampled_from([torch.int32, torch.float32])))
        elif op == "cut" and isinstance(v, torch.Tensor):
            d[key] = v[: draw(st.integers(0, v.shape[0]))]
        elif op == "object":
            d[key] = draw(st.sampled_from([None, 3, "s", [], {}, ["a"], {"x": 1},
                                           {"x": (torch.zeros(1),)}]))
        elif op == "non-finite" and isinstance(v, torch.Tensor) and v.is_floating_point():
            v = d[key] = v.clone()
            v[draw(st.integers(0, v.shape[0] - 1))] = draw(st.sampled_from(
                [math.nan, math.inf, -math.inf]))
    return d


@FUZZ
@given(_mutated_k2())
def test_fuzz_k2_dict(d: dict) -> None:
    try:
        lat = from_dict(d, symbols=VOCAB, max_states=50, max_arcs=50)
    except InputError as e:
        assert "<k2>" in str(e)
        return
    assert bool(torch.isfinite(lat.scores["am"]).all() & torch.isfinite(lat.scores["lm"]).all())
    assert lat.num_arcs == 0 or int(lat.label.min()) >= -1


def _k2_file_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(_one_fsa(), buf)
    return buf.getvalue()


K2_FILE = _k2_file_bytes()


@settings(FUZZ, max_examples=60)
@given(st.lists(st.tuples(st.integers(0, len(K2_FILE) - 1), st.integers(0, 255)), max_size=4),
       st.integers(0, len(K2_FILE)))
def test_fuzz_k2_file_bytes(tmp_path: Path, flips: list[tuple[int, int]], keep: int) -> None:
    data = bytearray(K2_FILE[:keep])
    for i, value in flips:
        if i < len(data):
            data[i] = value
    (tmp_path / "f.pt").write_bytes(bytes(data))
    for utt, x in read_k2(tmp_path / "f.pt", VOCAB, max_states=50, max_arcs=50):
        assert isinstance(x, InputError) or (x.num_states <= 50 and x.num_arcs <= 50)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_words_txt(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "words.txt").write_bytes(data)
    try:
        vocab = Vocab.load(tmp_path / "words.txt")
    except InputError as e:
        assert "words.txt" in str(e)
        return
    assert vocab.words[0] and len(set(vocab.words)) == len(vocab)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_corpus_text(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "c.txt").write_bytes(data)
    try:
        sentences = read_sentences(tmp_path / "c.txt")
    except InputError as e:
        assert "c.txt" in str(e)
        return
    assert sentences and all(sentences)


ARPA_LINES = ["", "  ", "\\data\\", "\\end\\", "\\1-grams:", "\\2-grams:", "\\3-grams:",
              "ngram 1=4", "ngram 2=0", "ngram 3=1", "-0.1\ta", "-0.2\ta a", "-0.2\ta a\t-0.1",
              "x\ta", "-0.1\tb", "-0.1\ta\tnan", "-1e999\ta a", "junk", "\\junk", "\r"]


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 15), st.sampled_from(["replace", "insert", "delete"]),
                          st.sampled_from(ARPA_LINES) | st.text(max_size=8)), max_size=4))
def test_fuzz_arpa_lines(tmp_path: Path, edits: list[tuple[int, str, str]]) -> None:
    """An ARPA file with lines replaced, inserted or deleted reads, or fails with an InputError
    naming the file; what reads has the counts its header declares."""
    lines = ARPA.split("\n")
    for i, op, line in edits:
        i = min(i, len(lines))
        lines[i: i + (op != "insert")] = [] if op == "delete" else [line]
    (tmp_path / "lm.arpa").write_text("\n".join(lines))
    try:
        arpa = read_arpa(tmp_path / "lm.arpa")
    except InputError as e:
        assert "lm.arpa" in str(e)
        return
    header = dict(re.findall(r"^ngram (\d+)=(\d+)\s*$", "\n".join(lines), re.M))
    assert [len(t.ids) for t in arpa.tables] == [int(header[str(k)])
                                                  for k in range(1, arpa.order + 1)]
    assert len(arpa.tables[0].ids) + 1 <= len(arpa.vocab)  # the 1-grams and <eps> at least


# --- utterance ids that cannot be a Kaldi key or a text line; the Kaldi readers fuzzed -------

def test_an_id_with_whitespace_fails_alone_and_corrupts_no_output(tmp_path: Path) -> None:
    args = score_args_with_an_id(tmp_path, 2, "ptb 003") + [
        "--write-lattice", f"ark:{tmp_path / 'out.ark'}", "--out-format", "kaldi"]
    words = Vocab.load(FIXTURES / "words.txt")
    assert main(args) == 1
    hyp_ids = [line.split()[0] for line in (tmp_path / "hyp").read_text().splitlines()]
    assert hyp_ids == ["ptb-001", "ptb-002", "ptb-004", "ptb-005"]
    back = [u for u, lat in read_lattices(f"ark:{tmp_path / 'out.ark'}", "kaldi", words)
            if not isinstance(lat, InputError)]
    assert back == hyp_ids


def test_the_kaldi_writer_refuses_a_key_with_whitespace(tmp_path: Path) -> None:
    words = Vocab.load(FIXTURES / "words.txt")
    lats = [lat for _, lat in read_lattices(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", words)]
    lats[0] = replace(lats[0], utt_ids=["a\tb"])
    written, failed = write_lattices(f"ark,t:{tmp_path / 'out.ark'}", lats, "kaldi")
    assert written == 4 and [f.utt_id for f in failed] == ["a\tb"]
    back = [u for u, _ in read_lattices(f"ark,t:{tmp_path / 'out.ark'}", "kaldi", words)]
    assert back == ["ptb-002", "ptb-003", "ptb-004", "ptb-005"]


@pytest.mark.parametrize("text", [False, True])
@FUZZ
@given(data=st.data())
def test_fuzzed_kaldi_archives_give_lattices_or_input_errors(text: bool, data) -> None:
    words = Vocab.load(FIXTURES / "words.txt")
    name = "lats.txt" if text else "lats.ark"
    archive = bytearray((FIXTURES / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(archive) - 1))
        archive[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(archive) // 2, len(archive)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(bytes(archive[:cut]))
        for utt, lat in read_lattices(f"ark:{path}", "kaldi", words):  # never anything else
            assert isinstance(utt, str) and isinstance(lat, (Lattice, InputError))
            if isinstance(lat, Lattice):
                assert lat.num_states <= 10_000 and lat.num_arcs <= 10_000


# --- scp lines that fail alone; a k2 file that holds no lattices ---------------------------

BAD_SCP_LINES = {  # what each bad line is, and what its error must say
    "missing file": "missing.ark", "offset inside a value": "expected an FST",
    "offset past the end": "past the end", "failing pipe": "exit status 1",
    "offset no file has": "past the end", "not UTF-8": "UTF-8"}


def _scp_with_bad_lines(tmp_path: Path, bad: list[str]) -> Path:
    """An scp: ptb-001, a line for each of ``bad`` (keys of BAD_SCP_LINES), ptb-005."""
    words = Vocab.load(FIXTURES / "words.txt")
    lats = [lat for _, lat in read_lattices(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", words)]
    ark = tmp_path / "a.ark"
    write_lattices(f"ark,scp:{ark},{tmp_path / 'a.scp'}", lats, "kaldi")
    good = (tmp_path / "a.scp").read_text().splitlines()
    second = int(good[1].rpartition(":")[2])
    lines = {"missing file": f"m {tmp_path / 'missing.ark'}:8".encode(),
             "offset inside a value": f"m {ark}:{second + 7}".encode(),
             "offset past the end": f"m {ark}:{ark.stat().st_size + 10}".encode(),
             "failing pipe": b"m false |",
             "offset no file has": f"m {ark}:{10 ** 30}".encode(),
             "not UTF-8": b"m caf\xe9.ark"}
    scp = tmp_path / "b.scp"
    scp.write_bytes(b"\n".join([good[0].encode(), *(lines[b] for b in bad), good[4].encode()])
                    + b"\n")
    return scp


@pytest.mark.parametrize("bad", list(BAD_SCP_LINES))
def test_an_scp_line_that_cannot_be_read_fails_alone(tmp_path: Path, bad: str) -> None:
    scp = _scp_with_bad_lines(tmp_path, [bad])
    got = list(read_lattices(f"scp:{scp}", "kaldi", Vocab.load(FIXTURES / "words.txt")))
    assert [u for u, _ in got] == ["ptb-001", "m", "ptb-005"]
    assert [isinstance(x, InputError) for _, x in got] == [False, True, False]
    message = str(got[1][1])
    assert "b.scp:2: " in message and BAD_SCP_LINES[bad] in message, message


def test_score_counts_each_bad_scp_line_as_failed(tmp_path: Path, caplog) -> None:
    from test_cli_score import make_model

    scp = _scp_with_bad_lines(tmp_path, list(BAD_SCP_LINES))
    make_model(tmp_path / "lm.pt")
    args = ["score", "--model", str(tmp_path / "lm.pt"), "--lattice", f"scp:{scp}", "--words",
            str(FIXTURES / "words.txt"), "--one-best", str(tmp_path / "hyp")]
    with caplog.at_level("INFO"):
        assert main(args) == 1
    assert "Done 2 lattices, failed for 6" in caplog.text
    assert all(f"b.scp:{n}: " in caplog.text for n in range(2, 8))
    assert [line.split()[0] for line in (tmp_path / "hyp").read_text().splitlines()] == \
        ["ptb-001", "ptb-005"]
    assert main(args + ["--max-failures", "0.8"]) == 0  # 6 of 8


@pytest.mark.parametrize("obj", [torch.zeros(3), [1, 2], [torch.zeros(2)], [], "s", 7, {},
                                 {"a": 1}])
def test_a_k2_file_of_no_fsa_dict_is_one_line_and_exit_1(tmp_path: Path, obj: object,
                                                          capsys) -> None:
    from test_cli_score import make_model

    make_model(tmp_path / "lm.pt")
    pt = str(tmp_path / "x.pt")
    torch.save(obj, pt)
    common = ["--words", str(FIXTURES / "words.txt"), "--max-failures", "1"]
    for command in (["info", pt, "--format", "k2"],
                    ["convert", pt, str(tmp_path / "out"), "--in-format", "k2", "--out-format",
                     "slf"],
                    ["score", "--model", str(tmp_path / "lm.pt"), "--lattice", pt, "--format",
                     "k2", "--one-best", str(tmp_path / "hyp")]):
        assert main(["--log-level", "ERROR", *command, *common]) == 1, command
        err = capsys.readouterr().err  # (score's progress bar aside)
        said = [line for line in re.split(r"[\r\n]", err) if line.startswith("lmrescore")]
        assert len(said) == 1 and "x.pt" in said[0] and "Traceback" not in err, err
