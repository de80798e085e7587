"""lmrescore score: rescore lattices with an LM; 1-best, n-best lists, lattices, WER.

Methods: fixed-point (default; exact at the model's order K), and two baselines on the same
lattices and model: ngram-approx (Kaldi's lattice-lmrescore-kaldi-rnnlm-pruned: states merged
by their last n-1 words, the RNN state of the best path into each) and nbest (the N best
first-pass paths scored as sentences, as in icefall).

Examples:
    lmrescore score --model exp/ptb-lstm256-afp8/best.pt --lattice 'ark:gunzip -c lat.1.gz|' \\
        --words data/lang/words.txt --acoustic-scale 0.1 --one-best hyp.txt --ref data/test/text
    lmrescore score --method ngram-approx --max-ngram-order 4 ...
    lmrescore score --method nbest --num-paths 100 --nbest-out nbest.txt ...
    torchrun --standalone --nproc-per-node 4 -m lmrescore.cli score ...   # 4 shares, 1 output

Under torchrun each process rescores every world-th batch and rank 0 merges the outputs in
input order: the same bytes as one process (lmrescore/rescoring/sharded.py).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import deque
from collections.abc import Iterator
from datetime import timedelta
import logging
import sys
import time
from typing import TYPE_CHECKING

from lmrescore.cli.options import (HelpFormatter, add_reading_args, add_weight_args, check_output,
                                   weights)
from lmrescore.formats import FORMATS
from lmrescore.rescoring.methods import METHODS
from lmrescore.rescoring.rescorer import DEFAULT_BEAM, DEFAULT_PRUNE_ORDER
from lmrescore.rescoring.symbols import SKIP_WORDS

if TYPE_CHECKING:
    from lmrescore.distributed import Dist

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="rescore lattices with an LM (exact order-K, or a "
                                     "baseline: ngram-approx, nbest)",
                       description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--model", required=True,
                   help="checkpoint of any model kind (exp/<name>/best.pt), or an n-gram: an "
                        "ARPA file (plain or .gz) or a Kaldi G.fst over --words' ids (the "
                        "file's bytes say which), or hf:DIR, a local Hugging Face causal LM "
                        "folder (needs --order)")
    p.add_argument("--lattice", required=True,
                   help="Kaldi rspecifier, SLF directory / list / scp, or k2 .pt file")
    add_reading_args(p, oov_option=False)  # a word outside words.txt is the LM's <unk>
    p.add_argument("--method", default="fixed-point", choices=METHODS,
                   help="fixed-point: exact order-K; ngram-approx: Kaldi's pruned algorithm; "
                        "nbest: score the N best first-pass paths")
    p.add_argument("--order", type=int,
                   help="history length K (default: the model's order; with nbest, the order "
                        "the paths are scored at, the model's own: exact for BPTT)")
    p.add_argument("--num-paths", type=int, default=100,
                   help="N: paths per lattice for --method nbest and for --nbest-out")
    p.add_argument("--max-ngram-order", type=int, default=4,
                   help="n for --method ngram-approx: states merged by their last n-1 words")
    add_weight_args(p, "weight w of the new LM's log-probabilities (the weight of Kaldi's "
                       "lmrescore scripts)")
    g = p.add_argument_group(
        "score combination (Kaldi's: graph score - w x old LM + w x new LM, w = --lm-scale)")
    g.add_argument("--first-pass-scale", type=float, default=1.0,
                   help="weight kept on the lattice's graph score (HCLG: the old LM plus "
                        "transition, pronunciation and silence costs); 1 keeps it whole as "
                        "Kaldi does, 0 replaces it (for lattices that carry only an LM score)")
    g.add_argument("--old-lm",
                   help="the old LM in the graph score, taken out of it: an ARPA file (plain "
                        "or .gz) or a Kaldi G.fst over --words' ids, scored exactly on the "
                        "fixed-point expansion (--order >= its n-1). Without it the graph "
                        "score is kept whole: the old LM stays in beside the new one")
    g.add_argument("--old-lm-scale", type=float,
                   help="weight of the old LM's log-probs (default: -w, which takes it out as "
                        "Kaldi's lmrescore does; positive: interpolate it)")
    g.add_argument("--oov-symbol",
                   help="the lattices' unknown word: the LM's <unk>, not charged --unk-penalty "
                        "(default: whichever of <unk>, <UNK> words.txt has)")
    g.add_argument("--skip-words",
                   default=",".join(SKIP_WORDS), metavar="PATTERNS",
                   help="comma list of fnmatch patterns of words the LM does not score and does "
                        "not charge as OOV (silence, noise, #0)")
    g.add_argument("--unk-penalty", type=float,
                   help="cost per word outside the LM vocabulary (default: ln of the number of "
                        "words of --words outside it: <unk>'s probability shared among them)")
    g = p.add_argument_group("size (as set, the PTB recipe's real lattices all stay under "
                             "--max-arcs: bench/RESULTS.md)")
    g.add_argument("--beam", type=float, default=DEFAULT_BEAM,
                   help="prune lattices to this beam on their own scores before expanding "
                        "(inf: keep every path)")
    g.add_argument("--prune-order", type=int, default=DEFAULT_PRUNE_ORDER,
                   help="coarse pass: score at this order, prune on those scores to the "
                        "coarse beam, then rescore the survivors (0: no coarse pass)")
    g.add_argument("--prune-beam", type=float, default=5.0,
                   help="beam of the coarse pass, on the combined scores")
    g.add_argument("--no-determinize", dest="determinize", action="store_false",
                   help="rescore every path of the pruned lattice (else: determinize first, "
                        "keeping one path, the best, per word sequence)")
    g.add_argument("--max-arcs", type=int, default=200_000,
                   help="skip (and report) a lattice whose expansion passes this many arcs")
    g.add_argument("--batch-size", type=int, default=32, help="lattices per batch")
    g.add_argument("--device", default="cpu", help="cpu or cuda")
    g.add_argument("--num-threads", type=int,
                   help="CPU threads for torch (default: torch's; 1 per job when several jobs "
                        "share the cores, as egs/utils/lmrescore_decode_dir.sh runs them)")
    g.add_argument("--shard-timeout", type=float, default=6 * 3600, metavar="SECONDS",
                   help="under torchrun: how long a process that has done its share waits for "
                        "the others before the job fails (6 hours)")
    g = p.add_argument_group("outputs")
    g.add_argument("--one-best", default="-", help="1-best 'utt w1 w2 ...' lines ('-': stdout)")
    g.add_argument("--nbest-out",
                   help="n-best lists from the rescored lattices: 'utt-1 w1 w2 ...' lines, "
                        "best first, --num-paths per utterance")
    g.add_argument("--write-lattice", help="rescored lattices (wspecifier / SLF dir / k2 .pt)")
    g.add_argument("--out-format", choices=FORMATS,
                   help="format of --write-lattice (default: the input's)")
    g.add_argument("--ref", help="reference text 'utt w1 w2 ...': print the WER")
    g.add_argument("--summary", help="write the run summary as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lmrescore.distributed import Dist, world_size
    from lmrescore.errors import InputError

    if world_size() == 1:
        return _score(args, None)
    if _is_std(args.lattice):
        raise InputError("under torchrun every process reads the whole input: --lattice "
                         "cannot be stdin")
    job = Dist.from_env("cpu", timedelta(seconds=args.shard_timeout))
    if not job.is_main:  # one log, one progress bar and one "Done" line for the job
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return _score(args, job)
    finally:
        job.close()


def _score(args: argparse.Namespace, job: Dist | None) -> int:
    """Rescore in one process (``job`` None) or this process's share of a torchrun job."""
    from lmrescore.atomic import atomic_write_text
    from lmrescore.errors import InputError
    from lmrescore.formats import input_format, read_lattice_batches, write_lattices
    from lmrescore.formats.parts import write_part
    from lmrescore.lattice.lattice import Lattice
    from lmrescore.rescoring.lm_file import load_lm
    from lmrescore.rescoring.metrics import read_text
    from lmrescore.rescoring.old_lm import load_old_lm
    from lmrescore.rescoring.pipeline import RunSummary, rescored_batches
    from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions
    from lmrescore.rescoring.sharded import Share, merge_shares
    from lmrescore.vocab import Vocab

    tic = time.time()
    for option, path in [("--one-best", args.one_best), ("--nbest-out", args.nbest_out),
                         ("--summary", args.summary)]:
        check_output(path, option)
    out_format = args.out_format or input_format(args.lattice, args.format)
    check_output(args.write_lattice, "--write-lattice", out_format)
    if args.one_best == "-" and _is_std(args.write_lattice):
        raise InputError("--write-lattice and --one-best both write to stdout: give "
                         "--one-best a file (or /dev/null)")
    if not args.words:
        raise InputError("--words is needed to map lattice labels to words")
    device = args.device if job is None else job.device(args.device)
    symbols = Vocab.load(args.words)
    model, units = load_lm(args.model, symbols, device, args.order)
    options = RescoreOptions(method=args.method, weights=weights(args),
                             first_pass_scale=args.first_pass_scale,
                             old_lm_scale=args.old_lm_scale,
                             unk_penalty=args.unk_penalty, oov_symbol=args.oov_symbol,
                             skip_words=_patterns(args.skip_words), order=args.order,
                             num_paths=args.num_paths, max_ngram_order=args.max_ngram_order,
                             beam=None if math.isinf(args.beam) else args.beam,
                             prune_order=args.prune_order or None,
                             prune_beam=args.prune_beam, determinize=args.determinize,
                             max_arcs=args.max_arcs,
                             keep_attributes=args.write_lattice is not None)
    old_lm = load_old_lm(args.old_lm, symbols) if args.old_lm else None
    rescorer = LatticeRescorer(model, units, symbols, options, old_lm)
    batches = read_lattice_batches(args.lattice, args.format, symbols, args.batch_size, "unk")
    run = RunSummary()
    share = (0, 1) if job is None else (job.rank, job.world)
    done: list[tuple[int, list[str]]] = []  # (input index, utterances) of each rescored batch
    nbest: dict[str, str] = {}

    def rescored_lattices() -> Iterator[Lattice]:
        """Each rescored batch's lattices, its n-best lists kept on the way."""
        for i, result in rescored_batches(rescorer, batches, run, share[0] == 0, share):
            if result.lattice is None:
                continue
            done.append((i, result.lattice.utt_ids))
            if args.nbest_out:
                for u, paths in zip(result.lattice.utt_ids,
                                    rescorer.nbest_lists(result, args.num_paths)):
                    nbest[u] = "".join(f"{u}-{k} {' '.join(symbols.decode(w))}\n"
                                       for k, w in enumerate(paths, 1))
            yield result.lattice

    part = None
    if args.write_lattice and job is not None:  # this process's part, joined by rank 0
        part = write_part(args.write_lattice, out_format, rescored_lattices(), job.rank)
        run.failed += part.failed
    elif args.write_lattice:  # written batch by batch as they are rescored: memory stays flat
        _, write_failed = write_lattices(args.write_lattice, rescored_lattices(), out_format)
        run.failed += write_failed  # e.g. an utterance id that cannot be an SLF file name
    else:
        deque(rescored_lattices(), maxlen=0)
    if job is not None:
        merged = merge_shares(job, Share(run, done, nbest, part), args.write_lattice, out_format)
        if merged is None:  # not rank 0: its share is with rank 0, which writes and decides
            return job.broadcast(None)
        run, nbest = merged
    atomic_write_text(args.one_best, "".join(f"{u} {' '.join(w)}\n"
                                             for u, w in run.one_best.items()))
    if args.nbest_out:
        atomic_write_text(args.nbest_out, "".join(nbest.values()))

    summary = {"method": args.method, "order": rescorer.order,
               **{k: getattr(options, k) for k in rescorer.method.summary},
               "first_pass_scale": args.first_pass_scale,
               **({"old_lm": args.old_lm, "old_lm_scale": options.old_lm_weight}
                  if args.old_lm else {}),
               **run.to_dict(), "unk_penalty": rescorer.unk_penalty,
               "acoustic_scale": options.weights.acoustic_scale, "seconds": time.time() - tic,
               **({} if job is None else {"processes": job.world})}
    if args.ref:
        refs = read_text(args.ref)
        errors, scored = run.word_errors(refs)
        summary.update(wer=errors.wer, wer_detail=str(errors), wer_utterances=scored,
                       ref_utterances=len(refs))
        print(f"{errors} over {scored} of {len(refs)} reference utterances "
              f"({len(refs) - scored} not rescored)", file=sys.stderr)
    log.info("summary: %s", json.dumps(summary))
    if args.summary:
        atomic_write_text(args.summary, json.dumps(summary, indent=1) + "\n")
    log.info("Done %d lattices, failed for %d", len(run.one_best), len(run.failed))
    code = 1 if len(run.failed) > args.max_failures * max(1, run.lattices) else 0
    return code if job is None else job.broadcast(code)


def _patterns(spec: str) -> tuple[str, ...]:
    """The ``--skip-words`` comma list as patterns."""
    return tuple(w for w in spec.split(",") if w)


def _is_std(target: str | None) -> bool:
    """Whether a lattice output or input (Kaldi specifier, SLF dir, k2 file) is stdout / stdin."""
    return target is not None and (target == "-" or target.rpartition(":")[2] == "-")
