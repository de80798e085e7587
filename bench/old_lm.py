#!/usr/bin/env python3
"""Reading the old LM as a Kaldi G.fst against reading its ARPA: time, peak memory, same scores.

Usage: python3 bench/old_lm.py ARPA [--queries N]

Makes G.fst from ARPA with Kaldi's arpa2fst (kaldilm; ``--disambig-symbol=#0``, as
utils/format_lm.sh makes a lang dir's), then, each in a fresh process: ``NgramLM.from_file(ARPA)``
(the baseline) and ``load_old_lm(G.fst, words.txt)``, printing seconds, peak RSS and the ratio;
last, the largest difference of their log-probs over N random (history, word) queries.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load(kind: str, path: str, words: str) -> None:
    """Child: read one form, print seconds and peak RSS (MB)."""
    from lmrescore.lm.arpa import NgramLM
    from lmrescore.rescoring.old_lm import load_old_lm
    from lmrescore.vocab import Vocab

    tic = time.process_time()
    lm = NgramLM.from_file(path) if kind == "arpa" else load_old_lm(path, Vocab.load(words))
    seconds = time.process_time() - tic
    print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, lm.n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arpa")
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--load", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load(*args.load)
        return 0
    import kaldilm
    import numpy as np
    import torch

    from lmrescore.lm.arpa import NgramLM
    from lmrescore.rescoring.old_lm import load_old_lm
    from lmrescore.vocab import Vocab

    tmp = Path(tempfile.mkdtemp())
    words, gfst, text = tmp / "words.txt", tmp / "G.fst", tmp / "lm.arpa"
    with gzip.open(args.arpa) if args.arpa.endswith(".gz") else open(args.arpa, "rb") as f:
        text.write_bytes(f.read())  # arpa2fst reads plain text only
    tic = time.time()
    kaldilm.arpa2fst(str(text), str(gfst), disambig_symbol="#0",
                     write_symbol_table=str(words), max_arpa_warnings=0)
    print(f"arpa2fst: {time.time() - tic:.1f} s; G.fst {gfst.stat().st_size / 2**20:.1f} MiB")
    rows = {}
    for kind, path in (("arpa", args.arpa), ("gfst", str(gfst))):
        out = subprocess.run([sys.executable, __file__, args.arpa, "--load", kind, path,
                              str(words)], capture_output=True, text=True, check=True)
        rows[kind] = [float(x) for x in out.stdout.split()]
        print(f"{kind:5s} read: {rows[kind][0]:6.2f} cpu s, peak {rows[kind][1]:7.0f} MB, "
              f"order {int(rows[kind][2])}")
    print(f"G.fst / ARPA: {rows['gfst'][0] / rows['arpa'][0]:.2f}x cpu, "
          f"{rows['gfst'][1] / rows['arpa'][1]:.2f}x peak")

    arpa, g = NgramLM.from_file(args.arpa), load_old_lm(gfst, Vocab.load(words))
    rng = np.random.default_rng(0)
    common = [w for w in arpa.vocab.words if w in g.vocab.ids and w not in ("<eps>", "<s>")]
    pick = rng.integers(0, len(common), size=(args.queries, arpa.order + 1))
    ctx = [[common[i] for i in row] for row in pick]
    to = lambda lm, rows: torch.tensor([[lm.vocab.ids[w] for w in r] for r in rows])
    a = arpa.log10_probs(to(arpa, [r[:-1] for r in ctx]), to(arpa, [r[-1:] for r in ctx])[:, 0])
    b = g.log10_probs(to(g, [r[:-1] for r in ctx]), to(g, [r[-1:] for r in ctx])[:, 0])
    print(f"{args.queries} random queries: max |log10 p difference| "
          f"{float((a - b).abs().max()):.2e} (G.fst costs are float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
