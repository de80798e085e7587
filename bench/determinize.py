"""Lattice size before/after determinization, and the history expansion it saves.

Usage:
    python3 bench/determinize.py [--beams 3 5 8] [--acoustic-scales 0.1 0.05] [--lm-scale 1.0]
                                 [--orders 4 8] [--cap 2000000]

For each fixture archive (all its lattices in one batch), acoustic scale and beam: arcs read,
after ``prune_beam``, after ``determinize`` (and its time), then the arcs of the order-K history
expansion (``expand`` with ``token_table`` of the archive's words) of the pruned and of the
determinized lattices: the sum over lattices, the largest, and how many passed ``--cap`` arcs
(those count as --cap in the sum).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from lmrescore.lattice.determinize import determinize
from lmrescore.rescoring.expand import expand
from lmrescore.formats import read_lattice_batches
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lattice.prune import prune_beam
from lmrescore.rescoring.symbols import token_table
from lmrescore.lm.units import WordUnits
from lmrescore.vocab import Vocab

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = [("tests/fixtures/lats.ark", "tests/fixtures/words.txt"),
            ("egs/ptb/s5/demo/lat.ark", "egs/ptb/s5/demo/words.txt")]


def expanded_arcs(lat: Lattice, symbols: Vocab, order: int, cap: int) -> str:
    """'sum/max (n over cap)' of the expanded arcs per lattice."""
    table, _ = token_table(symbols, WordUnits(symbols))
    exp = expand(lat, table, order, symbols.bos, max_arcs=cap)
    sizes = torch.full((lat.num_lattices,), cap, dtype=torch.int64)
    sizes[exp.kept] = exp.lattice.arc_splits.diff()
    over = f" ({len(exp.failed)} over)" if exp.failed else ""
    return f"{int(sizes.sum())}/{int(sizes.max())}{over}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--beams", type=float, nargs="+", default=[3.0, 5.0, 8.0])
    p.add_argument("--acoustic-scales", type=float, nargs="+", default=[0.1, 0.05])
    p.add_argument("--lm-scale", type=float, default=1.0,
                   help="lm scale of the determinization (rescoring uses --first-pass-weight)")
    p.add_argument("--orders", type=int, nargs="+", default=[4, 8])
    p.add_argument("--cap", type=int, default=2_000_000)
    args = p.parse_args()
    torch.set_num_threads(1)
    header = ["lattices", "ac.scale", "beam", "arcs", "pruned", "determinized", "det.ms"]
    header += [f"K={k} {w}" for k in args.orders for w in ("pruned", "determinized")]
    print(" | ".join(header))
    for ark, words in FIXTURES:
        symbols = Vocab.load(ROOT / words)
        lat = Lattice.cat([b for b, _ in read_lattice_batches(f"ark:{ROOT / ark}", "kaldi",
                                                              symbols)])
        for scale in args.acoustic_scales:
            for beam in args.beams:
                pruned, _ = prune_beam(lat, beam, Weights(scale))
                tic = time.perf_counter()
                det, _ = determinize(pruned, Weights(scale, args.lm_scale))
                ms = 1000 * (time.perf_counter() - tic)
                row = [ark, scale, beam, lat.num_arcs, pruned.num_arcs, det.num_arcs, f"{ms:.0f}"]
                row += [expanded_arcs(x, symbols, k, args.cap)
                        for k in args.orders for x in (pruned, det)]
                print(" | ".join(map(str, row)), flush=True)


if __name__ == "__main__":
    main()
