"""Test helpers for lattice formats: random lattices in the canonical arc order, exact equality."""

from __future__ import annotations

import numpy as np
import torch

from lmrescore.formats.kaldi import TIDS
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab

VOCAB = Vocab.from_words([f"w{i}" for i in range(20)])


def random_lattice(seed: int, utt_id: str, num_states: int = 6, num_arcs: int = 12,
                   max_tids: int = 3) -> Lattice:
    """A random lattice whose arcs are sorted by source state, each state's -1 arc last.

    Scores are random float32 (full precision); arcs carry 0..max_tids transition ids (with
    ``max_tids <= 1``, none on the -1 arcs, as in a Kaldi Lattice).
    """
    rng = np.random.default_rng(seed)
    final = num_states - 1
    src = np.sort(rng.integers(0, final, num_arcs))
    dst = rng.integers(0, final, num_arcs)
    label = rng.integers(0, len(VOCAB), num_arcs)
    fin_src = np.sort(rng.choice(final, size=rng.integers(1, final + 1), replace=False))
    src = np.concatenate([src, fin_src])
    dst = np.concatenate([dst, np.full(fin_src.size, final)])
    label = np.concatenate([label, np.full(fin_src.size, -1)])
    order = np.lexsort((label == -1, src))
    n = src.size
    counts = rng.integers(0, max_tids + 1, n)
    if max_tids <= 1:  # a Kaldi Lattice: one transition id per arc, none on final weights
        counts[label[order] == -1] = 0
    values = rng.integers(1, 5000, int(counts.sum()))
    scores = {k: torch.from_numpy((rng.standard_normal(n) * 30).astype(np.float32))
              for k in ("am", "lm")}
    return Lattice.from_arcs(utt_id, num_states, src[order], dst[order], label[order], scores,
                             symbols=VOCAB, ragged_arc_attrs={TIDS: (
                                 torch.from_numpy(values),
                                 torch.from_numpy(np.concatenate([[0], np.cumsum(counts)])))})


def assert_same(a: Lattice, b: Lattice, ragged: bool = True) -> None:
    """Same arcs, labels, scores (bit for bit), utterance ids and attributes."""
    assert a.utt_ids == b.utt_ids
    for name in ("src", "dst", "label", "state_splits", "arc_splits"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert set(a.scores) == set(b.scores)
    for k in a.scores:  # NaN scores (from corrupt bytes) compare equal to themselves
        x, y = a.scores[k], b.scores[k]
        assert x.shape == y.shape and bool(((x == y) | (x.isnan() & y.isnan())).all()), k
    if ragged:
        assert set(a.ragged_arc_attrs) == set(b.ragged_arc_attrs)
        for k, (v, s) in a.ragged_arc_attrs.items():
            assert torch.equal(v, b.ragged_arc_attrs[k][0]) and torch.equal(s, b.ragged_arc_attrs[k][1])
    for k, v in a.state_attrs.items():
        assert torch.equal(v, b.state_attrs[k]), k


def corrupt(data: bytes, rng) -> bytes:
    """``data`` with 1-3 random damages (``rng``: a numpy Generator): a byte changed, 4 bytes
    made 0 / all ones / +inf, a run of bytes deleted, or the end cut off."""
    out = bytearray(data)
    for _ in range(rng.integers(1, 4)):
        at = int(rng.integers(len(out)))
        kind = rng.integers(4)
        if kind == 0:
            out[at] = int(rng.integers(256))
        elif kind == 1:
            out[at: at + 4] = [b"\0\0\0\0", b"\xff\xff\xff\xff", b"\0\0\x80\x7f"][at % 3]
        elif kind == 2:
            del out[at: at + int(rng.integers(1, 40))]
        else:
            del out[at:]
    return bytes(out)


def assert_same_batches(got: list, want: list) -> None:
    """Two lists of (batch or None, errors) from the batched readers are the same."""
    assert len(got) == len(want)
    for (lat, errors), (ref, ref_errors) in zip(got, want):
        assert [(u, str(e)) for u, e in errors] == [(u, str(e)) for u, e in ref_errors]
        assert (lat is None) == (ref is None)
        if ref is not None:
            assert_same(lat, ref)
