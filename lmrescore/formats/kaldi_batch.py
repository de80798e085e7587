"""Runs of binary Kaldi lattices of one archive, decoded together into one batch.

A run is a sequence of consecutive archive entries ``key <OpenFst vector FST>`` (Kaldi's
layout; ``key \\0B<FST>`` is read too, and a tab may stand for the space). Their
bodies are copied back to back into one word array and walked together (the record chains
of :func:`lmrescore.formats.kaldi_binary.parse_binary`, followed by pointer doubling over all
bodies at once), so the cost per run is a fixed number of numpy passes, not one per lattice.

The run stops before the first entry this fast path cannot vouch for (a bad header, a body
that does not end where the next key begins or before the data does, anything but whitespace
and a key between two entries, an entry larger than the cap): the caller reads that entry the
per-entry, failure-tolerant way. An entry that is
well formed but not a valid lattice (no final state, a state or word out of range) is decoded
again on its own by :func:`~lmrescore.formats.kaldi_binary.parse_binary`, which names the
error, so errors and lattices are exactly those of per-entry reading.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import torch

from lmrescore.errors import InputError
from lmrescore.formats.kaldi import TIDS, EntryError, decode_key
from lmrescore.formats.kaldi_binary import (FST_HEAD, NULL_B, extrapolate, jump, parse_binary,
                                            power_tables)
from lmrescore.lattice.lattice import FINAL_LABEL, Lattice
from lmrescore.vocab import Vocab

_KEY = re.compile(rb"[^ \t\n\r\x0b\x0c]+")
_TOKEN = re.compile(rb"[^\x00-\x20\x7f]+")  # a Kaldi token (util/text-utils IsToken)
_ARC_TYPES = {struct.pack("<i", 8) + b"lattice4": False,
              struct.pack("<i", 16) + b"compactlattice44": True}
_HEADER_TAIL = struct.Struct("<iiQqqq")  # version, flags, properties, start, states, arcs
_WS = b" \t\n\r\x0b\x0c"


@dataclass
class Run:
    """Consecutive archive entries read together.

    Attributes:
        count: entries consumed (0: the entry at the position needs per-entry reading).
        lattices: the good ones as one batch, in archive order, or None.
        errors: (utterance id, error) of the bad ones, in archive order.
        end: archive offset just past the last entry consumed.
        need: with ``count == 0``, where the data would have to reach at least for the first
            entry to end in it (None: it does not lack data): read on and try again.
        guess: where the first entry probably ends (None: no better guess than ``need``).
    """

    count: int
    lattices: Lattice | None = None
    errors: list[tuple[str, InputError]] = field(default_factory=list)
    end: int = 0
    need: int | None = None
    guess: int | None = None


@dataclass
class _Headers:
    """Parsed headers of J candidate entries (all arrays (J,))."""

    keys: list[str]  # the first entry's; decode_run adds the others once it knows where they are
    fst_pos: np.ndarray  # offset of the FST magic number
    body_pos: np.ndarray  # offset of the first state record
    limit: np.ndarray  # where the next entry's marker is (or the end of the data)
    marker: np.ndarray  # offset of the space (or tab) after this entry's key
    start: np.ndarray
    num_states: np.ndarray
    compact: np.ndarray


def _ragged_arange(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ranges ``starts[i] .. starts[i]+counts[i]-1``: (sum(counts),) int64."""
    ends = np.cumsum(counts)
    return np.arange(int(ends[-1]) if ends.size else 0) + np.repeat(starts - ends + counts, counts)


def _markers(data: bytes, start: int) -> Iterator[tuple[int, int]]:
    """Where binary values follow their keys from ``start`` on: (offset of the space or tab
    after the key, offset of the FST), found by the FST magic number and type "vector" that
    follow it (an optional "\\0B" between them)."""
    fst = data.find(FST_HEAD, start)
    while fst >= 0:
        sep = fst - 1 - 2 * (data[fst - 2: fst] == NULL_B)
        if sep >= start and data[sep] in b" \t":
            yield sep, fst
        fst = data.find(FST_HEAD, fst + 1)


def _headers(data: bytes, pos: int, max_entries: int) -> tuple[_Headers | None, int | None]:
    """Headers of up to ``max_entries`` binary entries from ``pos``, stopping at a bad one.

    Returns:
        the headers (None: not even the first one), and if the first one's FST does not fit in
        ``data`` and no other entry follows it there, how far ``data`` would have to reach.
    """
    key = _KEY.match(data, pos)
    if key is None or not decode_key(key.group())[1]:  # a key that is not UTF-8 fails alone
        return None, None
    found = list(islice(_markers(data, key.end()), max_entries + 1))
    if not found or found[0][0] != key.end():
        return None, None
    markers = [m for m, _ in found]
    need = None
    cols: list[list[int]] = [[] for _ in range(7)]
    for j, m in enumerate(markers[:max_entries]):
        fst = found[j][1]
        arc_type = data[fst + 14: fst + 18 + (16 if data[fst + 14: fst + 15] == b"\x10" else 8)]
        limit = markers[j + 1] if j + 1 < len(markers) else len(data)
        if arc_type not in _ARC_TYPES:
            break
        body = fst + 14 + len(arc_type) + _HEADER_TAIL.size
        if body > limit:
            need = body if len(markers) == 1 else None
            break
        _, flags, _, start, num_states, _ = _HEADER_TAIL.unpack_from(data, body - 40)
        if flags & 3 or not 0 < num_states <= (limit - body) // 4:
            short = not flags & 3 and num_states > 0 and len(markers) == 1
            need = body + 4 * num_states if short else None
            break
        for col, v in zip(cols, (fst, body, limit, m, start, num_states, _ARC_TYPES[arc_type])):
            col.append(v)
    if not cols[0]:
        return None, need
    a = [np.array(c, dtype=np.int64) for c in cols]
    return _Headers(keys=[key.group().decode()], fst_pos=a[0], body_pos=a[1],
                    limit=a[2], marker=a[3], start=a[4], num_states=a[5],
                    compact=a[6] == 1), None


@dataclass
class _Walk:
    """Record offsets of J FST bodies (word indices into the bodies' word array of length T).

    Attributes:
        states: (S,) each state record [entry][state]; T where the chain broke.
        fst_end: (J,) just past each FST; T where the chain broke.
        narcs: (S,) arcs of each state.
        arcs: (A,) each arc record [entry][state][arc].
    """

    states: np.ndarray
    fst_end: np.ndarray
    narcs: np.ndarray
    arcs: np.ndarray


def _lookup(sorted_pos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of each ``x`` in ``sorted_pos`` (N,), or N where it is not there."""
    n = sorted_pos.shape[0]
    i = np.minimum(np.searchsorted(sorted_pos, x), n)
    return np.where(np.append(sorted_pos, -1)[i] == x, i, n)


def _walk(w: np.ndarray, total: int, first: np.ndarray, size: np.ndarray,
          num_states: np.ndarray, compact: np.ndarray) -> _Walk:
    """Follow the record chains of J FST bodies laid out back to back.

    A record's length is read from the record, so offsets form chains. The positions that can
    start a state (or CompactLattice arc) record are found with a few vectorised tests; the
    chains over them are followed by pointer doubling. The tests only ever reject more than
    ``kaldi_binary.parse_binary`` would (a CompactLattice arc whose ilabel is neither 0 nor its
    olabel breaks the chain), and a broken chain sends that entry to per-entry reading.

    Args:
        w: (T+8,) int32 words; body j is ``w[first[j]: first[j]+size[j]]``, then one end
            slot; 8 zero words at the end.
        total: T.
        first, size, num_states: (J,) int64; compact: (J,) bool, CompactLattice bodies.
    """
    bound = first + size  # (J,) the end slot of each body

    def body_of(p: np.ndarray) -> np.ndarray:
        return np.searchsorted(first, p, side="right") - 1

    # state records: final weight (2 words; CompactLattice 3 + n), int64 arc count, arcs
    cand = np.nonzero((w[3: total + 3] == 0) & (w[2: total + 2] >= 0))[0]
    body = body_of(cand)
    cand, body = cand[~compact[body]], body[~compact[body]]
    narcs_at = cand + 2
    if compact.any():
        c = np.nonzero(w[2: total + 2] >= 0)[0]
        c_body = body_of(c)
        c, c_body = c[compact[c_body]], c_body[compact[c_body]]
        at = c + 3 + w[c + 2]
        fits = at + 2 <= bound[c_body]
        c, c_body, at = c[fits], c_body[fits], at[fits]
        keep = (w[at + 1] == 0) & (w[at] >= 0)
        order = np.argsort(np.concatenate([cand, c[keep]]), kind="stable")
        cand = np.concatenate([cand, c[keep]])[order]
        body = np.concatenate([body, c_body[keep]])[order]
        narcs_at = np.concatenate([narcs_at, at[keep]])[order]
    c_narcs = w[narcs_at].astype(np.int64)
    c_first = narcs_at + 2
    c_cmp = compact[body]
    keep = c_first + np.where(c_cmp, 6, 5) * c_narcs <= bound[body]
    cand, c_narcs, c_first, c_cmp = cand[keep], c_narcs[keep], c_first[keep], c_cmp[keep]
    c_next = c_first + 5 * c_narcs
    tables: list[np.ndarray] = []
    if compact.any():  # arcs: ilabel = olabel (or 0), weight, n, n transition ids, next state
        q = np.nonzero(((w[:total] == w[1: total + 1]) | (w[:total] == 0))
                       & (w[4: total + 4] >= 0))[0]
        q_next = q + 6 + w[q + 4]
        keep = compact[body_of(q)] & (q_next <= bound[body_of(q)])
        arc_pos, arc_next_pos = np.append(q[keep], total), np.append(q_next[keep], total)
        tables = power_tables(np.append(_lookup(arc_pos[:-1], arc_next_pos[:-1]), len(q[keep])),
                               int(c_narcs[c_cmp].max(initial=0)))
        last_arc = jump(tables, _lookup(arc_pos[:-1], c_first), np.maximum(c_narcs - 1, 0))
        c_next = np.where(c_cmp, np.where(c_narcs == 0, c_first, arc_next_pos[last_arc]), c_next)
    step = np.append(_lookup(cand, c_next), cand.shape[0])
    # state k + h of a body = step^h(state k), for h = 1, 2, 4, ...
    offsets = np.cumsum(num_states) - num_states
    states = np.empty(int(num_states.sum()), np.int64)
    states[offsets] = _lookup(cand, first)
    table, have, most = step, 1, int(num_states.max())
    while have < most:
        target = _ragged_arange(offsets + have, np.clip(num_states - have, 0, have))
        states[target] = table[states[target - have]]
        have *= 2
        if have < most:
            table = table[table]
    fst_end = np.append(c_next, total)[states[offsets + num_states - 1]]
    s_narcs = np.append(c_narcs, 0)[states]
    s_first = np.append(c_first, total)[states]
    states = np.append(cand, total)[states]
    arc_state = np.repeat(np.arange(states.shape[0]), s_narcs)
    rank = np.arange(arc_state.shape[0]) - np.repeat(np.cumsum(s_narcs) - s_narcs, s_narcs)
    arcs = s_first[arc_state] + 5 * rank
    if tables:
        arcs = np.where(compact[body_of(arcs)],
                        arc_pos[jump(tables, _lookup(arc_pos[:-1], arcs - 5 * rank), rank)],
                        arcs)
    return _Walk(states=states, fst_end=fst_end, narcs=s_narcs, arcs=arcs)


def decode_run(data: bytes, pos: int, max_entries: int, symbols: Vocab | None, base: int = 0,
               max_bytes: int | None = None) -> Run:
    """Read up to ``max_entries`` binary entries from ``pos`` (the first byte of a key).

    Args:
        data: the archive bytes, or a window on them.
        pos: where an entry's key begins in ``data``.
        max_entries: the most entries to consume (good and bad).
        symbols: words.txt to check word ids against, or None.
        base: the archive offset of ``data[0]``, for error messages.
        max_bytes: the run stops before an entry (key and value) larger than this.
    Returns:
        the run (``end`` an offset in ``data``); ``count == 0`` when the entry at ``pos`` is not
        one this fast path reads, or not in ``data`` (``need`` set: it may end further on).
    """
    h, need = _headers(data, pos, max_entries)
    if h is None:
        return Run(count=0, need=need)
    # bodies back to back, each up to the next marker, whole words, then one end slot
    size = (h.limit - h.body_pos) // 4
    w32 = np.frombuffer(b"".join([*(data[b: b + 4 * n] + b"\0\0\0\0" for b, n in zip(
        h.body_pos.tolist(), size.tolist())), bytes(32)]), dtype="<i4")
    total = w32.shape[0] - 8
    first = np.cumsum(size + 1) - size - 1
    walk = _walk(w32, total, first, size, h.num_states, h.compact)
    broken = np.bincount(np.repeat(np.arange(size.shape[0]), h.num_states)[
        walk.states == total], minlength=size.shape[0]) > 0
    broken |= walk.fst_end == total
    end_pos = (h.body_pos + 4 * (walk.fst_end - first)).tolist()
    count = int(broken.argmax()) if broken.any() else size.shape[0]
    if count == 0:  # the first FST does not end where it may: past the end of the data?
        if int(h.limit[0]) != len(data):
            return Run(count=0)
        got = int((walk.states[:int(h.num_states[0])] != total).sum())
        return Run(count=0, need=len(data) + 4, guess=extrapolate(
            int(h.body_pos[0]), len(data), got, int(h.num_states[0])))
    key_pos = [pos]
    for j in range(count - 1):  # between two entries: whitespace, then the next key
        key = data[end_pos[j]: int(h.marker[j + 1])].lstrip(_WS)
        text, utf8 = decode_key(key)
        if not _TOKEN.fullmatch(key) or not utf8:  # read one by one; entry j too if its end
            count = j + 1 if _TOKEN.fullmatch(key) else j  # may be misread
            break
        h.keys.append(text)
        key_pos.append(int(h.marker[j + 1]) - len(key))
    if max_bytes is not None:
        count = next((j for j in range(count) if end_pos[j] - key_pos[j] > max_bytes), count)
    if count == 0:
        return Run(count=0)
    num_s = int(h.num_states[:count].sum())
    return _lattices(w32, h, count, walk.states[:num_s], walk.narcs[:num_s],
                     walk.arcs[:int(walk.narcs[:num_s].sum())], end_pos[count - 1], data, symbols,
                     base)


def _lattices(w32: np.ndarray, h: _Headers, count: int, states: np.ndarray, counts: np.ndarray,
              arcs: np.ndarray, end: int, data: bytes, symbols: Vocab | None, base: int) -> Run:
    """Check and convert the first ``count`` walked entries (as ``kaldi.to_lattice`` does).

    Args:
        w32: (T,) int32 words of the bodies; h: the entries' headers.
        states, counts: (S,) word index and arc count of each state record [entry][state].
        arcs: (A,) word index of each arc record [entry][state][arc].
        end: offset in ``data`` just past the last entry; base: archive offset of ``data[0]``.
    """
    f32 = w32.view("<f4")
    num_states, start, compact = h.num_states[:count], h.start[:count], h.compact[:count]
    state_entry = np.repeat(np.arange(count), num_states)
    arc_state = np.repeat(np.arange(states.shape[0]), counts)
    arc_entry = state_entry[arc_state]
    arc_cmp = compact[arc_entry]
    # Lattice arc: ilabel (its transition id, 0 for none), olabel, weight, next state;
    # CompactLattice arc: word, word, weight, n, n transition ids, next state
    n_or_ilabel = w32[arcs + 4 * arc_cmp]
    tid_n = np.where(arc_cmp, n_or_ilabel, n_or_ilabel != 0).astype(np.int64)
    tid_at = arcs + 5 * arc_cmp
    dst = w32[np.where(arc_cmp, tid_at + tid_n, arcs + 4)].astype(np.int64)
    word = w32[arcs + 1].astype(np.int64)
    fg, fa = f32[states], f32[states + 1]
    is_final = ~(np.isposinf(fg) & np.isposinf(fa))
    fin_n = np.where(compact[state_entry] & is_final, w32[states + 2], 0).astype(np.int64)

    def per_entry(bad: np.ndarray, entry: np.ndarray) -> np.ndarray:
        return np.bincount(entry[bad], minlength=count) > 0

    bad = (start < 0) | (start >= num_states)
    bad |= np.bincount(state_entry[is_final], minlength=count) == 0
    bad_arc = (dst < 0) | (dst >= num_states[arc_entry]) | (word < 0)
    if symbols is not None:
        bad_arc |= word >= len(symbols)
    bad |= per_entry(bad_arc, arc_entry)
    errors = []
    for j in np.nonzero(bad)[0].tolist():
        try:
            parse_binary(data, int(h.fst_pos[j]), h.keys[j], symbols, base)
        except EntryError as e:
            errors.append((h.keys[j], e))
    assert len(errors) == int(bad.sum()), "a lattice the batch check rejected parsed on its own"
    good = ~bad
    if not good.any():
        return Run(count=count, errors=errors, end=end)
    if bad.any():  # drop the bad entries' states and arcs
        keep_s, keep_a = good[state_entry], good[arc_entry]
        states, counts, is_final, fin_n, fg, fa = (
            x[keep_s] for x in (states, counts, is_final, fin_n, fg, fa))
        arcs, tid_n, tid_at, dst, word = (x[keep_a] for x in (arcs, tid_n, tid_at, dst, word))
        new_index = np.cumsum(good) - 1
        state_entry, arc_entry = new_index[state_entry[keep_s]], new_index[arc_entry[keep_a]]
        arc_state = np.repeat(np.arange(states.shape[0]), counts)
        num_states, start = num_states[good], start[good]
    entries = np.nonzero(good)[0]
    # Kaldi state k -> ours: the start state first, then the others in order; one final state
    state_splits = np.concatenate([[0], np.cumsum(num_states + 1)])
    kaldi_off = np.cumsum(num_states) - num_states
    local = np.arange(states.shape[0]) - kaldi_off[state_entry]
    s_start = start[state_entry]
    new_state = state_splits[:-1][state_entry] + np.where(local == s_start, 0,
                                                          local + (local < s_start))
    new_dst = new_state[kaldi_off[arc_entry] + dst]
    # arcs of each of our states: its Kaldi arcs in file order, then its final-weight arc
    out_count = np.zeros(int(state_splits[-1]), np.int64)
    out_count[new_state] = counts + is_final
    block = np.cumsum(out_count) - out_count  # first arc of each of our states
    first_out = block[new_state]
    at = np.arange(arc_state.shape[0]) + (first_out - np.cumsum(counts) + counts)[arc_state]
    fin = np.nonzero(is_final)[0]
    at_fin = first_out[fin] + counts[fin]
    num_arcs = arc_state.shape[0] + fin.shape[0]
    src = np.repeat(np.arange(out_count.shape[0]), out_count)
    dst_out = np.empty(num_arcs, np.int64)
    dst_out[at], dst_out[at_fin] = new_dst, (state_splits[1:] - 1)[state_entry[fin]]
    label = np.empty(num_arcs, np.int64)
    label[at], label[at_fin] = word, FINAL_LABEL
    lm = np.empty(num_arcs, np.float32)
    lm[at], lm[at_fin] = -f32[arcs + 2], -fg[fin]
    am = np.empty(num_arcs, np.float32)
    am[at], am[at_fin] = -f32[arcs + 3], -fa[fin]
    n_out = np.empty(num_arcs, np.int64)
    n_out[at], n_out[at_fin] = tid_n, fin_n[fin]
    at_out = np.empty(num_arcs, np.int64)
    at_out[at], at_out[at_fin] = tid_at, states[fin] + 3
    tids = w32[_ragged_arange(at_out, n_out)].astype(np.int64)
    arc_splits = np.append(block, num_arcs)[state_splits]
    t = torch.from_numpy
    lat = Lattice(src=t(src), dst=t(dst_out), label=t(label), scores={"am": t(am), "lm": t(lm)},
                  state_splits=t(state_splits), arc_splits=t(arc_splits),
                  utt_ids=[h.keys[j] for j in entries.tolist()], symbols=symbols,
                  ragged_arc_attrs={TIDS: (t(tids), t(np.concatenate([[0], np.cumsum(n_out)])))})
    return Run(count=count, lattices=lat, errors=errors, end=end)
