"""lmrescore info: lattice statistics, 1-best and oracle WER.

Example:
    lmrescore info ark:lat.ark --words words.txt --ref data/test/text --acoustic-scale 0.1 \\
        --word-ins-penalty 0.5 --one-best hyp.txt
    lmrescore info ark:lat.ark --words words.txt --ref data/test/text --json   # for scripts
"""

from __future__ import annotations

import argparse

from lmrescore.cli.options import HelpFormatter, add_reading_args, add_weight_args, weights
from lmrescore.formats.outputs import check_output


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help=__doc__.split(": ", 1)[1].split("\n")[0],
                       description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("lattices", help="Kaldi rspecifier, SLF directory / list / scp, or k2 .pt file")
    add_reading_args(p)
    add_weight_args(p, "weight of the lattices' LM scores")
    p.add_argument("--ref", help="reference text: 'utt_id w1 w2 ...' per line (needs --words)")
    p.add_argument("--batch-size", type=int, default=100, help="lattices per batch")
    p.add_argument("--one-best", help="write the 1-best 'utt_id w1 w2 ...' lines here ('-': stdout)")
    p.add_argument("--json", action="store_true",
                   help="print the statistics as one JSON object (with 'failed' and the weights)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import sys
    from dataclasses import asdict

    from lmrescore.atomic import atomic_write_text
    from lmrescore.errors import InputError
    from lmrescore.formats import ReadStats, read_lattice_batches, skip_bad_batches
    from lmrescore.rescoring.metrics import read_text, reference_ids, summarize_lattices
    from lmrescore.vocab import Vocab

    check_output(args.one_best, "--one-best")
    symbols = Vocab.load(args.words) if args.words else None
    if args.ref and symbols is None:
        raise InputError("--ref needs --words")
    refs = None
    if args.ref:
        refs, oov = reference_ids(read_text(args.ref), symbols)
        if oov:
            logging.getLogger(__name__).warning(
                "%d reference words of %s are not in %s: each is an error (as in Kaldi's "
                "compute-wer)", oov, args.ref, args.words)
    w = weights(args)
    stats = ReadStats()
    items = read_lattice_batches(args.lattices, args.format, symbols, args.batch_size,
                                 "unk" if args.map_oov_to_unk else "error")
    s = summarize_lattices(skip_bad_batches(items, stats), refs, w)
    stats.failed += len(s.failures)
    for f in s.failures:
        logging.getLogger(__name__).warning("skipping %s: %s", f.utt_id, f.message)
    # statistics go to stderr when the 1-best goes to stdout: stdout holds requested output only
    out = sys.stderr if args.one_best == "-" else sys.stdout
    if args.json:
        print(json.dumps({**s.to_dict(), "failed": stats.failed, **asdict(w)}), file=out)
    else:
        n = max(s.lattices, 1)
        print(f"{args.lattices}: {s.lattices} lattices read, {stats.failed} failed", file=out)
        print(f"states: {s.states} ({s.states / n:.1f} per lattice); arcs: {s.arcs} "
              f"({s.arcs / n:.1f} per lattice, max {s.max_arcs})", file=out)
        if refs is not None:
            print(f"scored {s.scored} lattices, {s.one_best_errors.ref_words} reference words "
                  f"(acoustic scale {w.acoustic_scale:g}, LM scale {w.lm_scale:g}, "
                  f"word insertion penalty {w.word_ins_penalty:g})", file=out)
            print(f"1-best WER {s.one_best_errors.wer:.2f}% ({s.one_best_errors.errors} errors); "
                  f"oracle WER {s.oracle_errors.wer:.2f}% ({s.oracle_errors.errors} errors)",
                  file=out)
    if args.one_best:
        decode = symbols.decode if symbols is not None else (lambda ids: [str(i) for i in ids])
        text = "".join(f"{u} {' '.join(decode(w))}".rstrip() + "\n" for u, w in s.one_best.items())
        atomic_write_text(args.one_best, text)
    logging.getLogger(__name__).info("Done %d lattices, failed for %d", s.lattices, stats.failed)
    return 1 if stats.too_many(args.max_failures) else 0
