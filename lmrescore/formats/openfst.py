"""Binary OpenFst ``vector`` FSTs over the standard (tropical) arc: a Kaldi ``G.fst`` as arpa2fst,
fstcompile or fstarcsort write it, read into arrays without a Python loop over states or arcs.

Layout (little-endian, as :mod:`lmrescore.formats.kaldi_binary` describes for lattices): the
``FstHeader`` (magic, ``"vector"``, ``"standard"``, version, flags, properties, start, states,
arcs), then per state a float32 final cost, an int64 arc count and its arcs (int32 ilabel,
int32 olabel, float32 cost, int32 next state). Weights are costs (negated natural logs);
``inf`` is "not final".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmrescore.errors import InputError
from lmrescore.formats.kaldi_binary import FST_MAGIC, read_string, walk
from lmrescore.formats.limits import MAX_FST_BYTES


@dataclass
class StdFst:
    """An FST over the tropical semiring as arrays; arcs grouped by source state.

    Attributes:
        start: the start state.
        final: (S,) float32 final cost of each state (``inf``: not final).
        src, ilabel, olabel, dst: (A,) int64 per arc.
        cost: (A,) float32 per arc.
    """

    start: int
    final: np.ndarray
    src: np.ndarray
    ilabel: np.ndarray
    olabel: np.ndarray
    dst: np.ndarray
    cost: np.ndarray


def read_std_fst(path: str | Path, max_bytes: int = MAX_FST_BYTES) -> StdFst:
    """Read a binary ``vector`` FST with the ``standard`` arc type.

    Raises:
        InputError: naming ``path``: not such an FST (another type is named, with the
            ``fstconvert`` that makes a vector one), over ``max_bytes``, truncated, or with a
            state outside the FST.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{path}: {size} bytes, over the cap of {max_bytes} for an FST")
    buf = path.read_bytes()
    try:
        (magic,) = struct.unpack_from("<i", buf, 0)
        if magic != FST_MAGIC:
            raise InputError(f"{path}: not a binary OpenFst FST (magic number {magic})")
        fst_type, p = read_string(buf, 4)
        arc_type, p = read_string(buf, p)
        _version, flags, _props, start, num_states, _arcs = struct.unpack_from("<iiQqqq", buf, p)
    except (struct.error, UnicodeDecodeError):
        raise InputError(f"{path}: truncated or corrupt FST header") from None
    if fst_type != "vector" or arc_type != "standard":
        raise InputError(f"{path}: a {fst_type!r} FST of {arc_type!r} arcs; expected a "
                         "'vector' FST of 'standard' arcs (fstconvert --fst_type=vector)")
    if flags & 3:
        raise InputError(f"{path}: the FST carries symbol tables; Kaldi's G.fst has none "
                         "(fstsymbols --clear_isymbols --clear_osymbols)")
    body = p + 40
    if not 0 <= num_states <= (len(buf) - body) // 12:  # a state record takes 12 bytes or more
        raise InputError(f"{path}: truncated or corrupt FST ({num_states} states declared in "
                         f"{len(buf)} bytes)")
    w = np.frombuffer(buf, dtype="<i4", count=(len(buf) - body) // 4, offset=body)
    starts, arcs, end = walk(w, num_states, compact=False, weight_words=1)
    if end < 0:
        raise InputError(f"{path}: truncated or corrupt FST body ({num_states} states declared)")
    counts = np.diff(np.searchsorted(arcs, np.append(starts, end)))
    f = w.view("<f4")
    dst = w[arcs + 3].astype(np.int64)
    if num_states and not 0 <= start < num_states or ((dst < 0) | (dst >= num_states)).any():
        raise InputError(f"{path}: a state outside 0..{num_states - 1}")
    return StdFst(int(start), f[starts].copy(), np.repeat(np.arange(num_states), counts),
                  w[arcs].astype(np.int64), w[arcs + 1].astype(np.int64), dst,
                  f[arcs + 2].copy())
