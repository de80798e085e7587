"""Kaldi archives read a chunk at a time: what is read does not depend on the chunk size, memory
is flat in the archive's length, and an entry over the cap fails alone without being held whole.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from formats_testing import VOCAB, assert_same, assert_same_batches, corrupt, random_lattice
from test_formats_kaldi import _archive, _lattices, _mixed_archive

from lmrescore.errors import InputError
from lmrescore.formats import read_lattices, write_lattices
from lmrescore.formats.archive import iter_archive, iter_archive_batches, read_kaldi_batches
from lmrescore.formats.batch import batches
from lmrescore.formats.kaldi_binary import format_binary
from lmrescore.formats.kaldi_text import format_text
from lmrescore.vocab import Vocab
from lmrescore.formats.window import Window

FIXTURES = Path(__file__).parent / "fixtures"
CHUNKS = (1, 7, 100, 4096)


def _stream(data: bytes, chunk: int) -> Window:
    return Window(io.BytesIO(data), "archive", chunk=chunk)


def _assert_same_items(got: list, want: list) -> None:
    assert [u for u, _ in got] == [u for u, _ in want]
    for (_, x), (_, y) in zip(got, want):
        if isinstance(y, InputError):
            assert isinstance(x, InputError) and str(x) == str(y)
        else:
            assert_same(x, y)


def _assert_chunk_free(data: bytes, max_bytes: int = 1 << 30,
                       symbols: Vocab | None = VOCAB) -> list:
    """Reading ``data`` from a stream in any chunk size gives what reading it whole gives."""
    want = list(iter_archive(data, symbols, max_bytes=max_bytes))
    want_b = list(batches(want, 3))
    for chunk in CHUNKS:
        _assert_same_items(list(iter_archive(_stream(data, chunk), symbols,
                                             max_bytes=max_bytes)), want)
        assert_same_batches(list(iter_archive_batches(_stream(data, chunk), symbols,
                                                       batch_size=3, max_bytes=max_bytes)),
                             want_b)
    return want


@pytest.mark.parametrize("seed", range(3))
def test_the_chunk_size_does_not_change_what_is_read(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bases = [_archive(_lattices(8)), _archive(_lattices(6), binary=False), _mixed_archive(12),
             (FIXTURES / "lats.txt").read_bytes()]
    for base in bases:
        _assert_chunk_free(base, symbols=None)
    for _ in range(8):
        _assert_chunk_free(corrupt(bases[rng.integers(len(bases))], rng), symbols=None)


def test_resync_over_a_long_key_like_run_is_linear_and_chunk_free() -> None:
    lats = _lattices(3)
    bad = bytearray(_archive([lats[1]]))
    bad[len(b"utt1 ")] ^= 0xFF  # a bad magic number: the extent of utt1 is unknown
    data = _archive([lats[0]]) + bytes(bad) + b"x" * 200_000 + b" " + _archive([lats[2]])
    got = _assert_chunk_free(data)
    assert [u for u, _ in got] == ["utt0", "utt1", "utt2"]
    assert "skipped to offset" in str(got[1][1])


def _entry(lat, binary: bool) -> bytes:
    return lat.utt_ids[0].encode() + b" " + (format_binary(lat) if binary else format_text(lat))


@pytest.mark.parametrize("binary", [True, False])
def test_an_entry_over_the_cap_fails_alone(binary: bool) -> None:
    small = [random_lattice(s, f"s{s}", 4, 6) for s in range(2)]
    big = random_lattice(7, "big", 30, 400)
    size = len(_entry(big, binary))
    data = _entry(small[0], binary) + _entry(big, binary) + _entry(small[1], binary)
    got = _assert_chunk_free(data, max_bytes=size - 1)
    assert [u for u, _ in got] == ["s0", "big", "s1"]
    assert isinstance(got[1][1], InputError) and f"cap of {size - 1} bytes" in str(got[1][1])
    assert_same(got[2][1], small[1])
    got = _assert_chunk_free(data, max_bytes=size)  # exactly the cap: read
    assert_same(got[1][1], big)


def test_a_header_claiming_more_than_the_cap_fails_at_once() -> None:
    fst = bytearray(format_binary(random_lattice(1, "u", 4, 5)))
    fst[58:66] = struct.pack("<q", 10 ** 9)  # 10^9 states: at least 16 GB
    good = random_lattice(2, "g", 4, 5)
    data = b"u " + bytes(fst) + _entry(good, True)
    got = _assert_chunk_free(data, max_bytes=4096)
    assert "cap of 4096 bytes" in str(got[0][1]) and "skipped to offset" in str(got[0][1])
    assert_same(got[1][1], good)


def test_an_oversize_entry_is_not_held_whole(tmp_path: Path) -> None:
    fst = bytearray(format_binary(random_lattice(1, "u", 4, 5)))
    fst[58:66] = struct.pack("<q", 1 << 20)  # plausible for the 64 MiB that follow
    good = random_lattice(2, "g", 4, 5)
    path = tmp_path / "a.ark"
    path.write_bytes(b"u " + bytes(fst) + bytes(64 << 20) + _entry(good, True))
    for spec in (f"ark:{path}", f"ark:cat {path} |"):
        tracemalloc.start()
        try:
            got = list(read_kaldi_batches(spec, VOCAB, max_bytes=1 << 20))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        [(lat, [(utt, err)])] = got
        assert utt == "u" and "cap of 1048576 bytes" in str(err)
        assert_same(lat, good)
        assert peak < 24 << 20, peak  # the old reader held all 64 MiB, then parsed them


def test_memory_is_flat_in_the_archive_length(tmp_path: Path) -> None:
    lats = [random_lattice(s, f"u{s:05d}", 20, 120) for s in range(50)]
    peaks = {}
    for n in (200, 2000):
        path = tmp_path / f"{n}.ark"
        copies = (lats[i % 50].select([0]) for i in range(n))
        write_lattices(f"ark:{path}", copies, "kaldi")
        tracemalloc.start()
        try:
            for lat, errors in iter_archive_batches(Window(path.open("rb"), str(path),
                                                           chunk=64 << 10), VOCAB):
                assert not errors
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    size = (tmp_path / "2000.ark").stat().st_size
    assert peaks[2000] < 2 * peaks[200] and peaks[2000] < size / 4, (peaks, size)


def test_a_good_lattice_after_an_oversize_one_is_still_rescored(tmp_path: Path) -> None:
    from test_cli_score import make_model

    from lmrescore.lm.checkpoint import load_model
    from lmrescore.lm.units import units_from_checkpoint
    from lmrescore.rescoring.pipeline import rescore_stream
    from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions

    make_model(tmp_path / "lm.pt")
    words = Vocab.load(FIXTURES / "words.txt")
    lats = {u: x for u, x in read_lattices(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", words)}
    sizes = {u: len(_entry(x, True)) for u, x in lats.items()}
    cap = (sizes["ptb-001"] + sizes["ptb-002"]) // 2
    assert sizes["ptb-001"] < cap < sizes["ptb-002"]
    ark = tmp_path / "a.ark"
    write_lattices(f"ark:{ark}", [lats["ptb-002"], lats["ptb-001"]], "kaldi")
    lm, _, _, payload = load_model(str(tmp_path / "lm.pt"))
    rescorer = LatticeRescorer(lm, units_from_checkpoint(payload), words,
                               RescoreOptions(beam=5.0))
    run = rescore_stream(rescorer, read_kaldi_batches(f"ark:{ark}", words, max_bytes=cap),
                         progress=False)
    assert list(run.one_best) == ["ptb-001"]
    assert [f.utt_id for f in run.failed] == ["ptb-002"] and "cap" in run.failed[0].message
