#!/usr/bin/env python3
"""Lattices that carry an LM score, as a decoder's do: an n-gram's log-probs put into the graph
score of lattices that have none (PocketSphinx's SLF lattices carry acoustic scores only).

Usage: local/add_lm_score.py --arpa data/lang/first_pass.arpa.gz --lattice scp:data/test/lat.scp \\
           --words data/test/words.txt --out ark,scp:data/test_lm/lat.ark,data/test_lm/lat.scp

Each lattice is pruned to ``--beam`` on its acoustic scores (``--acoustic-scale``), determinized
and expanded to the n-gram's histories (n-1 words: exact), each arc's graph score becoming the
n-gram's log-prob of its word (a word outside the n-gram is its ``<unk>``, at no extra cost).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator

import torch

from lmrescore.formats import read_lattice_batches, write_lattices
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lm.arpa import NgramLM
from lmrescore.lm.units import WordUnits
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.vocab import Vocab


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arpa", required=True)
    parser.add_argument("--lattice", required=True, help="Kaldi rspecifier")
    parser.add_argument("--words", required=True)
    parser.add_argument("--out", required=True, help="Kaldi wspecifier")
    parser.add_argument("--beam", type=float, default=12.0)
    parser.add_argument("--acoustic-scale", type=float, default=0.1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(1)
    lm, symbols = NgramLM.from_file(args.arpa), Vocab.load(args.words)
    options = RescoreOptions(weights=Weights(args.acoustic_scale), order=lm.order,
                             first_pass_scale=0.0, unk_penalty=0.0, beam=args.beam)
    rescorer = LatticeRescorer(lm, WordUnits(lm.vocab), symbols, options)
    failed = 0

    def scored() -> Iterator[Lattice]:
        nonlocal failed
        for lat, errors in read_lattice_batches(args.lattice, "kaldi", symbols, 32):
            failed += len(errors)
            if lat is None:
                continue
            with torch.no_grad():
                result = rescorer.rescore(lat)
            failed += len(result.failed)
            if result.lattice is not None:
                yield result.lattice

    written, write_failed = write_lattices(args.out, scored(), "kaldi")
    logging.info("Done %d lattices, failed for %d", written, failed + len(write_failed))
    return 1 if failed or write_failed else 0


if __name__ == "__main__":
    sys.exit(main())
