"""Kaldi ``Lattice`` / ``CompactLattice`` values, binary (OpenFst ``vector`` FST) and text.

Mapping to :class:`~lmrescore.lattice.Lattice`:

- A LatticeWeight is (graph cost, acoustic cost); ``lm = -graph_cost``, ``am = -acoustic_cost``.
- Kaldi states keep their numbers (the start state is moved to 0 if it is not there); a new
  final state is appended and each Kaldi final weight becomes a label -1 arc into it.
- CompactLattice: ``label`` = the word. Lattice: ``label`` = the olabel (word).
- Transition ids go to the ragged arc attribute ``"transition_ids"``: a CompactLattice arc's
  string, or a Lattice arc's ilabel (an empty list when the ilabel is 0). Final weights' strings
  sit on the -1 arcs. Reading then writing the same kind is lossless (scores to the bit).

Binary layout (little-endian; OpenFst ``FstHeader`` then ``VectorFst`` body): int32 magic
2125659606, string fst type ``"vector"``, string arc type ``"lattice4"`` or
``"compactlattice44"`` (string = int32 length + bytes), int32 version (2), int32 flags,
uint64 properties, int64 start, int64 num states, int64 num arcs; then per state: final weight,
int64 num arcs, arcs (int32 ilabel, int32 olabel, weight, int32 next state). A LatticeWeight is
two float32; a CompactLatticeWeight adds int32 n and n int32 transition ids.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

from lmrescore.errors import InputError
from lmrescore.lattice import FINAL_LABEL, Lattice, ragged_arange
from lmrescore.vocab import Vocab

FST_MAGIC = 2125659606
LATTICE_ARC = "lattice4"
COMPACT_ARC = "compactlattice44"
TIDS = "transition_ids"
# kExpanded | kMutable: no other property is claimed, so readers recompute what they need.
_PROPERTIES = 0x3
_I32 = struct.Struct("<i")


class EntryError(InputError):
    """A bad Kaldi value; ``end`` is where the next archive entry starts, or None if unknown."""

    def __init__(self, message: str, end: int | None) -> None:
        super().__init__(message)
        self.end = end


# ---------------------------------------------------------------------------------------------
# Kaldi FST arrays <-> Lattice


def _to_lattice(utt_id: str, num_states: int, start: int, src: np.ndarray, dst: np.ndarray,
                word: np.ndarray, graph: np.ndarray, acoustic: np.ndarray, tid_values: np.ndarray,
                tid_counts: np.ndarray, final_state: np.ndarray, final_graph: np.ndarray,
                final_acoustic: np.ndarray, final_tid_values: np.ndarray,
                final_tid_counts: np.ndarray, symbols: Vocab | None, where: str) -> Lattice:
    """Build a one-lattice batch from Kaldi arcs and final weights.

    Args:
        num_states: S Kaldi states; ``start`` the Kaldi start state.
        src, dst, word, graph, acoustic: (A,) arcs (costs); tid_values/tid_counts: ragged (A,).
        final_state, final_graph, final_acoustic: (F,) states with a non-Zero final weight.
        where: "archive offset N" or "line N", for error messages.
    Returns:
        A batch of one lattice with S+1 states (the last is the new final state).
    """
    if num_states == 0 or start < 0 or start >= num_states:
        raise InputError(f"utterance {utt_id} ({where}): empty lattice or no start state")
    if final_state.size == 0:
        raise InputError(f"utterance {utt_id} ({where}): lattice has no final state")
    bad = (dst < 0) | (dst >= num_states)
    if bad.any():
        a = int(bad.argmax())
        raise InputError(f"utterance {utt_id} ({where}): arc {a} goes to state {int(dst[a])}, "
                         f"outside 0..{num_states - 1}")
    if (word < 0).any():
        raise InputError(f"utterance {utt_id} ({where}): negative word label {int(word.min())}")
    if symbols is not None and word.size and int(word.max()) >= len(symbols):
        raise InputError(f"utterance {utt_id} ({where}): word id {int(word.max())} is not in "
                         f"the symbol table ({len(symbols)} words)")
    perm = np.arange(num_states + 1)
    if start != 0:  # the start state must come first
        perm[:start] += 1
        perm[start] = 0
    a_src = np.concatenate([perm[src], perm[final_state]])
    a_dst = np.concatenate([perm[dst], np.full(final_state.size, num_states)])
    label = np.concatenate([word, np.full(final_state.size, FINAL_LABEL)])
    lm = -np.concatenate([graph, final_graph]).astype(np.float32)
    am = -np.concatenate([acoustic, final_acoustic]).astype(np.float32)
    counts = np.concatenate([tid_counts, final_tid_counts]).astype(np.int64)
    # arcs first, then final weights: keep each lattice's arcs grouped by source state
    order = np.argsort(a_src, kind="stable")
    values = np.concatenate([tid_values, final_tid_values]).astype(np.int64)
    counts_out = counts[order]
    ends = np.cumsum(counts_out)
    starts = (np.cumsum(counts) - counts)[order]
    values_out = values[np.arange(int(ends[-1])) + np.repeat(starts - ends + counts_out,
                                                              counts_out)]
    # the checks above are those of Lattice.from_arcs: build the batch of one directly
    t = torch.from_numpy
    return Lattice(src=t(a_src[order]), dst=t(a_dst[order]), label=t(label[order]),
                   scores={"am": t(am[order]), "lm": t(lm[order])},
                   state_splits=torch.tensor([0, num_states + 1]),
                   arc_splits=torch.tensor([0, order.shape[0]]), utt_ids=[utt_id],
                   symbols=symbols,
                   ragged_arc_attrs={TIDS: (t(values_out), t(np.concatenate([[0], ends])))})


def _from_lattice(lat: Lattice) -> dict[str, np.ndarray | int]:
    """Kaldi arrays of a one-lattice batch (inverse of :func:`_to_lattice`).

    Returns:
        dict with ``num_states`` S, per-arc (A,) ``src dst word graph acoustic tid_counts``,
        ragged ``tid_values``, and per-state (S,) ``final_graph final_acoustic`` (inf = not
        final), ``final_tid_counts``, ragged ``final_tid_values``. Arcs sorted by source state.
    """
    s0 = int(lat.state_splits[0])
    n = int(lat.state_splits[1]) - s0
    src = (lat.src - s0).numpy()
    dst = (lat.dst - s0).numpy()
    label = lat.label.numpy()
    am = lat.scores["am"].numpy() if "am" in lat.scores else np.zeros(src.size, np.float32)
    lm = lat.scores["lm"].numpy() if "lm" in lat.scores else np.zeros(src.size, np.float32)
    if TIDS in lat.ragged_arc_attrs:
        values, splits = (t.numpy() for t in lat.ragged_arc_attrs[TIDS])
    else:
        values, splits = np.zeros(0, np.int64), np.zeros(src.size + 1, np.int64)
    counts = np.diff(splits)
    is_final = label == FINAL_LABEL
    final_src = src[is_final]
    # Kaldi has one final weight per state and no arcs leave the final state; otherwise keep our
    # final state as a Kaldi state (final weight One) reached by epsilon arcs.
    keep_final = (np.unique(final_src).size != final_src.size) or bool((src == n - 1).any())
    if keep_final:
        is_final = np.zeros_like(is_final)
        label = np.where(label == FINAL_LABEL, 0, label)
        num_states = n
    else:
        num_states = n - 1
    final_graph = np.full(num_states, np.inf, np.float32)
    final_acoustic = np.full(num_states, np.inf, np.float32)
    final_counts = np.zeros(num_states, np.int64)
    fidx = np.nonzero(is_final)[0]
    final_graph[src[fidx]] = -lm[fidx]
    final_acoustic[src[fidx]] = -am[fidx]
    final_counts[src[fidx]] = counts[fidx]
    if keep_final:
        final_graph[n - 1] = 0.0
        final_acoustic[n - 1] = 0.0
    # final strings in state order
    fstate_order = fidx[np.argsort(src[fidx], kind="stable")]
    final_values = values[ragged_arange(torch.from_numpy(splits[:-1][fstate_order]),
                                        torch.from_numpy(counts[fstate_order])).numpy()]
    aidx = np.nonzero(~is_final)[0]
    aidx = aidx[np.argsort(src[aidx], kind="stable")]
    arc_values = values[ragged_arange(torch.from_numpy(splits[:-1][aidx]),
                                      torch.from_numpy(counts[aidx])).numpy()]
    return {"num_states": num_states, "src": src[aidx], "dst": dst[aidx], "word": label[aidx],
            "graph": -lm[aidx], "acoustic": -am[aidx], "tid_counts": counts[aidx],
            "tid_values": arc_values, "final_graph": final_graph,
            "final_acoustic": final_acoustic, "final_tid_counts": final_counts,
            "final_tid_values": final_values}


# ---------------------------------------------------------------------------------------------
# binary


def _read_string(buf: bytes, pos: int) -> tuple[str, int]:
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


def _walk(w: np.ndarray, num_states: int, compact: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Record offsets of a VectorFst body without a Python loop over states or arcs.

    Each record's length is read from the record itself, so offsets form a chain; the chain is
    followed by pointer doubling over all word positions (garbage positions included).

    Args:
        w: (N,) int32 words from the start of the first state's record.
        num_states: S from the header.
        compact: CompactLatticeWeight (variable length) or LatticeWeight (2 words).
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
        arc_next = pos + 5
        fin_len = np.full(n + 2, 2, np.int64)
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
        state_next = np.where(narcs <= n, first_arc + 5 * narcs, sink)
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
        arcs = base + 5 * local.numpy()
    return starts, arcs, end


def parse_binary(buf: bytes, pos: int, utt_id: str, symbols: Vocab | None) -> tuple[Lattice, int]:
    """Parse one binary Lattice / CompactLattice at ``buf[pos:]``.

    Args:
        buf: the archive bytes; pos: offset of the FST magic number.
    Returns:
        the lattice and the offset just past it.
    Raises:
        EntryError: naming the utterance and byte offset; ``end`` set when the FST's extent is known.
    """
    try:
        magic, = _I32.unpack_from(buf, pos)
        if magic != FST_MAGIC:
            raise EntryError(f"utterance {utt_id} (archive offset {pos}): not an OpenFst FST "
                              f"(magic {magic})", None)
        fst_type, p = _read_string(buf, pos + 4)
        arc_type, p = _read_string(buf, p)
        version, flags, _props, start, num_states, _num_arcs = struct.unpack_from("<iiQqqq", buf, p)
        p += 40
    except (struct.error, UnicodeDecodeError):
        raise EntryError(f"utterance {utt_id} (archive offset {pos}): truncated or corrupt FST "
                          "header", None) from None
    where = f"archive offset {pos}"
    if fst_type != "vector" or arc_type not in (LATTICE_ARC, COMPACT_ARC):
        raise EntryError(f"utterance {utt_id} ({where}): unsupported FST type {fst_type!r} "
                          f"with arc type {arc_type!r}", None)
    if flags & 3:
        raise EntryError(f"utterance {utt_id} ({where}): FSTs with symbol tables are not "
                          "supported", None)
    compact = arc_type == COMPACT_ARC
    if not 0 <= num_states <= (len(buf) - p) // 16:  # a state record takes at least 16 bytes
        raise EntryError(f"utterance {utt_id} ({where}): truncated or corrupt FST ({num_states} "
                         f"states declared, the data ends at offset {len(buf)})", None)
    guess = max(1024, 64 * num_states)
    while True:
        nwords = min(guess, (len(buf) - p) // 4)
        w = np.frombuffer(buf[p: p + 4 * nwords], dtype="<i4")
        starts, arcs, end = _walk(w, num_states, compact)
        if end >= 0 or nwords == (len(buf) - p) // 4:
            break
        guess *= 4
    if end < 0:
        raise EntryError(f"utterance {utt_id} ({where}): truncated FST ({num_states} states "
                          f"declared, the data ends at offset {len(buf)})", None)
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
        lat = _to_lattice(utt_id, num_states, start, src, dst.astype(np.int64),
                          w[arcs + 1].astype(np.int64), f[arcs + 2], f[arcs + 3], w[tid_idx],
                          tid_counts, fin, fg[fin], fa[fin], w[ftid_idx][keep],
                          ftid_counts[fin], symbols, where)
    except InputError as e:
        raise EntryError(str(e), end_pos) from None
    return lat, end_pos


def format_binary(lat: Lattice, compact: bool = True) -> bytes:
    """One lattice as a binary Kaldi CompactLattice (or Lattice) FST.

    Args:
        lat: a batch of one lattice.
        compact: write a CompactLattice; else a Lattice (each arc at most one transition id).
    Returns:
        the FST bytes (no key).
    """
    k = _from_lattice(lat)
    s = k["num_states"]
    a = k["src"].shape[0]
    if not compact and (k["tid_counts"].max(initial=0) > 1 or k["final_tid_counts"].any()):
        raise InputError(f"utterance {lat.utt_ids[0]}: a Lattice arc holds one transition id; "
                         "write a CompactLattice instead")
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
    f = w.view(np.float32)
    f[state_off] = k["final_graph"]
    f[state_off + 1] = k["final_acoustic"]
    if compact:
        w[state_off + 2] = k["final_tid_counts"]
        idx = ragged_arange(torch.from_numpy(state_off + 3),
                            torch.from_numpy(k["final_tid_counts"])).numpy()
        w[idx] = k["final_tid_values"]
    narcs_at = state_off + state_len - 2
    w[narcs_at] = narcs
    w[arc_off] = k["word"] if compact else _scatter_tids(k)  # a CompactLattice is an acceptor
    w[arc_off + 1] = k["word"]
    f[arc_off + 2] = k["graph"]
    f[arc_off + 3] = k["acoustic"]
    if compact:
        w[arc_off + 4] = k["tid_counts"]
        idx = ragged_arange(torch.from_numpy(arc_off + 5), torch.from_numpy(k["tid_counts"])).numpy()
        w[idx] = k["tid_values"]
        w[arc_off + 5 + k["tid_counts"]] = k["dst"]
    else:
        w[arc_off + 4] = k["dst"]
    arc_type = (COMPACT_ARC if compact else LATTICE_ARC).encode()
    header = (_I32.pack(FST_MAGIC) + _I32.pack(6) + b"vector" + _I32.pack(len(arc_type))
              + arc_type + struct.pack("<iiQqqq", 2, 0, _PROPERTIES, 0, s, 0))
    return header + w.tobytes()


# ---------------------------------------------------------------------------------------------
# text

# whitespace as C's isspace() (and so numpy's number parser) has it
_SEPS = bytes.maketrans(b",_\t\r\x0b\x0c", b"      ")
_WS = np.frombuffer(b" \t\r\n\x0b\x0c", np.uint8)
_NUM_SEPS = np.frombuffer(b" \t\r\n\x0b\x0c,_", np.uint8)


def _rows(values: np.ndarray, counts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Values of some rows of a ragged array, in row order."""
    starts = np.cumsum(counts) - counts
    return values[ragged_arange(torch.from_numpy(starts[rows]),
                                torch.from_numpy(counts[rows])).numpy()]


def parse_text(block: bytes, utt_id: str, first_line: int, symbols: Vocab | None) -> Lattice:
    """Parse the text form of one lattice (the lines after the key, up to the empty line).

    Lines: ``s d ilabel olabel [g,a]`` (Lattice) or ``s d word [g,a,t1_t2_...]``
    (CompactLattice), ``s [final weight]``; as in Kaldi, the line shapes decide which.

    Args:
        block: the lines, ``\\n``-separated; first_line: archive line number of the first line.
    Raises:
        InputError: naming the utterance and the line.
    """
    b = np.frombuffer(block, np.uint8)
    is_ws = np.isin(b, _WS)
    is_sep = np.isin(b, _NUM_SEPS)
    field_start = ~is_ws & np.concatenate([[True], is_ws[:-1]])
    tok_start = ~is_sep & np.concatenate([[True], is_sep[:-1]])
    is_nl = b == 10
    line_of = np.cumsum(is_nl) - is_nl
    num_lines = int(line_of[-1]) + 1 if b.size else 0
    field_of = np.cumsum(field_start) - 1
    fstart = np.nonzero(field_start)[0]
    nfields = fstart.shape[0]
    field_line = line_of[fstart]
    nf = np.bincount(field_line, minlength=num_lines)
    commas = np.bincount(field_of[b == 44], minlength=nfields)
    unders = np.bincount(field_of[b == 95], minlength=nfields)
    tokens = np.bincount(field_of[tok_start], minlength=nfields)
    first_field = np.cumsum(nf) - nf

    def fail(line: int, why: str) -> InputError:
        text = block.split(b"\n")[line].decode("utf-8", "replace")
        return InputError(f"utterance {utt_id} (line {first_line + line}): {why}: {text!r}")

    bad = (nf == 0) | (nf > 5)
    if bad.any():
        raise fail(int(bad.argmax()), "expected 1 to 5 fields")
    last = first_field + nf - 1
    says_compact = (nf == 3) | (((nf == 2) | (nf == 4)) & (commas[last] == 2))
    says_lattice = (nf == 5) | ((nf == 2) & (commas[last] == 1)) | ((nf == 4) & (commas[last] == 0))
    compact = bool(says_compact.any()) or not says_lattice.any()
    wrong = (~says_compact if compact else ~says_lattice) & (nf > 1)
    if wrong.any():
        raise fail(int(wrong.argmax()), "neither a CompactLattice nor a Lattice line" if compact
                   else "not a Lattice line")
    has_weight = (nf == 2) | (nf == (4 if compact else 5))
    int_field = np.ones(nfields, bool)
    int_field[last[has_weight]] = False
    bad = int_field & ((commas > 0) | (unders > 0) | (tokens != 1))
    bad |= ~int_field & ((unders > np.maximum(tokens - 3, 0)) | (tokens < 2))
    if bad.any():
        raise fail(int(field_line[bad.argmax()]), "malformed field")
    try:
        vals = np.fromstring(block.translate(_SEPS).decode("ascii"), dtype=np.float64, sep=" ")
    except (ValueError, UnicodeDecodeError):
        raise fail(_first_unparsable_line(block), "not a number") from None
    assert vals.shape[0] == tokens.sum()
    ftok = np.cumsum(tokens) - tokens  # first token of each field
    ints = vals[ftok[int_field]]
    bad = (ints != np.round(ints)) | (np.abs(ints) >= 2**31)
    if bad.any():
        raise fail(int(field_line[np.nonzero(int_field)[0][bad.argmax()]]), "expected an integer")
    state = vals[ftok[first_field]].astype(np.int64)
    is_arc = nf >= 3
    arcs = np.nonzero(is_arc)[0]
    fins = np.nonzero(~is_arc)[0]
    col = lambda c: vals[ftok[first_field[arcs] + c]].astype(np.int64)  # noqa: E731
    dst = col(1)
    num_states = int(max(state.max(), dst.max(initial=-1))) + 1
    wtok = ftok[last]
    g = np.where(has_weight, vals[wtok], 0.0).astype(np.float32)
    a = np.where(has_weight, vals[np.minimum(wtok + 1, vals.shape[0] - 1)], 0.0).astype(np.float32)
    tcount = np.where(has_weight, tokens[last] - 2, 0)
    tvals = vals[ragged_arange(torch.from_numpy(wtok + 2), torch.from_numpy(tcount)).numpy()]
    tvals = tvals.astype(np.int64)
    if compact:
        word = col(2)
        arc_tcount, arc_tvals = tcount[arcs], _rows(tvals, tcount, arcs)
    else:
        ilabel = col(2)
        word = col(3)
        arc_tcount, arc_tvals = (ilabel != 0).astype(np.int64), ilabel[ilabel != 0]
    fin_state = state[fins]
    if np.unique(fin_state).size != fin_state.size:
        raise fail(int(fins[-1]), "a state has two final weights")
    final = ~(np.isposinf(g[fins]) & np.isposinf(a[fins]))  # Zero: the state is not final
    fins, fin_state = fins[final], fin_state[final]
    return _to_lattice(utt_id, num_states, int(state[0]), state[arcs], dst, word, g[arcs], a[arcs],
                       arc_tvals, arc_tcount, fin_state, g[fins], a[fins],
                       _rows(tvals, tcount, fins), tcount[fins], symbols, f"line {first_line}")


def _first_unparsable_line(block: bytes) -> int:
    """Index of the first line that is not all numbers (error path only)."""
    for i, line in enumerate(block.translate(_SEPS).split(b"\n")):
        try:
            np.array(line.split(), dtype=np.float64)
        except ValueError:
            return i
    return 0


def _costs_str(x: np.ndarray) -> np.ndarray:
    """float32 costs as the shortest strings that read back to the same float32."""
    s = (x.astype(np.float32) + np.float32(0)).astype(str)  # -0.0 -> 0.0
    s[np.isposinf(x)] = "Infinity"
    s[np.isneginf(x)] = "-Infinity"
    return s


def format_text(lat: Lattice, compact: bool = True) -> bytes:
    """One lattice in Kaldi's text form: a newline, one line per arc / final state, an empty line.

    Args:
        lat: a batch of one lattice; compact: CompactLattice (else Lattice) lines.
    Returns:
        the text, as written after ``key `` in an ``ark,t`` archive.
    """
    k = _from_lattice(lat)
    if not compact and (k["tid_counts"].max(initial=0) > 1 or k["final_tid_counts"].any()):
        raise InputError(f"utterance {lat.utt_ids[0]}: a Lattice arc holds one transition id; "
                         "write a CompactLattice instead")
    fin = np.nonzero(~(np.isposinf(k["final_graph"]) & np.isposinf(k["final_acoustic"])))[0]
    # one row per output line: arcs and finals, ordered by state then arcs before the final
    src = np.concatenate([k["src"], fin])
    counts = np.concatenate([k["tid_counts"], k["final_tid_counts"][fin]])
    values = np.concatenate([k["tid_values"], _rows(k["final_tid_values"],
                                                     k["final_tid_counts"], fin)])
    g = np.concatenate([k["graph"], k["final_graph"][fin]])
    a = np.concatenate([k["acoustic"], k["final_acoustic"][fin]])
    is_arc = np.arange(src.shape[0]) < k["src"].shape[0]
    order = np.lexsort((~is_arc, src))
    # per line: "a,b" or "a,b,t1_t2"; omitted when it is One (Kaldi's printer does the same)
    weight = np.char.add(np.char.add(_costs_str(g), ","), _costs_str(a))
    if compact:
        tid_str = values.astype(str)
        nonlast = np.ones(values.shape[0], bool)
        nonlast[np.cumsum(counts)[counts > 0] - 1] = False
        tid_str = np.char.add(tid_str, np.where(nonlast, "_", ""))
        joined = np.array(["".join(tid_str[i:j]) for i, j in
                           zip((np.cumsum(counts) - counts).tolist(), np.cumsum(counts).tolist())]
                          if counts.size else [], dtype=str).reshape(-1)
        weight = np.char.add(np.char.add(weight, ","), joined)
    one = (g == 0) & (a == 0) & (counts == 0)
    tail = np.where(one, "", np.char.add("\t", weight))
    head = src.astype(str)
    arc_part = np.char.add(np.char.add("\t", k["dst"].astype(str)), np.char.add(
        "\t", k["word"].astype(str) if compact else np.char.add(np.char.add(
            np.where(k["tid_counts"] > 0, _scatter_tids(k), 0).astype(str), "\t"),
            k["word"].astype(str))))
    mid = np.concatenate([arc_part, np.full(fin.shape[0], "")]) if arc_part.size else \
        np.full(fin.shape[0], "")
    lines = np.char.add(np.char.add(head, mid), tail)[order]
    return ("\n" + "\n".join(lines.tolist()) + "\n\n").encode()


def _scatter_tids(k: dict) -> np.ndarray:
    """(A,) the single transition id of each arc of a Lattice (0 where none)."""
    out = np.zeros(k["tid_counts"].shape[0], np.int64)
    has = k["tid_counts"] > 0
    out[has] = k["tid_values"]
    return out
