"""Kaldi lattices as binary OpenFst ``vector`` FSTs: one value read or written at a time.

Layout (little-endian; OpenFst ``FstHeader`` then ``VectorFst`` body): int32 magic
2125659606, string fst type ``"vector"``, string arc type ``"lattice4"`` or
``"compactlattice44"`` (string = int32 length + bytes), int32 version (2), int32 flags,
uint64 properties, int64 start, int64 num states, int64 num arcs; then per state: final weight,
int64 num arcs, arcs (int32 ilabel, int32 olabel, weight, int32 next state). A LatticeWeight is
two float32; a CompactLatticeWeight adds int32 n and n int32 transition ids.

In a Kaldi table the FST follows ``key `` directly: Kaldi's lattice holders write no ``\\0B``
binary header (src/lat/kaldi-lattice.h). The header's properties word is the one field that
may differ from what OpenFst writes for the same lattice: it caches the properties known when
the FST was written, so it depends on how it was built; we claim kExpanded | kMutable only,
and readers compute the rest when they need them.

Values map to lattices as :mod:`lmrescore.formats.kaldi` says; many entries of an archive are
decoded at once by :mod:`lmrescore.formats.kaldi_batch`.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

from lmrescore.errors import InputError
from lmrescore.formats.kaldi import (EntryError, Truncated, expand_strings, from_lattice,
                                      single_tids, to_lattice)
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.ragged import ragged_arange
from lmrescore.vocab import Vocab

FST_MAGIC = 2125659606
FST_MAGIC_BYTES = struct.pack("<i", FST_MAGIC)  # first byte 214: what Kaldi's holders peek for
FST_HEAD = FST_MAGIC_BYTES + struct.pack("<i", 6) + b"vector"  # magic, fst type "vector"
NULL_B = b"\0B"  # Kaldi's binary-mode header: not part of a lattice entry, tolerated on reading
LATTICE_ARC = "lattice4"
COMPACT_ARC = "compactlattice44"
# kExpanded | kMutable: no other property is claimed, so readers recompute what they need.
_PROPERTIES = 0x3
_I32 = struct.Struct("<i")
_MAX_HEADER = 4 + 2 * (4 + 64) + 40  # magic, two strings of at most 64 bytes, the rest


def read_string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = _I32.unpack_from(buf, pos)
    if n < 0 or n > 64 or pos + 4 + n > len(buf):
        raise struct.error("bad string length")
    return buf[pos + 4: pos + 4 + n].decode("ascii"), pos + 4 + n


def power_tables(step: np.ndarray, max_count: int) -> list[np.ndarray]:
    """``step`` composed with itself 1, 2, 4, ... times, enough for counts up to ``max_count``."""
    tables = [step]
    while (1 << len(tables)) <= max_count:
        tables.append(tables[-1][tables[-1]])
    return tables


def jump(tables: list[np.ndarray], x: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``step^count[i](x[i])`` for each i, by the binary digits of ``count``."""
    for j, table in enumerate(tables):
        x = np.where((count >> j) & 1 == 1, table[x], x)
    return x


def extrapolate(body: int, end: int, got: int, num_states: int) -> int:
    """Where an FST body starting at ``body`` would end if its ``num_states`` states took the
    room its first ``got`` states take up to ``end`` (an eighth more; at least ``end + 4``)."""
    if got <= 0:
        return end + 4
    return max(end + 4, body + (end - body) * num_states * 9 // (8 * got))


def walk(w: np.ndarray, num_states: int, compact: bool, weight_words: int = 2
         ) -> tuple[np.ndarray, np.ndarray, int]:
    """Record offsets of a VectorFst body without a Python loop over states or arcs.

    Each record's length is read from the record itself, so offsets form a chain; the chain is
    followed by pointer doubling over all word positions (garbage positions included).

    Args:
        w: (N,) int32 words from the start of the first state's record.
        num_states: S from the header.
        compact: CompactLatticeWeight (variable length), else a weight of ``weight_words``
            words: LatticeWeight 2, TropicalWeight (the standard arc of a G.fst) 1.
    Returns:
        (S,) state record offsets, (A,) arc record offsets grouped by state, and the offset just
        past the FST; the end offset is -1 if the body does not fit in ``w``.
    """
    n = w.shape[0]
    sink = n + 1
    pos = np.arange(n + 2, dtype=np.int64)
    wpad = np.concatenate([w.astype(np.int64), np.zeros(8, np.int64)])
    # length of an arc record starting at each position
    if compact:
        slen = wpad[pos + 4]
        arc_next = np.where(slen >= 0, pos + 6 + slen, sink)
        fin_len = np.where(wpad[pos + 2] >= 0, 3 + wpad[pos + 2], n + 2)
    else:
        arc_next = pos + 3 + weight_words
        fin_len = np.full(n + 2, weight_words, np.int64)
    arc_next = np.where(arc_next > n, sink, arc_next)
    arc_next[n:] = sink
    narcs_at = np.minimum(pos + fin_len, n + 1)
    narcs = np.where(wpad[np.minimum(narcs_at + 1, n + 1)] == 0, wpad[narcs_at], -1)
    narcs = np.where((narcs < 0) | (narcs_at + 2 > n), n + 1, narcs)
    first_arc = np.minimum(narcs_at + 2, sink)
    if compact:
        tables = power_tables(arc_next, int(narcs.max()))
        state_next = jump(tables, first_arc, narcs)
    else:
        tables = []
        state_next = np.where(narcs <= n, first_arc + (3 + weight_words) * narcs, sink)
    state_next = np.where(state_next > n, sink, state_next)
    state_next[n:] = sink
    starts = np.zeros(1, np.int64)
    table = state_next
    while starts.shape[0] < num_states:
        starts = np.concatenate([starts, table[starts]])[:num_states]
        table = table[table]
    if num_states == 0:
        return starts[:0], starts[:0], 0
    end = int(state_next[starts[-1]])
    if end > n or (starts >= n).any():
        return starts, starts[:0], -1
    counts = narcs[starts]
    local = torch.arange(int(counts.sum())) - torch.repeat_interleave(
        torch.from_numpy(np.cumsum(counts) - counts), torch.from_numpy(counts))
    base = np.repeat(first_arc[starts], counts)
    if compact:
        arcs = jump(tables, base, local.numpy())
    else:
        arcs = base + (3 + weight_words) * local.numpy()
    return starts, arcs, end


def parse_binary(buf: bytes, pos: int, utt_id: str, symbols: Vocab | None,
                 base: int = 0) -> tuple[Lattice, int]:
    """Parse one binary Lattice / CompactLattice at ``buf[pos:]``.

    Args:
        buf: archive bytes (all of them, or a window on them); pos: offset of the FST magic
            number in ``buf``; base: the archive offset of ``buf[0]``, for error messages.
    Returns:
        the lattice and the offset in ``buf`` just past it.
    Raises:
        EntryError: naming the utterance and archive offset; ``end`` set when the FST's extent
            is known. ``Truncated`` (an EntryError) if ``buf`` ends before the FST may: read
            again with more data, unless ``buf`` ends where the archive does.
    """
    where = f"archive offset {base + pos}"
    try:
        magic, = _I32.unpack_from(buf, pos)
        if magic != FST_MAGIC:
            raise EntryError(f"utterance {utt_id} ({where}): not an OpenFst FST (magic {magic})",
                             None)
        fst_type, p = read_string(buf, pos + 4)
        arc_type, p = read_string(buf, p)
        version, flags, _props, start, num_states, _num_arcs = struct.unpack_from("<iiQqqq", buf, p)
        p += 40
    except (struct.error, UnicodeDecodeError):
        message = f"utterance {utt_id} ({where}): truncated or corrupt FST header"
        if len(buf) - pos < _MAX_HEADER:
            raise Truncated(message, pos + _MAX_HEADER) from None
        raise EntryError(message, None) from None
    if fst_type != "vector" or arc_type not in (LATTICE_ARC, COMPACT_ARC):
        raise EntryError(f"utterance {utt_id} ({where}): unsupported FST type {fst_type!r} "
                          f"with arc type {arc_type!r}", None)
    if flags & 3:
        raise EntryError(f"utterance {utt_id} ({where}): FSTs with symbol tables are not "
                          "supported", None)
    compact = arc_type == COMPACT_ARC
    if not 0 <= num_states <= (len(buf) - p) // 16:  # a state record takes at least 16 bytes
        if num_states < 0:
            raise EntryError(f"utterance {utt_id} ({where}): corrupt FST ({num_states} states "
                             "declared)", None)
        raise Truncated(f"utterance {utt_id} ({where}): truncated or corrupt FST ({num_states} "
                        f"states declared, the data ends at offset {base + len(buf)})",
                        p + 16 * num_states)
    guess = max(1024, 64 * num_states)
    while True:
        nwords = min(guess, (len(buf) - p) // 4)
        w = np.frombuffer(buf[p: p + 4 * nwords], dtype="<i4")
        starts, arcs, end = walk(w, num_states, compact)
        if end >= 0 or nwords == (len(buf) - p) // 4:
            break
        guess *= 4
    if end < 0:
        raise Truncated(f"utterance {utt_id} ({where}): truncated FST ({num_states} states "
                        f"declared, the data ends at offset {base + len(buf)})", len(buf) + 4,
                        extrapolate(p, len(buf), int((starts < nwords).sum()), num_states))
    end_pos = p + 4 * end
    f = w.view("<f4")
    if compact:
        tid_counts = w[arcs + 4].astype(np.int64)
        tid_idx = ragged_arange(torch.from_numpy(arcs + 5), torch.from_numpy(tid_counts)).numpy()
        dst = w[arcs + 5 + tid_counts]
        ftid_counts = w[starts + 2].astype(np.int64)
        ftid_idx = ragged_arange(torch.from_numpy(starts + 3),
                                 torch.from_numpy(ftid_counts)).numpy()
    else:
        ilabel = w[arcs].astype(np.int64)
        tid_counts = (ilabel != 0).astype(np.int64)
        tid_idx = arcs[ilabel != 0]
        dst = w[arcs + 4]
        ftid_counts = np.zeros(num_states, np.int64)
        ftid_idx = np.zeros(0, np.int64)
    counts = np.diff(np.searchsorted(arcs, np.append(starts, end)))  # arcs per state
    src = np.repeat(np.arange(num_states), counts)
    fg, fa = f[starts], f[starts + 1]
    is_final = ~(np.isinf(fg) & (fg > 0) & np.isinf(fa) & (fa > 0))
    fin = np.nonzero(is_final)[0]
    keep = np.isin(np.repeat(np.arange(num_states), ftid_counts), fin)
    try:
        lat = to_lattice(utt_id, num_states, start, src, dst.astype(np.int64),
                         w[arcs + 1].astype(np.int64), f[arcs + 2], f[arcs + 3], w[tid_idx],
                         tid_counts, fin, fg[fin], fa[fin], w[ftid_idx][keep],
                         ftid_counts[fin], symbols, where)
    except InputError as e:
        raise EntryError(str(e), end_pos) from None
    return lat, end_pos


def _put_weights(w: np.ndarray, at: np.ndarray, graph: np.ndarray, acoustic: np.ndarray,
                 tid_counts: np.ndarray | None = None, tid_values: np.ndarray | None = None
                 ) -> None:
    """Write weights into the int32 words ``w`` starting at positions ``at``: the two float
    costs, then (CompactLatticeWeight) the transition-id count and the ids."""
    f = w.view(np.float32)
    f[at] = graph
    f[at + 1] = acoustic
    if tid_counts is not None:
        w[at + 2] = tid_counts
        ids_at = ragged_arange(torch.from_numpy(at + 3), torch.from_numpy(tid_counts))
        w[ids_at.numpy()] = tid_values


def format_binary(lat: Lattice, compact: bool = True) -> bytes:
    """One lattice as a binary Kaldi CompactLattice (or Lattice) FST.

    Args:
        lat: a batch of one lattice.
        compact: write a CompactLattice; else a Lattice (strings of several transition ids
            expanded as Kaldi's ConvertLattice does, see
            :func:`~lmrescore.formats.kaldi.expand_strings`).
    Returns:
        the FST bytes (no key).
    """
    k = from_lattice(lat) if compact else expand_strings(from_lattice(lat))
    s = k["num_states"]
    a = k["src"].shape[0]
    narcs = np.bincount(k["src"], minlength=s)
    if compact:
        state_len = 5 + k["final_tid_counts"]
        arc_len = 6 + k["tid_counts"]
    else:
        state_len = np.full(s, 4, np.int64)
        arc_len = np.full(a, 5, np.int64)
    arc_start_in_state = np.cumsum(arc_len) - arc_len  # arcs are sorted by state
    state_total = state_len + np.bincount(k["src"], weights=arc_len, minlength=s).astype(np.int64)
    state_off = np.cumsum(state_total) - state_total
    first_arc = np.searchsorted(k["src"], np.arange(s))
    arc_off = (state_off[k["src"]] + state_len[k["src"]]
               + arc_start_in_state - arc_start_in_state[first_arc[k["src"]]] if a else
               np.zeros(0, np.int64))
    w = np.zeros(int(state_total.sum()), np.int32)
    final = ("final_tid_counts", "final_tid_values") if compact else ()
    _put_weights(w, state_off, k["final_graph"], k["final_acoustic"], *(k[n] for n in final))
    narcs_at = state_off + state_len - 2
    w[narcs_at] = narcs
    w[arc_off] = k["word"] if compact else single_tids(k)  # a CompactLattice is an acceptor
    w[arc_off + 1] = k["word"]
    arc = ("tid_counts", "tid_values") if compact else ()
    _put_weights(w, arc_off + 2, k["graph"], k["acoustic"], *(k[n] for n in arc))
    w[arc_off + 5 + k["tid_counts"] if compact else arc_off + 4] = k["dst"]
    arc_type = (COMPACT_ARC if compact else LATTICE_ARC).encode()
    header = (_I32.pack(FST_MAGIC) + _I32.pack(6) + b"vector" + _I32.pack(len(arc_type))
              + arc_type + struct.pack("<iiQqqq", 2, 0, _PROPERTIES, 0, s, 0))
    return header + w.tobytes()
