"""lmrescore score: rescore lattices with an RNN LM; 1-best, n-best lists, lattices, WER.

Methods: fixed-point (default; exact at the model's order K), and two baselines on the same
lattices and model: ngram-approx (Kaldi's lattice-lmrescore-kaldi-rnnlm-pruned: states merged
by their last n-1 words, the RNN state of the best path into each) and nbest (the N best
first-pass paths scored as sentences, as in icefall).

Examples:
    lmrescore score --model exp/ptb-lstm256-afp8/best.pt --lattice 'ark:gunzip -c lat.1.gz|' \\
        --words data/lang/words.txt --acoustic-scale 0.1 --one-best hyp.txt --ref data/test/text
    lmrescore score --method ngram-approx --max-ngram-order 4 ...
    lmrescore score --method nbest --num-paths 100 --nbest-out nbest.txt ...
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="rescore lattices with an RNN LM (exact order-K, or a "
                                     "baseline: ngram-approx, nbest)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint (exp/<name>/best.pt)")
    p.add_argument("--lattice", required=True,
                   help="Kaldi rspecifier, SLF directory / list / scp, or k2 .pt file")
    p.add_argument("--format", default="kaldi", choices=["kaldi", "slf", "k2"],
                   help="input lattice format (default: kaldi)")
    p.add_argument("--words", help="the lattices' words.txt (needed for Kaldi and SLF)")
    p.add_argument("--method", default="fixed-point",
                   choices=["fixed-point", "ngram-approx", "nbest"],
                   help="fixed-point: exact order-K (default); ngram-approx: Kaldi's pruned "
                        "algorithm; nbest: score the N best first-pass paths")
    p.add_argument("--order", type=int,
                   help="history length K (default: the model's order); with nbest, the order "
                        "the paths are scored at (default: the model's, exact for BPTT)")
    p.add_argument("--num-paths", type=int, default=100,
                   help="N: paths per lattice for --method nbest and for --nbest-out")
    p.add_argument("--max-ngram-order", type=int, default=4,
                   help="n for --method ngram-approx: states merged by their last n-1 words")
    g = p.add_argument_group("score combination (Kaldi conventions)")
    g.add_argument("--lm-weight", type=float, default=1.0, help="weight of the RNN LM")
    g.add_argument("--first-pass-weight", type=float, default=0.0,
                   help="weight kept on the lattice's own LM/graph score (0: replace it)")
    scale = g.add_mutually_exclusive_group()
    scale.add_argument("--acoustic-scale", type=float, default=0.1)
    scale.add_argument("--inv-acoustic-scale", type=float,
                       help="1 / acoustic scale, e.g. the LMWT of Kaldi's scoring")
    g.add_argument("--word-ins-penalty", type=float, default=0.0)
    g.add_argument("--unk-penalty", type=float,
                   help="cost per word outside the LM vocabulary (default: ln of the number of "
                        "words of --words outside it: <unk>'s probability shared among them)")
    g = p.add_argument_group("size")
    g.add_argument("--beam", type=float, help="prune lattices to this beam before expanding")
    g.add_argument("--prune-order", type=int,
                   help="coarse pass: score at this order (e.g. 2), prune to --prune-beam on "
                        "those scores, then rescore the survivors (default: no coarse pass)")
    g.add_argument("--prune-beam", type=float, default=5.0,
                   help="beam of the coarse pass, on the combined scores (default 5)")
    g.add_argument("--no-determinize", dest="determinize", action="store_false",
                   help="rescore every path of the pruned lattice (default: determinize first, "
                        "keeping one path, the best, per word sequence)")
    g.add_argument("--max-arcs", type=int, default=200_000,
                   help="skip (and report) a lattice whose expansion passes this many arcs")
    g.add_argument("--batch-size", type=int, default=32, help="lattices per batch")
    g.add_argument("--device", default="cpu", help="cpu or cuda")
    g.add_argument("--num-threads", type=int,
                   help="CPU threads for torch (default: torch's; use 1 per job with --nj)")
    g = p.add_argument_group("outputs")
    g.add_argument("--one-best", default="-", help="1-best 'utt w1 w2 ...' lines ('-': stdout)")
    g.add_argument("--nbest-out",
                   help="n-best lists from the rescored lattices: 'utt-1 w1 w2 ...' lines, "
                        "best first, --num-paths per utterance")
    g.add_argument("--write-lattice", help="rescored lattices (wspecifier / SLF dir / k2 .pt)")
    g.add_argument("--out-format", choices=["kaldi", "slf", "k2"],
                   help="format of --write-lattice (default: as the input)")
    g.add_argument("--ref", help="reference text 'utt w1 w2 ...': print the WER")
    g.add_argument("--summary", help="write the run summary as JSON here")
    g.add_argument("--max-failures", type=float, default=0.0,
                   help="exit non-zero only if more than this share of lattices failed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lmrescore.atomic import atomic_write_text
    from lmrescore.lm.checkpoint import load_model
    from lmrescore.errors import InputError
    from lmrescore.formats import (ReadStats, read_lattice_batches, skip_bad_batches,
                                   write_lattices)
    from lmrescore.rescoring.metrics import corpus_word_errors, read_text
    from lmrescore.rescoring.pipeline import LatticeRescorer, RescoreOptions
    from lmrescore.lm.units import units_from_checkpoint
    from lmrescore.vocab import Vocab

    tic = time.time()
    model, _, _, payload = load_model(args.model, args.device)
    symbols = Vocab.load(args.words) if args.words else None
    if symbols is None:
        raise InputError("--words is needed to map lattice labels to words")
    acoustic_scale = (1.0 / args.inv_acoustic_scale if args.inv_acoustic_scale
                      else args.acoustic_scale)
    options = RescoreOptions(method=args.method, order=args.order, num_paths=args.num_paths,
                             max_ngram_order=args.max_ngram_order, lm_weight=args.lm_weight,
                             first_pass_weight=args.first_pass_weight,
                             acoustic_scale=acoustic_scale, word_ins_penalty=args.word_ins_penalty,
                             unk_penalty=args.unk_penalty, beam=args.beam,
                             prune_order=args.prune_order, prune_beam=args.prune_beam,
                             determinize=args.determinize, max_arcs=args.max_arcs)
    rescorer = LatticeRescorer(model, units_from_checkpoint(payload), symbols, options)

    stats = ReadStats()
    items = read_lattice_batches(args.lattice, args.format, symbols, args.batch_size, "unk")
    one_best: dict[str, list[str]] = {}
    nbest_lines: list[str] = []
    rescored = []
    totals = {"arcs_in": 0, "arcs_pruned": 0, "arcs_expanded": 0, "oov_words": 0, "words": 0}
    failed = 0
    with tqdm(desc="rescoring", unit="lat", mininterval=5) as bar:
        for lat in skip_bad_batches(items, stats):
            result = rescorer.rescore(lat)
            for utt, message in result.failed:
                log.warning("skipping %s: %s", utt, message)
            failed += len(result.failed)
            if result.lattice is not None:
                words = result.best.word_lists()
                one_best.update((u, symbols.decode(w))
                                for u, w in zip(result.lattice.utt_ids, words))
                totals["arcs_expanded"] += result.lattice.num_arcs
                if args.nbest_out:
                    for u, paths in zip(result.lattice.utt_ids,
                                        rescorer.nbest_lists(result, args.num_paths)):
                        nbest_lines += [f"{u}-{k} {' '.join(symbols.decode(w))}\n"
                                        for k, w in enumerate(paths, 1)]
                if args.write_lattice:
                    rescored.append(result.lattice)
            for key in ("arcs_in", "arcs_pruned", "oov_words", "words"):
                totals[key] += getattr(result, key)
            for key, value in result.counts.items():
                totals[key] = totals.get(key, 0) + value
            bar.update(lat.num_lattices)

    lines = "".join(f"{u} {' '.join(w)}\n" for u, w in one_best.items())
    if args.one_best == "-":
        sys.stdout.write(lines)
    else:
        atomic_write_text(args.one_best, lines)
    if args.nbest_out:
        atomic_write_text(args.nbest_out, "".join(nbest_lines))
    if args.write_lattice:
        write_lattices(args.write_lattice, rescored, args.out_format or args.format)

    total = stats.total
    failed += stats.failed
    summary = {"lattices": total, "rescored": len(one_best), "failed": failed,
               "method": args.method, "order": rescorer.order, **_method_fields(args),
               **totals,
               "oov_rate": totals["oov_words"] / max(1, totals["words"]),
               "unk_penalty": rescorer.unk_penalty,
               "seconds": time.time() - tic}
    if args.ref:
        refs = read_text(args.ref)
        scored = [u for u in one_best if u in refs]
        errors = corpus_word_errors([refs[u] for u in scored], [one_best[u] for u in scored])
        summary.update(wer=errors.wer, wer_detail=str(errors), wer_utterances=len(scored),
                       ref_utterances=len(refs))
    log.info("summary: %s", json.dumps(summary))
    if args.summary:
        atomic_write_text(args.summary, json.dumps(summary, indent=1) + "\n")
    if "wer" in summary:
        print(f"{summary['wer_detail']} over {len(scored)} of {len(refs)} reference utterances "
              f"({len(refs) - len(scored)} not rescored)", file=sys.stderr)
    return 1 if failed > args.max_failures * max(1, total) else 0


def _method_fields(args: argparse.Namespace) -> dict:
    """The summary fields that only one method has."""
    if args.method == "nbest":
        return {"num_paths": args.num_paths}
    if args.method == "ngram-approx":
        return {"max_ngram_order": args.max_ngram_order}
    return {}
