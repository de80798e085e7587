"""Where rescoring time goes: cProfile of ``LatticeRescorer.rescore`` on real lattices.

Usage (in a recipe folder, e.g. egs/ptb/s5):
    python3 ../../../bench/profile_rescore.py exp/ptb-lstm256-afp8/best.pt [--num 100] [--order 8]

Reads the first ``--num`` lattices of ``--lattice`` (default ``scp:data/test/lat.scp``) and
rescores them by fixed-point in batches of 32 on 1 thread, with the recipe's pruning
(``--beam 10 --prune-order 2 --prune-beam 5``, acoustic scale 0.1); prints the total and the
cumulative time of the main steps (output layer, trie states, expansion, determinization).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

import torch

from lmrescore.formats import read_lattices
from lmrescore.lattice.lattice import Lattice
from lmrescore.lattice.weights import Weights
from lmrescore.lm.checkpoint import load_model
from lmrescore.lm.units import units_from_checkpoint
from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
from lmrescore.vocab import Vocab

STEPS = {"token_log_probs": "output layer", "history_states": "trie states (cells)",
         "expand": "expansion", "determinize": "determinization", "_coarse_prune": "coarse pass"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--lattice", default="scp:data/test/lat.scp")
    p.add_argument("--words", default="data/test/words.txt")
    p.add_argument("--num", type=int, default=100)
    p.add_argument("--order", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(1)
    symbols = Vocab.load(args.words)
    model, _, _, payload = load_model(args.model, "cpu")
    lats = [lat for _, lat in read_lattices(args.lattice, "kaldi", symbols)][:args.num]
    options = RescoreOptions(order=args.order, weights=Weights(0.1), beam=10, prune_order=2,
                             prune_beam=5)
    rescorer = LatticeRescorer(model, units_from_checkpoint(payload), symbols, options)
    profile = cProfile.Profile()
    with torch.no_grad():
        profile.enable()
        for i in range(0, len(lats), 32):
            rescorer.rescore(Lattice.cat(lats[i:i + 32]))
        profile.disable()
    stats = pstats.Stats(profile).stats
    cumulative: dict[str, float] = {}
    for (_, _, name), (_, _, _, cum, _) in stats.items():
        if name in STEPS:
            cumulative[name] = cumulative.get(name, 0.0) + cum
    total = sum(tt for _, _, tt, _, _ in stats.values())
    print(f"# {args.model}: {len(lats)} lattices, fixed-point K={args.order}, 1 thread")
    print(f"total {total:.2f} s")
    for name, label in STEPS.items():
        print(f"{label:<22} {cumulative.get(name, 0.0):6.2f} s  ({name})")


if __name__ == "__main__":
    main()
