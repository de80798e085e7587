"""Kaldi archives: round trips, kaldifst as producer and consumer, bad entries."""

from __future__ import annotations

import gzip
import struct
import subprocess
import tempfile
from pathlib import Path

import kaldifst
import numpy as np
import pytest
import torch
from formats_testing import assert_same_batches, corrupt

from lmrescore.errors import InputError
from lmrescore.formats import batches, read_lattice_batches, read_lattices, write_lattices
from lmrescore.formats.archive import iter_archive, iter_archive_batches
from lmrescore.formats.kaldi import TIDS
from lmrescore.formats.kaldi_batch import decode_run
from lmrescore.formats.kaldi_binary import walk as _walk_one
from lmrescore.formats.kaldi_binary import format_binary, parse_binary
from lmrescore.formats.kaldi_text import format_text
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab
from formats_testing import VOCAB, assert_same, random_lattice

FIXTURES = Path(__file__).parent / "fixtures"


def _lattices(n: int = 6, max_tids: int = 3) -> list:
    return [random_lattice(seed, f"utt{seed}", 3 + seed % 5, 2 + 3 * seed, max_tids)
            for seed in range(n)]


def _read(spec: str, symbols: Vocab | None = VOCAB) -> list:
    return list(read_lattices(spec, "kaldi", symbols))


@pytest.mark.parametrize("spec", ["ark:{}", "ark,t:{}"])
@pytest.mark.parametrize("compact", [True, False])
def test_round_trip(tmp_path: Path, spec: str, compact: bool) -> None:
    lats = _lattices(max_tids=3 if compact else 1)
    target = spec.format(tmp_path / "a.ark")
    assert write_lattices(target, lats, "kaldi", kaldi_compact=compact) == (len(lats), [])
    got = _read(target)
    assert [u for u, _ in got] == [x.utt_ids[0] for x in lats]
    for lat, (_, back) in zip(lats, got):
        assert_same(lat, back)


def test_binary_text_binary_bytes_identical(tmp_path: Path) -> None:
    write_lattices(f"ark:{tmp_path / 'a.ark'}", _lattices(), "kaldi")
    write_lattices(f"ark,t:{tmp_path / 'a.txt'}", [x for _, x in _read(f"ark:{tmp_path / 'a.ark'}")],
                   "kaldi")
    write_lattices(f"ark:{tmp_path / 'b.ark'}", [x for _, x in _read(f"ark:{tmp_path / 'a.txt'}")],
                   "kaldi")
    assert (tmp_path / "a.ark").read_bytes() == (tmp_path / "b.ark").read_bytes()


def _kaldifst_lattice(seed: int, start: int = 0) -> kaldifst.Lattice:
    rng = np.random.default_rng(seed)
    f = kaldifst.Lattice()
    n = 5
    for _ in range(n):
        f.add_state()
    f.start = start
    for _ in range(9):
        s, d = rng.integers(0, n, 2)
        w = kaldifst.LatticeWeight(*(rng.standard_normal(2) * 10).astype(np.float32).tolist())
        f.add_arc(int(s), kaldifst.LatticeArc(int(rng.integers(0, 50)), int(rng.integers(0, 20)),
                                              w, int(d)))
    f.set_final(n - 1, kaldifst.LatticeWeight(0.5, 1.25))
    f.set_final(1, kaldifst.LatticeWeight(-2.0, 3.0))
    return f


def _printed_arcs(text: str) -> list[tuple]:
    """(src, dst, ilabel, olabel, graph, acoustic) rows of an OpenFst-printed Lattice."""
    rows = []
    for line in text.strip().splitlines():
        c = line.split()
        g, a = map(float, c[-1].split(",")) if len(c) in (2, 5) else (0.0, 0.0)
        rows.append(tuple(map(int, c[:4])) + (g, a) if len(c) >= 4 else (int(c[0]), g, a))
    return sorted(rows)


@pytest.mark.parametrize("start", [0, 2])
def test_reads_kaldifst_binary(tmp_path: Path, start: int) -> None:
    fst = _kaldifst_lattice(start, start)
    fst.write(str(tmp_path / "l.fst"))
    data = b"u1 " + (tmp_path / "l.fst").read_bytes()  # Kaldi's layout: no \0B
    [(utt, lat)] = list(iter_archive(data, VOCAB))
    assert utt == "u1" and not isinstance(lat, InputError)
    # kaldifst's own text form (6 significant digits), read by our text parser, agrees
    [(_, from_text)] = list(iter_archive(b"u1 \n" + fst.to_str().encode() + b"\n", VOCAB))
    assert_same(lat, from_text.with_scores(**lat.scores))
    for k in ("am", "lm"):
        assert torch.allclose(lat.scores[k], from_text.scores[k], rtol=1e-5, atol=1e-5)
    assert int(lat.src[0]) == 0  # the start state comes first
    # and writing it back as a Lattice reproduces kaldifst's arcs (state ids follow our order)
    (tmp_path / "ours.fst").write_bytes(format_binary(lat, compact=False))
    ours = kaldifst.Lattice.read(str(tmp_path / "ours.fst"))
    # (the start state is renumbered 0 and the states before it shift up by one)
    perm = {q: (0 if q == start else q + 1 if q < start else q) for q in range(fst.num_states)}
    theirs = [(perm[r[0]], perm[r[1]]) + r[2:] if len(r) == 6 else (perm[r[0]],) + r[1:]
              for r in _printed_arcs(fst.to_str())]
    assert _printed_arcs(ours.to_str()) == sorted(theirs)
    assert ours.start == 0 and ours.num_states == fst.num_states


def test_kaldifst_reads_ours_and_bytes_match(tmp_path: Path) -> None:
    fst = _kaldifst_lattice(7)
    fst.write(str(tmp_path / "l.fst"))
    theirs = (tmp_path / "l.fst").read_bytes()
    lat, end = parse_binary(theirs, 0, "u", None)
    ours = format_binary(lat, compact=False)
    assert end == len(theirs)
    # identical except the 8-byte properties word (we claim none; OpenFst recomputes them)
    assert ours[:34] == theirs[:34] and ours[42:] == theirs[42:]


def test_fixture_archives_match_slf() -> None:
    vocab = Vocab.load(FIXTURES / "words.txt")
    binary = _read(f"ark:{FIXTURES / 'lats.ark'}", vocab)
    text = _read(f"ark,t:{FIXTURES / 'lats.txt'}", vocab)
    slf = list(read_lattices(str(FIXTURES / "slf"), "slf", vocab))
    assert len(binary) == len(text) == len(slf) == 5
    for (_, b), (_, t), (_, s) in zip(binary, text, slf):
        assert_same(b, t)
        assert_same(b, s, ragged=False)


def test_scp_and_pipes(tmp_path: Path) -> None:
    lats = _lattices()
    write_lattices(f"ark,scp:{tmp_path / 'a.ark'},{tmp_path / 'a.scp'}", lats, "kaldi")
    for spec in [f"scp:{tmp_path / 'a.scp'}", f"ark:cat {tmp_path / 'a.ark'} |"]:
        got = _read(spec)
        assert len(got) == len(lats)
        for lat, (_, back) in zip(lats, got):
            assert_same(lat, back)
    (tmp_path / "a.ark.gz").write_bytes(gzip.compress((tmp_path / "a.ark").read_bytes()))
    write_lattices(f"ark:| gzip -c > {tmp_path / 'b.ark.gz'}",
                   [x for _, x in _read(f"ark:gunzip -c {tmp_path / 'a.ark.gz'} |")], "kaldi")
    assert gzip.decompress((tmp_path / "b.ark.gz").read_bytes()) == (tmp_path / "a.ark").read_bytes()


def _archive(lats: list, binary: bool = True) -> bytes:
    out = b""
    for lat in lats:
        key = lat.utt_ids[0].encode() + b" "
        out += key + (format_binary(lat) if binary else format_text(lat))
    return out


def test_truncated_binary_keeps_earlier_lattices() -> None:
    lats = _lattices(4)
    data = _archive(lats)
    got = list(iter_archive(data[: len(data) - 30], VOCAB))
    assert [u for u, _ in got] == ["utt0", "utt1", "utt2", "utt3"]
    assert all(not isinstance(x, InputError) for _, x in got[:3])
    err = got[3][1]
    assert isinstance(err, InputError) and "utt3" in str(err) and "offset" in str(err)


def test_corrupt_binary_in_the_middle_resyncs() -> None:
    lats = _lattices(5)
    parts = [_archive([x]) for x in lats]
    bad = bytearray(parts[2])
    bad[len(b"utt2 ")] ^= 0xFF  # break the magic number
    got = list(iter_archive(b"".join(parts[:2]) + bytes(bad) + b"".join(parts[3:]), VOCAB))
    assert [u for u, _ in got] == ["utt0", "utt1", "utt2", "utt3", "utt4"]
    assert isinstance(got[2][1], InputError) and "utt2" in str(got[2][1])
    for lat, (_, back) in zip(lats[:2] + lats[3:], got[:2] + got[3:]):
        assert_same(lat, back)


def test_malformed_text_line_names_utterance_and_line() -> None:
    lats = _lattices(3)
    text = _archive(lats, binary=False).decode()
    lines = text.split("\n")
    # the first arc line of utt1 (its key line, then the lattice lines)
    key_line = next(i for i, x in enumerate(lines) if x.startswith("utt1 "))
    lines[key_line + 1] = "0\t1\tnot-a-number\t1,2,"
    got = list(iter_archive("\n".join(lines).encode(), VOCAB))
    assert [u for u, _ in got] == ["utt0", "utt1", "utt2"]
    err = got[1][1]
    assert isinstance(err, InputError)
    assert "utt1" in str(err) and f"line {key_line + 2}" in str(err)
    assert_same(lats[2], got[2][1])


def test_no_final_state_and_unknown_word() -> None:
    no_final = b"u1 \n0\t1\t3\t1,2,\n1\t2\t4\t1,2,\n\n"
    [(_, err)] = list(iter_archive(no_final, VOCAB))
    assert isinstance(err, InputError) and "u1" in str(err) and "no final state" in str(err)
    oov = b"u2 \n0\t1\t99\t1,2,\n1\n\n"
    [(_, err)] = list(iter_archive(oov, VOCAB))
    assert isinstance(err, InputError) and "u2" in str(err) and "99" in str(err)


def test_lattice_with_two_final_arcs_from_one_state_keeps_final_state() -> None:
    lat2 = random_lattice(3, "u", 4, 5, 0)
    # duplicate one -1 arc: Kaldi has one final weight per state, so the final state stays a state
    fin = (lat2.label == -1).nonzero()[0]
    idx = torch.cat([torch.arange(lat2.num_arcs), fin])
    dup = Lattice.from_arcs("u", lat2.num_states, lat2.src[idx], lat2.dst[idx], lat2.label[idx],
                            {k: v[idx] for k, v in lat2.scores.items()}, symbols=VOCAB)
    back, _ = parse_binary(format_binary(dup), 0, "u", VOCAB)
    assert back.num_states == dup.num_states + 1
    assert int((back.label == 0).sum()) >= int((dup.label == -1).sum())


def test_stdout_stream() -> None:
    lat = random_lattice(1, "u", 4, 5)
    code = ("import sys; sys.path.insert(0, 'tests');"
            "from formats_testing import random_lattice;"
            "from lmrescore.formats import write_lattices;"
            "write_lattices('ark,t:-', [random_lattice(1, 'u', 4, 5)], 'kaldi')")
    out = subprocess.run(["python3", "-c", code], capture_output=True, check=True,
                         cwd=Path(__file__).parent.parent).stdout
    [(_, back)] = list(iter_archive(out, VOCAB))
    assert_same(lat, back)
    assert back.ragged_arc_attrs[TIDS][1].shape[0] == back.num_arcs + 1


def _assert_same_batches(data: bytes, batch_size: int, symbols: Vocab | None = VOCAB) -> None:
    """The batched reader gives exactly ``batches(iter_archive(...))``: lattices and errors."""
    want = list(batches(iter_archive(data, symbols), batch_size))
    assert_same_batches(list(iter_archive_batches(data, symbols, batch_size=batch_size)), want)


def _mixed_archive(n: int) -> bytes:
    """CompactLattice and Lattice entries, binary and text, start state not always 0."""
    parts = []
    for seed in range(n):
        compact, binary = seed % 2 == 0, seed % 5 != 3
        lat = random_lattice(seed, f"u{seed}", 2 + seed % 7, 1 + 5 * (seed % 4),
                             3 if compact else 1)
        if binary:
            parts.append(f"u{seed} ".encode() + format_binary(lat, compact))
        else:
            parts.append(f"u{seed} ".encode() + format_text(lat, compact))
    fst = _kaldifst_lattice(1, start=2)  # a start state other than 0
    # a CompactLattice whose arcs are not acceptor arcs: read, but not by the fast path
    odd = random_lattice(99, "odd", 5, 9)
    w = np.frombuffer(format_binary(odd)[74:], "<i4").copy()
    _, arcs, _ = _walk_one(w, odd.num_states - 1, True)
    w[arcs] = w[arcs + 1] + 1
    # (one entry with the \0B header Kaldi does not write but we tolerate, one after a newline)
    return (b"".join(parts[:5]) + b"k2 \0B" + _kaldifst_bytes(fst) + b"\n" + b"".join(parts[5:9])
            + b"odd " + format_binary(odd)[:74] + w.tobytes() + b"".join(parts[9:]))


def _kaldifst_bytes(fst: kaldifst.Lattice) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        fst.write(f"{tmp}/l.fst")
        return Path(f"{tmp}/l.fst").read_bytes()


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_batched_reader_equals_per_lattice_reading(batch_size: int) -> None:
    _assert_same_batches(_mixed_archive(23), batch_size)
    _assert_same_batches(_archive(_lattices(9, max_tids=1)), batch_size, None)


@pytest.mark.parametrize("compact", [True, False])
def test_binary_entries_are_decoded_in_one_run(compact: bool) -> None:
    lats = _lattices(9, max_tids=3 if compact else 1)
    data = b"".join(x.utt_ids[0].encode() + b" " + format_binary(x, compact) for x in lats)
    run = decode_run(data, 0, 100, VOCAB)
    assert run.count == 9 and not run.errors and run.end == len(data)
    assert_same(run.lattices, Lattice.cat(lats))


@pytest.mark.parametrize("where", ["magic", "states", "arc count", "word", "dst", "no final",
                                   "truncate"])
def test_batched_reader_with_a_corrupt_entry_in_the_middle(where: str) -> None:
    lats = [random_lattice(seed, f"utt{seed}", 5, 9, seed % 2) for seed in range(7)]
    parts = [_archive([x]) for x in lats]
    fst = format_binary(lats[3])  # a CompactLattice: a 74-byte header, then the states
    w = np.frombuffer(fst[74:], "<i4").copy()
    f = w.view("<f4")
    states, arcs, _ = _walk_one(w, lats[3].num_states - 1, True)
    if where == "magic":
        fst = b"\xff" + fst[1:]
    elif where == "states":  # more states declared than there are
        fst = fst[:58] + struct.pack("<q", 50) + fst[66:]
    elif where == "arc count":  # the first state's arc count runs past the data
        w[states[0] + 3 + w[states[0] + 2]] = 10 ** 6
    elif where == "word":  # a word outside the symbol table
        w[arcs[0] + 1] = 999
    elif where == "dst":  # an arc to a state that does not exist
        w[arcs[0] + 5 + w[arcs[0] + 4]] = 77
    elif where == "no final":  # every final weight Zero
        f[states], f[states + 1] = np.inf, np.inf
    elif where == "truncate":
        w = w[:-3]
    if where not in ("magic", "states"):
        fst = fst[:74] + w.tobytes()
    data = b"".join(parts[:3]) + b"utt3 " + fst + b"".join(parts[4:])
    reference = list(iter_archive(data, VOCAB))
    assert [u for u, _ in reference][:4] == ["utt0", "utt1", "utt2", "utt3"]
    assert isinstance(reference[3][1], InputError), where
    for batch_size in (2, 4, 100):
        _assert_same_batches(data, batch_size)


def test_batched_reader_with_a_malformed_text_entry_in_the_middle() -> None:
    lines = _archive(_lattices(5), binary=False).decode().split("\n")
    key_line = next(i for i, x in enumerate(lines) if x.startswith("utt2 "))
    lines[key_line + 1] = "0\t1\tnot-a-number\t1,2,"
    for batch_size in (1, 2, 100):
        _assert_same_batches("\n".join(lines).encode(), batch_size)


def test_compact_lattice_arcs_are_acceptor_arcs() -> None:
    lat = random_lattice(4, "u", 5, 9)
    fst = format_binary(lat)
    w = np.frombuffer(fst[74:], "<i4")
    _, arcs, _ = _walk_one(w, lat.num_states - 1, True)
    assert arcs.size and np.array_equal(w[arcs], w[arcs + 1])  # ilabel = olabel = word


def test_read_lattice_batches_kaldi_text_and_scp(tmp_path: Path) -> None:
    lats = _lattices()
    write_lattices(f"ark,scp:{tmp_path / 'a.ark'},{tmp_path / 'a.scp'}", lats, "kaldi")
    write_lattices(f"ark,t:{tmp_path / 'a.txt'}", lats, "kaldi")
    for spec in (f"ark:{tmp_path / 'a.ark'}", f"ark,t:{tmp_path / 'a.txt'}",
                 f"scp:{tmp_path / 'a.scp'}"):
        [(lat, errors)] = list(read_lattice_batches(spec, "kaldi", VOCAB, batch_size=10))
        assert not errors
        assert_same(lat, Lattice.cat(lats))


def test_corrupt_values_are_errors_not_crashes() -> None:
    fst = bytearray(format_binary(random_lattice(1, "u", 4, 5)))
    for states in (-3, 10 ** 15):  # the header's state count
        fst[58:66] = struct.pack("<q", states)
        [(_, err)] = list(iter_archive(b"u " + bytes(fst), VOCAB))
        assert isinstance(err, InputError) and "u (archive offset 2)" in str(err)
    [(_, err)] = list(iter_archive(b"u \n0\t1\t3\t,,\n1\n\n", VOCAB))  # a weight of no numbers
    assert isinstance(err, InputError) and "line 2" in str(err)
    # form feeds and vertical tabs separate fields, as in C++ streams
    [(_, lat)] = list(iter_archive(b"u \n0\x0c1\t3\t1,2,\n1\x0b\n\n", VOCAB))
    assert lat.label.tolist() == [3, -1]


@pytest.mark.parametrize("seed", range(2))
def test_batched_reader_on_randomly_corrupted_archives(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bases = [_archive(_lattices(8)), _archive(_lattices(8, max_tids=1)), _mixed_archive(12)]
    for _ in range(10):
        data = corrupt(bases[rng.integers(len(bases))], rng)
        for batch_size in (1, 3, 100):
            _assert_same_batches(bytes(data), batch_size)
