"""Kaldi table I/O against bytes written by Kaldi / OpenFst code, not by this project.

Golden sources:

- kaldifst (Kaldi's table writer and OpenFst compiled into a Python module) writes the binary
  ``Lattice`` FSTs and the table framing (its ``VectorFstWriter``: ``key `` then the FST, no
  ``\\0B``; Kaldi's lattice holders write lattices the same way, src/lat/kaldi-lattice.cc
  ``LatticeHolder::Write``: "we don't include the binary-mode header").
- CompactLattice has no kaldifst type: its bytes are written here by hand from the layout
  Kaldi's source defines (see :func:`_compact_fst`).

The one field allowed to differ in an FST is the header's 8-byte properties word (OpenFst's
cache of known properties; it depends on how the FST was built, and we claim only kExpanded |
kMutable, which makes readers recompute the rest).
"""

from __future__ import annotations

import gzip
import re
import struct
import subprocess
import sys
from pathlib import Path

import kaldifst
import numpy as np
import pytest

from lmrescore.cli import main
from lmrescore.errors import InputError
from lmrescore.formats import read_lattice_batches, read_lattices, write_lattices
from lmrescore.formats.archive import iter_archive, iter_archive_batches
from lmrescore.formats.kaldi_binary import parse_binary
from formats_testing import VOCAB, assert_same, random_lattice

REPO = Path(__file__).parent.parent
DEMO = REPO / "egs" / "ptb" / "s5" / "demo"
FIXTURES = Path(__file__).parent / "fixtures"
MAGIC = struct.pack("<i", 2125659606)  # first byte 214, as CompactLatticeHolder::Read peeks
PROPS = slice(34, 42)  # properties word of a "vector"/"lattice4" header (see module doc)
CPROPS = slice(42, 50)  # ... of a "vector"/"compactlattice44" header


def _read(spec: str, symbols=VOCAB) -> list:
    return list(read_lattices(spec, "kaldi", symbols))


def _masked(fst: bytes, props: slice = PROPS) -> bytes:
    return fst[:props.start] + bytes(8) + fst[props.stop:]


# ---------------------------------------------------------------- Lattice: golden from kaldifst

# (src, dst, ilabel = transition id, olabel = word, graph cost, acoustic cost); costs have at
# most 6 significant digits, so Kaldi's text printer writes them exactly
_ARCS = [[(0, 1, 11, 3, 0.5, 1.25), (0, 2, 0, 4, -2.0, 3.0), (1, 3, 12, 0, 1.5, 0.0),
          (2, 3, 13, 5, 0.25, 100.0), (2, 1, 0, 0, 0.0, 0.0)],
         [(0, 1, 7, 6, 10.0, -0.125), (1, 2, 8, 7, 1e-05, 1234.5)]]
_FINALS = [[(3, 0.0, 0.0)], [(2, 0.75, -3.0), (1, 2.5, 0.0)]]


def _kaldifst_lattices() -> list[kaldifst.Lattice]:
    out = []
    for arcs, finals in zip(_ARCS, _FINALS):
        f = kaldifst.Lattice()
        for _ in range(1 + max(max(a[0], a[1]) for a in arcs)):
            f.add_state()
        f.start = 0
        for s, d, i, o, g, a in arcs:
            f.add_arc(s, kaldifst.LatticeArc(i, o, kaldifst.LatticeWeight(g, a), d))
        for s, g, a in finals:
            f.set_final(s, kaldifst.LatticeWeight(g, a))
        out.append(f)
    return out


def _fst_bytes(fst, tmp_path: Path, name: str) -> bytes:
    fst.write(str(tmp_path / name))
    return (tmp_path / name).read_bytes()


def test_kaldifst_table_framing_is_key_space_fst(tmp_path: Path) -> None:
    """Kaldi's own table writer: ``key `` + OpenFst binary, back to back, no ``\\0B``."""
    f = kaldifst.StdVectorFst()
    s = f.add_state()
    f.start = s
    f.set_final(s, 1.5)
    with kaldifst.VectorFstWriter(f"ark:{tmp_path / 'std.ark'}") as w:
        w["u1"] = f
        w["u2"] = f
    fst = _fst_bytes(f, tmp_path, "std.fst")
    assert (tmp_path / "std.ark").read_bytes() == b"u1 " + fst + b"u2 " + fst
    with kaldifst.VectorFstWriter(f"ark,t:{tmp_path / 'std.txt'}") as w:
        w["u1"] = f
    assert (tmp_path / "std.txt").read_bytes() == b"u1 \n0\t1.5\n\n"


def test_scp_offsets_point_at_the_value_as_kaldi_writes_them(tmp_path: Path) -> None:
    """``ark,scp``: Kaldi's scp offset is where the value starts, just past ``key ``."""
    f = kaldifst.StdVectorFst()
    f.start = f.add_state()
    f.set_final(f.start, 0.5)
    with kaldifst.VectorFstWriter(f"ark,scp:{tmp_path / 'std.ark'},{tmp_path / 'std.scp'}") as w:
        w["u0"] = f
        w["u1"] = f
    n = len(_fst_bytes(f, tmp_path, "std.fst"))
    assert (tmp_path / "std.scp").read_text() == \
        f"u0 {tmp_path / 'std.ark'}:3\nu1 {tmp_path / 'std.ark'}:{3 + n + 3}\n"
    data, fsts = _golden_lattice_archive(tmp_path)
    lats = [x for _, x in iter_archive(data, VOCAB)]
    ark, scp = tmp_path / "l.ark", tmp_path / "l.scp"
    write_lattices(f"ark,scp:{ark},{scp}", lats, "kaldi", kaldi_compact=False)
    assert scp.read_text() == f"u0 {ark}:3\nu1 {ark}:{3 + len(fsts[0]) + 3}\n"
    for lat, (utt, back) in zip(lats, _read(f"scp:{scp}")):
        assert_same(lat, back)
    # an scp line naming a file that holds one bare FST (no key), as OpenFst writes it
    (tmp_path / "one.scp").write_text(f"u7 {tmp_path / 'l0.fst'}\n")
    [(utt, back)] = _read(f"scp:{tmp_path / 'one.scp'}")
    assert utt == "u7"
    assert_same(back, list(iter_archive(b"u7 " + fsts[0], VOCAB))[0][1])


def _golden_lattice_archive(tmp_path: Path) -> tuple[bytes, list[bytes]]:
    fsts = [_fst_bytes(f, tmp_path, f"l{i}.fst") for i, f in enumerate(_kaldifst_lattices())]
    return b"".join(f"u{i} ".encode() + x for i, x in enumerate(fsts)), fsts


def _expected_arcs(j: int) -> tuple[list, list]:
    """Our view of golden lattice j: (word, dst, lm, am, tids) per arc, src ordered."""
    num_states = 1 + max(max(a[0], a[1]) for a in _ARCS[j])
    rows = [(s, d, o, -g, -a, [i] if i else []) for s, d, i, o, g, a in _ARCS[j]]
    rows += [(s, num_states, -1, -g, -a, []) for s, g, a in _FINALS[j]]
    rows.sort(key=lambda r: r[0])  # stable: arcs of a state in file order, then its final
    return rows, [num_states + 1]


def test_reads_kaldi_binary_lattice_archive(tmp_path: Path) -> None:
    data, _ = _golden_lattice_archive(tmp_path)
    got = list(iter_archive(data, VOCAB))
    assert [u for u, _ in got] == ["u0", "u1"]
    for j, (_, lat) in enumerate(got):
        assert not isinstance(lat, InputError), lat
        rows, (num_states,) = _expected_arcs(j)
        assert lat.num_states == num_states
        assert lat.src.tolist() == [r[0] for r in rows]
        assert lat.dst.tolist() == [r[1] for r in rows]
        assert lat.label.tolist() == [r[2] for r in rows]
        assert lat.scores["lm"].tolist() == [np.float32(r[3]) for r in rows]
        assert lat.scores["am"].tolist() == [np.float32(r[4]) for r in rows]
        values, splits = lat.ragged_arc_attrs["transition_ids"]
        assert [values[a:b].tolist() for a, b in zip(splits[:-1], splits[1:])] == \
            [r[5] for r in rows]
    # the batched reader reads the same lattices
    [(batch, errors)] = list(iter_archive_batches(data, VOCAB))
    assert not errors and batch.utt_ids == ["u0", "u1"]


def test_writes_kaldi_binary_lattice_archive(tmp_path: Path) -> None:
    data, fsts = _golden_lattice_archive(tmp_path)
    lats = [x for _, x in iter_archive(data, VOCAB)]
    write_lattices(f"ark:{tmp_path / 'ours.ark'}", lats, "kaldi", kaldi_compact=False)
    ours = (tmp_path / "ours.ark").read_bytes()
    assert len(ours) == len(data)
    assert b"\0B" not in ours
    at = 0
    for i, fst in enumerate(fsts):
        key = f"u{i} ".encode()
        assert ours[at: at + len(key)] == key
        assert _masked(ours[at + len(key): at + len(key) + len(fst)]) == _masked(fst)
        # and OpenFst reads our FST back to the same arcs
        (tmp_path / "x.fst").write_bytes(ours[at + len(key): at + len(key) + len(fst)])
        assert kaldifst.Lattice.read(str(tmp_path / "x.fst")).to_str() == \
            _kaldifst_lattices()[i].to_str()
        at += len(key) + len(fst)


def _golden_lattice_text() -> bytes:
    """Kaldi's ``ark,t`` form of the golden lattices: ``key `` + newline, OpenFst's printer
    lines (kaldifst's ``to_str``; LatticeHolder::Write prints with tab separators), an empty
    line (src/lat/kaldi-lattice.cc)."""
    out = b""
    for i, f in enumerate(_kaldifst_lattices()):
        lines = ["\t".join(line.split()) for line in f.to_str().splitlines()]
        out += f"u{i} \n".encode() + "\n".join(lines).encode() + b"\n\n"
    return out


def test_reads_and_writes_kaldi_text_lattice_archive(tmp_path: Path) -> None:
    golden = _golden_lattice_text()
    assert b"\t0.25,100\n" in golden and b"1e-05,1234.5" in golden
    text = [x for _, x in iter_archive(golden, VOCAB)]
    binary = [x for _, x in iter_archive(_golden_lattice_archive(tmp_path)[0], VOCAB)]
    for t, b in zip(text, binary):
        assert_same(t, b)
    write_lattices(f"ark,t:{tmp_path / 'ours.txt'}", binary, "kaldi", kaldi_compact=False)
    assert (tmp_path / "ours.txt").read_bytes() == golden


def test_text_costs_need_more_than_six_digits_keep_all_of_them(tmp_path: Path) -> None:
    """Kaldi's printer rounds to 6 significant digits; where that would change the float we
    print the fewest digits (up to 9) that read back to the same float32."""
    lat = random_lattice(5, "u", 4, 6, 1)
    write_lattices(f"ark,t:{tmp_path / 'a.txt'}", [lat], "kaldi", kaldi_compact=False)
    [(_, back)] = _read(f"ark,t:{tmp_path / 'a.txt'}")
    assert_same(lat, back)
    costs = [c for tok in (tmp_path / "a.txt").read_text().split() if "," in tok
             for c in tok.split(",")[:2]]
    assert len(costs) > 10
    for c in costs:
        x = np.float32(c)
        p = next(p for p in range(6, 10) if np.float32("%.*g" % (p, x)) == x)
        assert c == "%.*g" % (p, x), (c, p)


# ------------------------------------------------- CompactLattice: golden from Kaldi's source

def _compact_fst(start: int, states: list[tuple[tuple | None, list[tuple]]]) -> bytes:
    """A binary CompactLattice FST, laid out as Kaldi / OpenFst write it.

    - FstHeader::Write (OpenFst fst.cc): int32 magic 2125659606, string "vector", string arc
      type, int32 version 2, int32 flags 0, uint64 properties, int64 start, int64 num states,
      int64 num arcs (VectorFst::WriteFst leaves it 0 when it knows the state count); a string
      is int32 length + bytes.
    - Arc type "compactlattice44": CompactLatticeWeightTpl<LatticeWeightTpl<float>, int32>::Type
      = "compact" + "lattice4" + "4" (src/fstext/lattice-weight.h).
    - VectorFst::WriteFst, per state: final weight, int64 arc count, then per arc int32 ilabel,
      int32 olabel, weight, int32 nextstate.
    - CompactLatticeWeightTpl::Write (src/fstext/lattice-weight.h): LatticeWeightTpl::Write
      (float32 value1 = graph cost, float32 value2 = acoustic cost), int32 string size, the
      int32 transition ids. Zero (not final) is (+inf, +inf) and an empty string.

    Args:
        states: per state, (final graph, acoustic, tids) or None, and arcs
            (word, graph, acoustic, tids, nextstate); a CompactLattice arc has ilabel = olabel.
    """
    def weight(g: float, a: float, tids: list[int]) -> bytes:
        return struct.pack(f"<ffi{len(tids)}i", g, a, len(tids), *tids)

    inf = float("inf")
    body = b""
    for final, arcs in states:
        body += weight(*final) if final else weight(inf, inf, [])
        body += struct.pack("<q", len(arcs))
        for word, g, a, tids, nxt in arcs:
            body += struct.pack("<ii", word, word) + weight(g, a, tids) + struct.pack("<i", nxt)
    header = (MAGIC + struct.pack("<i", 6) + b"vector" + struct.pack("<i", 16)
              + b"compactlattice44" + struct.pack("<iiQqqq", 2, 0, 3, start, len(states), 0))
    return header + body


# state 0 --w3 [0.5, 1.25, tids 4 5 6]--> 1 --w0 [1.5, 0, no tids]--> 2 (final 0.75,-3, tids 9)
#         --w7 [-2, 3, tid 8]-----------------------------------------^
_COMPACT = [(None, [(3, 0.5, 1.25, [4, 5, 6], 1), (7, -2.0, 3.0, [8], 2)]),
            (None, [(0, 1.5, 0.0, [], 2)]),
            ((0.75, -3.0, [9]), [])]
_COMPACT_TEXT = (b"u1 \n0\t1\t3\t0.5,1.25,4_5_6\n0\t2\t7\t-2,3,8\n1\t2\t0\t1.5,0,\n"
                 b"2\t0.75,-3,9\n\n")  # FstPrinter, acceptor: "s d word weight", "s weight"


def test_reads_and_writes_kaldi_compact_lattice(tmp_path: Path) -> None:
    fst = _compact_fst(0, _COMPACT)
    binary = list(iter_archive(b"u1 " + fst, VOCAB))
    text = list(iter_archive(_COMPACT_TEXT, VOCAB))
    [(utt, lat)] = binary
    assert utt == "u1" and not isinstance(lat, InputError), lat
    assert_same(lat, text[0][1])
    assert lat.label.tolist() == [3, 7, 0, -1]
    assert lat.scores["lm"].tolist() == [-0.5, 2.0, -1.5, -0.75]
    values, splits = lat.ragged_arc_attrs["transition_ids"]
    assert values.tolist() == [4, 5, 6, 8, 9] and splits.tolist() == [0, 3, 4, 4, 5]
    write_lattices(f"ark:{tmp_path / 'c.ark'}", [lat], "kaldi")
    ours = (tmp_path / "c.ark").read_bytes()
    assert ours[:3] == b"u1 " and _masked(ours[3:], CPROPS) == _masked(fst, CPROPS)
    write_lattices(f"ark,t:{tmp_path / 'c.txt'}", [lat], "kaldi")
    assert (tmp_path / "c.txt").read_bytes() == _COMPACT_TEXT


def test_compact_to_lattice_expands_strings_as_kaldi_convert_lattice(tmp_path: Path) -> None:
    """ConvertLattice(CompactLattice -> Lattice) (src/fstext/lattice-utils-inl.h,
    ConvertLatticeFromCompact with invert): an arc with n > 1 transition ids becomes a chain of
    n arcs through new states, the word and weight on the first; n = 0 gives one arc with
    ilabel 0; a final weight with a string becomes a chain of word-0 arcs to a new final state.
    New states are numbered after the old ones, per state: its final chain, then its arcs."""
    (tmp_path / "c.ark").write_bytes(b"u1 " + _compact_fst(0, _COMPACT))
    assert main(["convert", f"ark:{tmp_path / 'c.ark'}", f"ark:{tmp_path / 'l.ark'}",
                 "--in-format", "kaldi", "--out-format", "kaldi", "--kaldi-type", "lattice"]) == 0
    want = kaldifst.Lattice()
    for _ in range(6):
        want.add_state()
    want.start = 0
    arcs = [(0, 3, 4, 3, 0.5, 1.25), (0, 2, 8, 7, -2.0, 3.0), (1, 2, 0, 0, 1.5, 0.0),
            (2, 5, 9, 0, 0.75, -3.0), (3, 4, 5, 0, 0.0, 0.0), (4, 1, 6, 0, 0.0, 0.0)]
    for s, d, i, o, g, a in arcs:  # state 0's arc chain: new states 3, 4; state 2's final: 5
        want.add_arc(s, kaldifst.LatticeArc(i, o, kaldifst.LatticeWeight(g, a), d))
    want.set_final(5, kaldifst.LatticeWeight(0.0, 0.0))
    data = (tmp_path / "l.ark").read_bytes()
    golden = _fst_bytes(want, tmp_path, "want.fst")
    assert data[:3] == b"u1 " and _masked(data[3:]) == _masked(golden)
    assert main(["convert", f"ark:{tmp_path / 'c.ark'}", f"ark,t:{tmp_path / 'l.txt'}",
                 "--in-format", "kaldi", "--out-format", "kaldi", "--kaldi-type", "lattice"]) == 0
    lines = ["\t".join(x.split()) for x in want.to_str().splitlines()]
    assert (tmp_path / "l.txt").read_text() == "u1 \n" + "\n".join(lines) + "\n\n"


# ------------------------------------------------------------------ archive framing and errors

def test_key_followed_by_tab_or_newline_is_read() -> None:
    """util/kaldi-table-inl.h: after the key "we also allow tab [which is consumed] and
    newline [which is not]"; the holder then skips spaces up to and including the newline."""
    body = _COMPACT_TEXT[len(b"u1 \n"):]
    want = list(iter_archive(_COMPACT_TEXT, VOCAB))[0][1]
    for head in (b"u1\n", b"u1\t\n", b"u1 \t \n", b"u1 \r\n"):
        [(utt, lat)] = list(iter_archive(head + body, VOCAB))
        assert utt == "u1" and not isinstance(lat, InputError), (head, lat)
        assert_same(lat, want)
    [(utt, lat)] = list(iter_archive(b"u1\t" + _compact_fst(0, _COMPACT), VOCAB))
    assert utt == "u1" and not isinstance(lat, InputError)
    # a space-only line ends a text lattice, as an empty one does
    two = _COMPACT_TEXT[:-1] + b" \t\nu2 \n" + body
    assert [u for u, x in iter_archive(two, VOCAB) if not isinstance(x, InputError)] == \
        ["u1", "u2"]


def test_null_b_header_is_tolerated_on_read_only(tmp_path: Path) -> None:
    fst = _compact_fst(0, _COMPACT)
    [(_, old)] = list(iter_archive(b"u1 \0B" + fst, VOCAB))
    [(_, new)] = list(iter_archive(b"u1 " + fst, VOCAB))
    assert_same(old, new)
    [(batch, errors)] = list(iter_archive_batches(b"u1 \0B" + fst + b"u2 " + fst, VOCAB))
    assert not errors and batch.utt_ids == ["u1", "u2"]
    write_lattices(f"ark:{tmp_path / 'a.ark'}", [old], "kaldi")
    assert b"\0B" not in (tmp_path / "a.ark").read_bytes()


def test_bad_text_entry_resyncs_at_the_next_entry() -> None:
    good = [random_lattice(s, f"u{s}", 4, 6) for s in range(4)]
    parts = []
    for lat in good:
        parts.append(_text_entry(lat))
    # an entry whose key is followed by a word, not a newline: the extent is the empty line
    data = parts[0] + b"bad x y\n0\t1\t3\n1\n\n" + b"".join(parts[1:])
    got = list(iter_archive(data, VOCAB))
    assert [u for u, _ in got] == ["u0", "bad", "u1", "u2", "u3"]
    err = got[1][1]
    line = parts[0].count(b"\n") + 1
    assert isinstance(err, InputError) and "bad" in str(err) and f"line {line}" in str(err), err
    for lat, (_, back) in zip(good, got[:1] + got[2:]):
        assert_same(lat, back)
    for batch_size in (1, 2, 100):
        read = [u for b, _ in iter_archive_batches(data, VOCAB, batch_size=batch_size)
                if b is not None for u in b.utt_ids]
        assert read == ["u0", "u1", "u2", "u3"]


def _text_entry(lat) -> bytes:
    from lmrescore.formats.kaldi_text import format_text
    return lat.utt_ids[0].encode() + b" " + format_text(lat)


def _binary_entry(lat, compact: bool = True) -> bytes:
    from lmrescore.formats.kaldi_binary import format_binary
    return lat.utt_ids[0].encode() + b" " + format_binary(lat, compact)


def test_corrupt_binary_entry_resyncs_and_says_what_it_skipped() -> None:
    lats = [random_lattice(s, f"u{s}", 5, 9) for s in range(5)]
    parts = [_binary_entry(x) for x in lats]
    bad = bytearray(parts[1])
    bad[len(b"u1 ") + 20] ^= 0xFF  # inside the arc type: the FST's extent is unknown
    lost = bytearray(parts[2])
    lost[:2] = b"\0\0"  # u2's key is gone: its FST cannot be named, only counted
    data = parts[0] + bytes(bad) + bytes(lost) + b"".join(parts[3:])
    got = list(iter_archive(data, VOCAB))
    assert [u for u, _ in got] == ["u0", "u1", "?", "u3", "u4"]
    msg = str(got[1][1])
    start = len(parts[0]) + len(b"u1 ")
    resume = len(parts[0]) + len(bad) + len(lost)
    assert f"archive offset {start}" in msg and f"skipped to offset {resume}" in msg, msg
    assert isinstance(got[2][1], InputError) and "FST" in str(got[2][1])
    for lat, (_, back) in zip([lats[0]] + lats[3:], [got[0]] + got[3:]):
        assert_same(lat, back)
    for batch_size in (1, 2, 100):
        got_b = list(iter_archive_batches(data, VOCAB, batch_size=batch_size))
        assert [u for _, errs in got_b for u, _ in errs] == ["u1", "?"]


def test_corrupt_last_binary_entry_says_where_reading_stopped() -> None:
    lats = [random_lattice(s, f"u{s}", 5, 9) for s in range(3)]
    data = b"".join(_binary_entry(x) for x in lats)
    cut = data[: len(data) - 7]
    got = list(iter_archive(cut, VOCAB))
    assert [u for u, _ in got] == ["u0", "u1", "u2"]
    msg = str(got[2][1])
    start = len(data) - len(_binary_entry(lats[2])) + len(b"u2 ")
    assert f"utterance u2 (archive offset {start})" in msg, msg
    assert f"reading stopped, bytes {start} to {len(cut)} of archive were not read" in msg, msg


def test_failing_input_pipe_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gunzip -c .*missing\.gz.*exit status 1"):
        _read(f"ark:gunzip -c {tmp_path / 'missing.gz'}|")
    # what the command gave before failing is read first
    lats = [random_lattice(s, f"u{s}", 4, 6) for s in range(3)]
    write_lattices(f"ark:{tmp_path / 'a.ark'}", lats, "kaldi")
    seen = []
    with pytest.raises(InputError, match="exit status 3"):
        for utt, lat in read_lattices(f"ark:cat {tmp_path / 'a.ark'}; exit 3 |", "kaldi", VOCAB):
            seen.append(utt)
    assert seen == ["u0", "u1", "u2"]
    with pytest.raises(InputError, match="exit status 3"):
        list(read_lattice_batches(f"ark:cat {tmp_path / 'a.ark'}; exit 3 |", "kaldi", VOCAB))
    code = "import sys; from lmrescore.cli import main; sys.exit(main())"
    out = subprocess.run([sys.executable, "-c", code, "convert",
                          f"ark:gunzip -c {tmp_path / 'missing.gz'}|", f"ark:{tmp_path / 'o.ark'}",
                          "--in-format", "kaldi", "--out-format", "kaldi"], capture_output=True,
                         cwd=REPO)
    assert out.returncode == 1 and b"exit status 1" in out.stderr, out.stderr


def test_failing_output_pipe_is_an_error(tmp_path: Path) -> None:
    lats = [random_lattice(s, f"u{s}", 4, 6) for s in range(2)]
    with pytest.raises(InputError, match=r"'cat > /nonexistent/x.ark'.*exit status 2"):
        write_lattices("ark:| cat > /nonexistent/x.ark", lats, "kaldi")
    write_lattices(f"ark:| gzip -c > {tmp_path / 'x.gz'}", lats, "kaldi")
    for lat, (_, back) in zip(lats, _read(f"ark:gunzip -c {tmp_path / 'x.gz'} |")):
        assert_same(lat, back)


def test_gzip_pipe_of_a_kaldi_archive(tmp_path: Path) -> None:
    data, _ = _golden_lattice_archive(tmp_path)
    (tmp_path / "lat.1.gz").write_bytes(gzip.compress(data))
    got = _read(f"ark:gunzip -c {tmp_path / 'lat.1.gz'}|")
    assert [u for u, x in got if not isinstance(x, InputError)] == ["u0", "u1"]


# ------------------- the committed archives (and the recipe's, once made) in Kaldi's layout

RECIPE = DEMO.parent / "data"  # egs/ptb/s5/data: the recipe's 500 real lattices, once made


@pytest.mark.parametrize("path", [DEMO / "lat.ark", FIXTURES / "lats.ark",
                                  RECIPE / "dev" / "lat.ark", RECIPE / "test" / "lat.ark"])
def test_archives_are_in_kaldi_layout(path: Path, tmp_path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is made by egs/ptb/s5/run.sh --stop-stage 3")
    data = path.read_bytes()
    words = path.parent / "words.txt"
    from lmrescore.vocab import Vocab
    vocab = Vocab.load(words)
    got = list(iter_archive(data, vocab))
    assert got and all(not isinstance(x, InputError) for _, x in got)
    pos = 0
    for utt, lat in got:  # every entry: key, one space, the FST magic; no \0B
        key = utt.encode() + b" "
        assert data.startswith(key + MAGIC, pos), (utt, data[pos: pos + 40])
        _, pos = parse_binary(data, pos + len(key), utt, vocab)
    assert pos == len(data)
    # written again: the same bytes; as Lattices, OpenFst reads every FST to the same arcs
    write_lattices(f"ark:{tmp_path / 'a.ark'}", [x for _, x in got], "kaldi")
    assert (tmp_path / "a.ark").read_bytes() == data
    write_lattices(f"ark:{tmp_path / 'l.ark'}", [x for _, x in got], "kaldi", kaldi_compact=False)
    lat_data = (tmp_path / "l.ark").read_bytes()
    pos = 0
    for utt, lat in got:
        start = pos + len(utt) + 1
        back, pos = parse_binary(lat_data, start, utt, vocab)
        (tmp_path / "x.fst").write_bytes(lat_data[start:pos])
        theirs = kaldifst.Lattice.read(str(tmp_path / "x.fst")).to_str()
        write_lattices(f"ark,t:{tmp_path / 'x.txt'}", [back], "kaldi", kaldi_compact=False)
        ours = (tmp_path / "x.txt").read_text().split("\n", 1)[1]
        assert _rows(theirs) == pytest.approx(_rows(ours), rel=1e-5, abs=1e-5)


def _rows(text: str) -> list[float]:
    """All numbers of a printed Lattice, in order (costs to 6 significant digits)."""
    return [float(x) for x in re.split(r"[\s,]+", text.strip())]
