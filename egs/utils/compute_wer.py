#!/usr/bin/env python3
"""Corpus WER of hypotheses against references, printed the Kaldi compute-wer way.

Usage: utils/compute_wer.py --ref data/test/text --hyp exp/X/score_fp_k8/hyp [--json wer.json]
           [--per-utt per_utt]

Both files hold 'utt w1 w2 ...' lines. An utterance of the reference with no hypothesis line
counts as all deletions; hypotheses of utterances without a reference are an error.
``--per-utt`` writes each utterance's alignment as Kaldi's wer_details/per_utt does: centred
ref, hyp and op (C, S, I, D) rows, then ``#csid`` counts (lmrescore.rescoring.kaldi_scoring).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    from lmrescore.atomic import atomic_write_text
    from lmrescore.rescoring.kaldi_scoring import align, per_utt
    from lmrescore.rescoring.metrics import corpus_word_errors, read_text

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", type=Path, required=True)
    parser.add_argument("--hyp", type=Path, required=True)
    parser.add_argument("--json", type=Path, help="also write the counts here")
    parser.add_argument("--per-utt", type=Path, help="also write per-utterance alignments here")
    args = parser.parse_args()
    refs, hyps = read_text(args.ref), read_text(args.hyp)
    extra = sorted(set(hyps) - set(refs))
    if extra:
        print(f"{args.hyp}: {len(extra)} utterances have no reference in {args.ref}, "
              f"e.g. {extra[0]}", file=sys.stderr)
        return 1
    missing = sum(u not in hyps for u in refs)
    errors = corpus_word_errors(list(refs.values()), [hyps.get(u, []) for u in refs])
    print(f"{errors}; {len(refs)} utterances, {missing} without a hypothesis")
    if args.per_utt:
        aligned = align(refs, {u: hyps.get(u, []) for u in refs})
        atomic_write_text(args.per_utt, "".join(per_utt(u, p) for u, p in aligned))
    if args.json:
        record = {"wer": errors.wer, "errors": errors.errors, "ref_words": errors.ref_words,
                  "ins": errors.ins, "del": errors.dels, "sub": errors.subs,
                  "utterances": len(refs), "missing": missing, "detail": str(errors)}
        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
