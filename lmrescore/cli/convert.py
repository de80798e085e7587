"""lmrescore convert: lattices from one format to another (kaldi, slf, k2).

Examples:
    lmrescore convert "ark:gunzip -c lat.1.gz|" slf_dir --in-format kaldi --out-format slf \\
        --words data/lang/words.txt
    lmrescore convert slf_dir ark,t:- --in-format slf --out-format kaldi --words words.txt
    lmrescore convert ark:lat.ark lats.pt --in-format kaldi --out-format k2
"""

from __future__ import annotations

import argparse
import logging

from lmrescore.cli.options import HelpFormatter, add_reading_args
from lmrescore.formats.outputs import check_output
from lmrescore.formats import FORMATS

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help=__doc__.split(": ", 1)[1].split("\n")[0],
                       description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("input", help="Kaldi rspecifier, SLF directory / list / scp, or k2 .pt file")
    p.add_argument("output", help="Kaldi wspecifier, SLF output directory, or k2 .pt file")
    p.add_argument("--out-format", required=True, choices=FORMATS, help="output lattice format")
    p.add_argument("--kaldi-type", choices=["compact", "lattice"], default="compact",
                   help="Kaldi output: CompactLattice (compact) or Lattice (an arc holding several "
                        "transition ids becomes a chain of arcs, as Kaldi's ConvertLattice makes)")
    add_reading_args(p, "--in-format")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmrescore.formats import ReadStats, read_lattice_batches, skip_bad_batches, write_lattices
    from lmrescore.vocab import Vocab

    check_output(args.output, "output", args.out_format)
    symbols = Vocab.load(args.words) if args.words else None
    stats = ReadStats()
    items = read_lattice_batches(args.input, args.in_format, symbols,
                                 oov="unk" if args.map_oov_to_unk else "error")
    written, write_failed = write_lattices(args.output, skip_bad_batches(items, stats),
                                           args.out_format, args.kaldi_type == "compact")
    stats.failed += len(write_failed)
    log.info("Done %d lattices, failed for %d", written, stats.failed)
    return 1 if stats.too_many(args.max_failures) else 0
