#!/usr/bin/env python3
"""The WER files of a Kaldi scoring dir, in one process: what steps/score_kaldi.sh gets from
compute-wer, utils/best_wer.sh and utils/scoring/wer_*_details.pl.

Usage: utils/score_kaldi_dir.py --lmwt 7,8,...,17 --wip 0.0,0.5,1.0 [--utt2spk data/utt2spk]
           [--stage 0] <decode-dir>

Reads <decode-dir>/scoring_kaldi/test_filt.txt (the references) and
scoring_kaldi/penalty_WIP/LMWT.txt (the hypotheses, LMWT and WIP spelled as given). Stage 0
writes <decode-dir>/wer_LMWT_WIP (compute-wer --mode=present); stage 1 picks the lowest into
scoring_kaldi/best_wer and writes scoring_kaldi/wer_details/{lmwt,wip,per_utt,per_spk,ops} for
it (without --utt2spk or that file, every utterance is its own speaker).
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    from lmrescore.atomic import atomic_write_text
    from lmrescore.rescoring import kaldi_scoring as ks
    from lmrescore.rescoring.metrics import read_text

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmwt", required=True, help="the LM weights, a comma list")
    parser.add_argument("--wip", required=True, help="the word insertion penalties, a comma list")
    parser.add_argument("--utt2spk", help="the data dir's utt2spk (for per_spk)")
    parser.add_argument("--stage", type=int, default=0)
    parser.add_argument("dir", help="the decode dir")
    args = parser.parse_args()
    out = f"{args.dir}/scoring_kaldi"
    refs = read_text(f"{out}/test_filt.txt")
    grid = [(lmwt, wip) for wip in args.wip.split(",") for lmwt in args.lmwt.split(",")]

    if args.stage <= 0:
        for lmwt, wip in grid:
            _, report = ks.compute_wer_report(refs, read_text(f"{out}/penalty_{wip}/{lmwt}.txt"))
            atomic_write_text(f"{args.dir}/wer_{lmwt}_{wip}", report)
    if args.stage <= 1:
        names = [f"{args.dir}/wer_{lmwt}_{wip}" for lmwt, wip in grid]
        reports = []
        for name in names:
            with open(name, encoding="utf-8") as f:
                reports.append((name, f.read()))
        best = ks.best_wer_line(reports)
        atomic_write_text(f"{out}/best_wer", best)
        *_, lmwt, wip = best.split()[-1].split("_")
        details = f"{out}/wer_details"
        os.makedirs(details, exist_ok=True)
        atomic_write_text(f"{details}/lmwt", lmwt + "\n")
        atomic_write_text(f"{details}/wip", wip + "\n")
        aligned = ks.align(refs, read_text(f"{out}/penalty_{wip}/{lmwt}.txt"))
        atomic_write_text(f"{details}/per_utt", "".join(ks.per_utt(u, p) for u, p in aligned))
        utt2spk = (ks.read_utt2spk(args.utt2spk)
                   if args.utt2spk and os.path.exists(args.utt2spk) else {u: u for u in refs})
        atomic_write_text(f"{details}/per_spk", ks.per_spk(aligned, utt2spk))
        atomic_write_text(f"{details}/ops", ks.ops(aligned))
    return 0


if __name__ == "__main__":
    sys.exit(main())
