"""Read + best-path throughput (arcs/s) of a Kaldi Lattice archive: lmrescore vs kaldifst.

Usage:
    python3 bench/lattice_io.py [--copies 200] [--batch-size 100]

Builds a binary archive of ``copies`` x 5 lattices (the PocketSphinx fixtures with perturbed
scores, as Kaldi ``Lattice`` so kaldifst can read them), then times in the same run:
- lmrescore: read the archive in batches (``iter_archive_batches``), best path per batch;
- kaldifst: each entry's FST bytes to a file (tmpfs when available), ``Lattice.read``, then
  ``shortest_path`` (kaldifst has no lattice archive reader; the file hop is part of its cost).
Both best paths are checked to have the same word sequences. Both sides are warmed up on 10
lattices first; the per-entry reader (``batches(iter_archive(...))``) is timed last, for scale.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    return parser


def make_archive(copies: int) -> tuple[bytes, list[tuple[str, int, int]]]:
    """Archive bytes and (key, fst start, fst end) of each entry."""
    from lmrescore.formats import read_lattices
    from lmrescore.formats.kaldi import TIDS
    from lmrescore.formats.kaldi_binary import format_binary
    from lmrescore.vocab import Vocab

    vocab = Vocab.load(FIXTURES / "words.txt")
    base = [x for _, x in read_lattices(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", vocab)]
    rng = np.random.default_rng(0)
    parts, spans, pos = [], [], 0
    for c in range(copies):
        for lat in base:
            noise = torch.from_numpy(rng.normal(0, 1, lat.num_arcs).astype(np.float32))
            # Kaldi Lattice arcs: one transition id each, none on final weights
            has = (lat.label != -1).long()
            tids = (torch.arange(int(has.sum())) + 1,
                    torch.cat([torch.zeros(1, dtype=torch.int64), has.cumsum(0)]))
            one = replace(lat.with_scores(am=lat.scores["am"] + noise),
                          ragged_arc_attrs={TIDS: tids}, utt_ids=[f"{lat.utt_ids[0]}-{c}"])
            key = one.utt_ids[0].encode() + b" "  # Kaldi's layout: the FST follows the key
            fst = format_binary(one, compact=False)
            parts.append(key + fst)
            spans.append((one.utt_ids[0], pos + len(key), pos + len(key) + len(fst)))
            pos += len(key) + len(fst)
    return b"".join(parts), spans


def run_lmrescore(data: bytes, batch_size: int) -> tuple[dict[str, list[int]], float]:
    """Best-path words of each lattice, and the seconds spent in best path."""
    from lmrescore.formats.archive import iter_archive_batches
    from lmrescore.lattice.shortest_path import best_path

    out = {}
    best_path_s = 0.0
    for lat, errors in iter_archive_batches(data, batch_size=batch_size):
        assert not errors
        t0 = time.perf_counter()
        out.update(zip(lat.utt_ids, best_path(lat).word_lists()))
        best_path_s += time.perf_counter() - t0
    return out, best_path_s


def run_kaldifst(data: bytes, spans: list[tuple[str, int, int]], tmp: str
                 ) -> tuple[dict[str, list[int]], float]:
    """Best-path words of each lattice, and the seconds spent in ``shortest_path``."""
    import kaldifst

    out = {}
    best_path_s = 0.0
    path = os.path.join(tmp, "one.fst")
    for key, start, end in spans:
        with open(path, "wb") as f:
            f.write(data[start:end])
        fst = kaldifst.Lattice.read(path)
        t0 = time.perf_counter()
        best = kaldifst.shortest_path(fst)
        best_path_s += time.perf_counter() - t0
        _, _, olabels, _ = kaldifst.get_linear_symbol_sequence(best)
        words = [w for w in olabels if w > 0]
        out[key] = words
    return out, best_path_s


def main() -> None:
    args = get_parser().parse_args()
    torch.set_num_threads(1)
    data, spans = make_archive(args.copies)
    tmp_root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    from lmrescore.formats import batches
    from lmrescore.formats.archive import iter_archive

    with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
        run_lmrescore(data[: spans[9][2]], args.batch_size)  # warm-up: imports, first calls
        run_kaldifst(data, spans[:10], tmp)
        t0 = time.perf_counter()
        ours, best_path_s = run_lmrescore(data, args.batch_size)
        t1 = time.perf_counter()
        theirs, their_best_path_s = run_kaldifst(data, spans, tmp)
        t2 = time.perf_counter()
    per_entry = list(batches(iter_archive(data), args.batch_size))
    t3 = time.perf_counter()
    num_arcs = sum(lat.num_arcs for lat, _ in per_entry)
    same = sum(ours[k] == theirs[k] for k in ours)
    print(f"{len(spans)} lattices, {num_arcs} arcs, {len(data) / 1e6:.1f} MB, "
          f"batch size {args.batch_size}, 1 thread")
    print(f"lmrescore: {t1 - t0:.2f} s, {num_arcs / (t1 - t0):,.0f} arcs/s "
          f"(read + batch {t1 - t0 - best_path_s:.2f} s, best path {best_path_s:.2f} s)")
    print(f"kaldifst:  {t2 - t1:.2f} s, {num_arcs / (t2 - t1):,.0f} arcs/s "
          f"(read {t2 - t1 - their_best_path_s:.2f} s, best path {their_best_path_s:.2f} s)")
    print(f"per-entry reading (batches(iter_archive(...))), no best path: {t3 - t2:.2f} s")
    print(f"speed ratio lmrescore/kaldifst: {(t2 - t1) / (t1 - t0):.2f}x; "
          f"same 1-best words on {same}/{len(ours)} lattices")


if __name__ == "__main__":
    main()
