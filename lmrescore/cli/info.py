"""lmrescore info: lattice statistics, 1-best and oracle WER.

Example:
    lmrescore info ark:lat.ark --words words.txt --ref data/test/text --acoustic-scale 0.1 \\
        --word-ins-penalty 0.5 --one-best hyp.txt
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field

from lmrescore.cli.convert import add_reading_args
from lmrescore.formats import ReadStats
from lmrescore.lattice.lattice import Lattice
from lmrescore.vocab import Vocab


@dataclass
class Summary:
    """Totals over the lattices read (see :func:`summarize`)."""

    lattices: int = 0
    states: int = 0
    arcs: int = 0
    max_arcs: int = 0
    one_best: dict[str, list[int]] = field(default_factory=dict)
    ref_words: int = 0
    one_best_errors: int = 0
    oracle_errors: int = 0
    scored: int = 0


def summarize(lattice_batches: Iterable[Lattice], refs: dict[str, list[int]] | None,
              acoustic_scale: float, lm_scale: float, word_ins_penalty: float = 0.0) -> Summary:
    """Sizes, 1-best paths and (with references) 1-best and oracle word errors.

    Args:
        lattice_batches: batches of lattices.
        refs: utt_id -> reference word ids, or None; lattices without a reference are not scored.
        acoustic_scale, lm_scale, word_ins_penalty: score weights for the 1-best path.
    """
    import kaldialign

    from lmrescore.lattice.oracle import oracle_path
    from lmrescore.lattice.shortest_path import best_path

    s = Summary()
    for lat in lattice_batches:
        counts = lat.arc_splits[1:] - lat.arc_splits[:-1]
        s.lattices += lat.num_lattices
        s.states += lat.num_states
        s.arcs += lat.num_arcs
        s.max_arcs = max(s.max_arcs, int(counts.max()))
        hyps = best_path(lat, acoustic_scale, lm_scale, word_ins_penalty).word_lists()
        s.one_best.update(zip(lat.utt_ids, hyps))
        if refs is None:
            continue
        have = [i for i, u in enumerate(lat.utt_ids) if u in refs]
        if not have:
            continue
        sub = lat.select(have)
        oracle = oracle_path(sub, [refs[u] for u in sub.utt_ids])
        s.oracle_errors += int(oracle.errors.sum())
        for u in sub.utt_ids:
            s.ref_words += len(refs[u])
            s.one_best_errors += kaldialign.edit_distance(refs[u], s.one_best[u])["total"]
        s.scored += len(have)
    return s


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help=__doc__.split(": ", 1)[1].split("\n")[0],
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lattices", help="Kaldi rspecifier, SLF directory / list / scp, or k2 .pt file")
    p.add_argument("--format", default="kaldi", choices=["kaldi", "slf", "k2"])
    p.add_argument("--ref", help="reference text: 'utt_id w1 w2 ...' per line (needs --words)")
    p.add_argument("--acoustic-scale", type=float, default=0.1)
    p.add_argument("--lm-scale", type=float, default=1.0)
    p.add_argument("--word-ins-penalty", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--one-best", help="write the 1-best 'utt_id w1 w2 ...' lines here ('-': stdout)")
    add_reading_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from lmrescore.atomic import atomic_write_text
    from lmrescore.errors import InputError
    from lmrescore.formats import read_lattice_batches, skip_bad_batches
    from lmrescore.rescoring.metrics import read_text

    symbols = Vocab.load(args.words) if args.words else None
    if args.ref and symbols is None:
        raise InputError("--ref needs --words")
    refs = ({u: symbols.encode(w) for u, w in read_text(args.ref).items()} if args.ref
            else None)
    stats = ReadStats()
    items = read_lattice_batches(args.lattices, args.format, symbols, args.batch_size,
                                 "unk" if args.map_oov_to_unk else "error")
    s = summarize(skip_bad_batches(items, stats), refs, args.acoustic_scale, args.lm_scale,
                  args.word_ins_penalty)
    n = max(s.lattices, 1)
    print(f"{args.lattices}: {s.lattices} lattices read, {stats.failed} failed")
    print(f"states: {s.states} ({s.states / n:.1f} per lattice); arcs: {s.arcs} "
          f"({s.arcs / n:.1f} per lattice, max {s.max_arcs})")
    if refs is not None:
        words = max(s.ref_words, 1)
        print(f"scored {s.scored} lattices, {s.ref_words} reference words "
              f"(acoustic scale {args.acoustic_scale}, LM scale {args.lm_scale}, "
              f"word insertion penalty {args.word_ins_penalty})")
        print(f"1-best WER {100 * s.one_best_errors / words:.2f}% ({s.one_best_errors} errors); "
              f"oracle WER {100 * s.oracle_errors / words:.2f}% ({s.oracle_errors} errors)")
    if args.one_best:
        decode = symbols.decode if symbols is not None else (lambda ids: [str(i) for i in ids])
        text = "".join(f"{u} {' '.join(decode(w))}".rstrip() + "\n" for u, w in s.one_best.items())
        if args.one_best == "-":
            sys.stdout.write(text)
        else:
            atomic_write_text(args.one_best, text)
    return 1 if stats.too_many(args.max_failures) else 0
