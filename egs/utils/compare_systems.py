#!/usr/bin/env python3
"""WERs of systems on the same utterances with 95% intervals, and which is better: a paired
bootstrap over utterances (Bisani & Ney 2004), printed as Kaldi's compute-wer-bootci prints it.

Usage: utils/compare_systems.py --ref data/dev/text --hyp exp/A/hyp --hyp exp/B/hyp \\
           [--names "A B"] [--replications 10000] [--seed 0]

Each file holds 'utt w1 w2 ...' lines; an utterance of the reference without a hypothesis
is all deletions. For each system: its compute-wer line, then ``SetI: %WER m 95% Conf Interval
[ lo, hi ]`` (the draws' mean +- 1.96 sd). For each pair I < J: ``Probability of SetJ improving
SetI`` (percent of draws with fewer errors), the interval of WER(J) - WER(I), p = 1 - that
probability, and the selection rule's verdict: SetJ (or SetI) is better only if it improves in
more than 95% of the draws (p < 0.05), else tie. Every system is resampled on the same draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    from lmrescore.rescoring.bootstrap import compare_systems
    from lmrescore.rescoring.metrics import corpus_word_errors, read_text

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("--hyp", type=Path, action="append", required=True,
                   help="a system's hypotheses (repeat: two or more to compare)")
    p.add_argument("--names", help="space-separated system names (default: the --hyp paths)")
    p.add_argument("--replications", type=int, default=10000, help="bootstrap draws B")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    names = args.names.split() if args.names else [str(h) for h in args.hyp]
    if len(names) != len(args.hyp):
        p.error(f"{len(names)} --names for {len(args.hyp)} --hyp files")
    refs = read_text(args.ref)
    hyps = [read_text(h) for h in args.hyp]
    for path, h in zip(args.hyp, hyps):
        extra = sorted(set(h) - set(refs))
        if extra:
            print(f"{path}: {len(extra)} utterances have no reference in {args.ref}, "
                  f"e.g. {extra[0]}", file=sys.stderr)
            return 1
    intervals, pairs = compare_systems(refs, hyps, args.replications, args.seed)
    print(f"# {len(refs)} utterances, {args.replications} draws, seed {args.seed}")
    for i, (name, h) in enumerate(zip(names, hyps), 1):
        errors = corpus_word_errors(list(refs.values()), [h.get(u, []) for u in refs])
        print(f"# Set{i} = {name}: {errors}")
    for i, interval in enumerate(intervals, 1):
        print(f"Set{i}: {interval}")
    for (i, j), c in pairs.items():
        a, b = f"Set{i + 1}", f"Set{j + 1}"
        verdict = {"B better": f"{b} better", "A better": f"{a} better"}.get(c.verdict, "tie")
        print(f"Probability of {b} improving {a}: {100 * c.p_improvement:.2f}")
        print(f"{b} - {a}: {c.difference}; p = {1 - c.p_improvement:.4f}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
