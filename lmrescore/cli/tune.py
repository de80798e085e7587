"""lmrescore tune: pick LMWT and word insertion penalty by WER on rescored dev lattices.

Kaldi's score.sh sweep: every lattice is decoded at each LM weight LMWT (= 1 / acoustic scale)
and word insertion penalty, and the pair with the lowest WER is printed (and written with
--json). Apply it to test lattices rescored the same way with
``lmrescore info ... --inv-acoustic-scale LMWT --word-ins-penalty WIP --one-best hyp``.
``--hyp-dir`` also writes every point's 1-best where Kaldi's scoring dir has it
(``penalty_WIP/LMWT.txt``; egs/utils/score_kaldi.sh).

Example:
    lmrescore score --model M --lattice ark:dev/lat.ark --words words.txt --acoustic-scale 0.1 \\
        --write-lattice ark:exp/dev_rescored.ark --one-best /dev/null
    lmrescore tune ark:exp/dev_rescored.ark --words words.txt --ref dev/text \\
        --inv-acoustic-scale 5:20 --word-ins-penalty 0,0.5,1 --json exp/tune.json
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from lmrescore.cli.options import HelpFormatter, add_reading_args
from lmrescore.formats.outputs import check_output
from lmrescore.errors import InputError


class Grid(list):
    """Grid values (floats) with ``names``: each value as the command line spelled it in a
    comma list (Kaldi's ``penalty_$wip``: ``0.0`` stays ``0.0``), else in ``%g``."""

    names: list[str]


def float_list(spec: str) -> Grid:
    """'5:20' (integers 5..20), '5:20:2.5' (a float step) or '0,0.5,1' as a list of floats."""
    try:
        if ":" in spec:
            start, stop, *step = (float(x) for x in spec.split(":"))
            if len(step) > 1 or (step and step[0] <= 0):
                raise ValueError
            inc = step[0] if step else 1.0
            grid = Grid(start + i * inc for i in range(int((stop - start) / inc + 1e-9) + 1))
            grid.names = [f"{x:g}" for x in grid]
        else:
            grid = Grid(float(x) for x in spec.split(","))
            grid.names = [x.strip() for x in spec.split(",")]
        return grid
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'A:B', 'A:B:STEP' or a comma list of numbers, got {spec!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help=__doc__.split(": ", 1)[1].split("\n")[0],
                       description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("lattices", help="rescored lattices: Kaldi rspecifier, SLF dir/scp, k2 .pt")
    p.add_argument("--ref", required=True, help="reference text 'utt_id w1 w2 ...'")
    g = p.add_argument_group("the grid of score weights (Kaldi's names)")
    g.add_argument("--inv-acoustic-scale", type=float_list, default="5:20",
                   help="LMWT values = inverse acoustic scales: A:B, A:B:STEP or A,B,...")
    g.add_argument("--word-ins-penalty", type=float_list, default="0,0.5,1",
                   help="word insertion penalties: A:B, A:B:STEP or A,B,...")
    g.add_argument("--lm-scale", type=float, default=1.0,
                   help="weight of the lattices' LM scores")
    p.add_argument("--batch-size", type=int, default=100, help="lattices per batch")
    p.add_argument("--json", help="write the grid and the best point here")
    p.add_argument("--hyp-dir", help="write each point's 1-best as Kaldi's scoring dir does: "
                   "HYP_DIR/penalty_WIP/LMWT.txt (utils/int2sym.pl's lines)")
    add_reading_args(p)
    p.set_defaults(func=run)


def hyp_writer(args: argparse.Namespace) -> Callable[[float, float, dict[str, list[str]]], None]:
    """The ``sweep`` callback that writes ``--hyp-dir``'s ``penalty_WIP/LMWT.txt`` files."""
    from pathlib import Path

    from lmrescore.atomic import atomic_write_text
    from lmrescore.rescoring.kaldi_scoring import hyp_text

    lmwt_names = dict(zip(args.inv_acoustic_scale, args.inv_acoustic_scale.names))
    wip_names = dict(zip(args.word_ins_penalty, args.word_ins_penalty.names))

    def write(lmwt: float, wip: float, hyps: dict[str, list[str]]) -> None:
        path = Path(args.hyp_dir) / f"penalty_{wip_names[wip]}" / f"{lmwt_names[lmwt]}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, hyp_text(hyps))
    return write


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    from lmrescore.atomic import atomic_write_text
    from lmrescore.formats import ReadStats, read_lattice_batches, skip_bad_batches
    from lmrescore.rescoring.metrics import read_text
    from lmrescore.rescoring.tune import best_point, decodable, sweep
    from lmrescore.vocab import Vocab

    check_output(args.json, "--json")
    if not args.words:
        raise InputError("--words is needed to compare hypotheses with the references")
    symbols = Vocab.load(args.words)
    stats = ReadStats()
    items = read_lattice_batches(args.lattices, args.format, symbols, args.batch_size,
                                 "unk" if args.map_oov_to_unk else "error")
    batches, failed = decodable(skip_bad_batches(items, stats))
    for f in failed:
        logging.getLogger(__name__).warning("skipping %s: %s", f.utt_id, f.message)
    stats.failed += len(failed)
    refs = read_text(args.ref)
    scored = sum(u in refs for lat in batches for u in lat.utt_ids)
    if scored == 0:
        raise InputError(f"none of the lattices of {args.lattices} has a reference in {args.ref}")
    points = sweep(batches, symbols, refs, args.inv_acoustic_scale, args.word_ins_penalty,
                   args.lm_scale, hyp_writer(args) if args.hyp_dir else None)
    for p in points:
        print(f"LMWT {p.lmwt:g} word-ins-penalty {p.word_ins_penalty:g}: {p.errors}")
    best = best_point(points)
    print(f"best: LMWT {best.lmwt:g} (acoustic scale {1 / best.lmwt:.4g}) word-ins-penalty "
          f"{best.word_ins_penalty:g}: {best.errors} over {scored} lattices")
    if args.json:
        record = {"lmwt": best.lmwt, "acoustic_scale": 1 / best.lmwt,
                  "word_ins_penalty": best.word_ins_penalty, "wer": best.errors.wer,
                  "errors": best.errors.errors, "ref_words": best.errors.ref_words,
                  "lattices": scored, "failed": stats.failed,
                  "grid": [{"lmwt": p.lmwt, "word_ins_penalty": p.word_ins_penalty,
                            "wer": p.errors.wer} for p in points]}
        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")
    logging.getLogger(__name__).info("Done %d lattices, failed for %d", scored, stats.failed)
    return 1 if stats.too_many(args.max_failures) else 0
