"""Kaldi lattices in text form (``ark,t:``): one value parsed or formatted at a time.

As Kaldi's lattice holders write it (src/lat/kaldi-lattice.cc ``LatticeHolder::Write``): a
newline after ``key ``, OpenFst's printer lines (tab-separated; CompactLattice as an
acceptor, weights that are One left out), then an empty line. Costs are printed as C++
``<<`` prints them (``%.6g``) unless 6 digits would change the float32: then with the fewest
digits (up to 9) that keep it. Values map to lattices as :mod:`lmrescore.formats.kaldi` says.
"""

from __future__ import annotations

import numpy as np
import torch

from lmrescore.errors import InputError
from lmrescore.formats.kaldi import expand_strings, from_lattice, single_tids, to_lattice
from lmrescore.formats.limits import MAX_STATES
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.ragged import ragged_arange
from lmrescore.vocab import Vocab

# whitespace as C's isspace() (and so numpy's number parser) has it
_SEPS = bytes.maketrans(b",_\t\r\x0b\x0c", b"      ")
_WS = np.frombuffer(b" \t\r\n\x0b\x0c", np.uint8)
_NUM_SEPS = np.frombuffer(b" \t\r\n\x0b\x0c,_", np.uint8)


def _rows(values: np.ndarray, counts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Values of some rows of a ragged array, in row order."""
    starts = np.cumsum(counts) - counts
    return values[ragged_arange(torch.from_numpy(starts[rows]),
                                torch.from_numpy(counts[rows])).numpy()]


def parse_text(block: bytes, utt_id: str, first_line: int, symbols: Vocab | None,
               max_states: int = MAX_STATES) -> Lattice:
    """Parse the text form of one lattice (the lines after the key, up to the empty line).

    Lines: ``s d ilabel olabel [g,a]`` (Lattice) or ``s d word [g,a,t1_t2_...]``
    (CompactLattice), ``s [final weight]``; as in Kaldi, the line shapes decide which.

    State ids are numbered by rank among the ids the lines use (order kept): an id near 2^31
    costs nothing, and ids no line uses (states without arcs or final weight) are dropped.

    Args:
        block: the lines, ``\\n``-separated; first_line: archive line number of the first line.
        max_states: cap on the distinct state ids (see :mod:`lmrescore.formats.limits`).
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
    # state ids as ranks among the ids used (order kept), never allocated by value
    ids, rank = np.unique(np.concatenate([state, col(1)]), return_inverse=True)
    if ids.size > max_states:
        raise InputError(f"utterance {utt_id} (line {first_line}): {ids.size} states; at most "
                         f"{max_states} (the states cap)")
    state, dst, num_states = rank[: state.size], rank[state.size:], int(ids.size)
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
    return to_lattice(utt_id, num_states, int(state[0]), state[arcs], dst, word, g[arcs], a[arcs],
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
    """float32 costs as Kaldi prints them (C++ ``<<``, 6 significant digits: ``%.6g``), with
    more digits (up to 9) only where 6 would not read back to the same float32."""
    x = x.astype(np.float32) + np.float32(0)  # -0.0 -> 0.0
    finite = np.isfinite(x)
    s = np.where(np.isposinf(x), "Infinity", np.where(np.isneginf(x), "-Infinity", "BadNumber"))
    s = s.astype("<U16")
    todo = np.nonzero(finite)[0]
    for digits in range(6, 10):
        s[todo] = np.char.mod(f"%.{digits}g", x[todo].astype(np.float64))
        todo = todo[s[todo].astype(np.float64).astype(np.float32) != x[todo]]
        if not todo.size:
            break
    return s


def format_text(lat: Lattice, compact: bool = True) -> bytes:
    """One lattice in Kaldi's text form: a newline, one line per arc / final state, an empty line.

    Args:
        lat: a batch of one lattice; compact: CompactLattice (else Lattice, strings expanded as
            :func:`~lmrescore.formats.kaldi.expand_strings` says) lines.
    Returns:
        the text, as written after ``key `` in an ``ark,t`` archive.
    """
    k = from_lattice(lat) if compact else expand_strings(from_lattice(lat))
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
    one = (g == 0) & (a == 0) & ((counts == 0) | (not compact))  # a Lattice tid is its ilabel
    tail = np.where(one, "", np.char.add("\t", weight))
    head = src.astype(str)
    arc_part = np.char.add(np.char.add("\t", k["dst"].astype(str)), np.char.add(
        "\t", k["word"].astype(str) if compact else np.char.add(np.char.add(
            np.where(k["tid_counts"] > 0, single_tids(k), 0).astype(str), "\t"),
            k["word"].astype(str))))
    mid = np.concatenate([arc_part, np.full(fin.shape[0], "")]) if arc_part.size else \
        np.full(fin.shape[0], "")
    lines = np.char.add(np.char.add(head, mid), tail)[order]
    return ("\n" + "\n".join(lines.tolist()) + "\n\n").encode()
