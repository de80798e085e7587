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
    lmrescore score --lm exp/afp8/best.pt:0.5 --lm data/lang/G.fst:-0.5 --lm other.pt:0.5 ...
    torchrun --standalone --nproc-per-node 4 -m lmrescore.cli score ...   # 4 shares, 1 output

Under torchrun each process rescores every world-th batch and rank 0 merges the outputs in
input order: the same bytes as one process (lmrescore/rescoring/sharded.py). The job is one
library call (lmrescore/rescoring/job.py); this module parses, calls it and prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from typing import TYPE_CHECKING

from lmrescore.cli.options import HelpFormatter, add_reading_args, add_weight_args, weights
from lmrescore.errors import InputError
from lmrescore.formats import FORMATS
from lmrescore.rescoring.combination import MODEL_ROLE, OLD_LM_ROLE
from lmrescore.rescoring.methods import METHODS
from lmrescore.rescoring.rescorer import DEFAULT_BEAM, DEFAULT_PRUNE_ORDER
from lmrescore.rescoring.symbols import SKIP_WORDS

if TYPE_CHECKING:
    from lmrescore.rescoring.job import LmFile

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="rescore lattices with an LM (exact order-K, or a "
                                     "baseline: ngram-approx, nbest)",
                       description=__doc__, formatter_class=HelpFormatter)
    lm = p.add_mutually_exclusive_group(required=True)
    lm.add_argument("--model",
                    help="checkpoint of any model kind (exp/<name>/best.pt), or an n-gram: an "
                         "ARPA file (plain or .gz) or a Kaldi G.fst over --words' ids (the "
                         "file's bytes say which); its weight is --lm-scale")
    lm.add_argument("--lm", action="append", type=_lm_file, metavar="PATH:SCALE",
                    help="instead of --model (repeat it): LMs combined by scale on one "
                         "expansion, lm = first_pass_scale x graph + sum of SCALE x LM (the "
                         "scale after the last colon; negative takes an LM out); each LM's "
                         "log-probs are the column lm_<i> of the rescored lattices; the first "
                         "is scored by --method, every other one exactly on its expansion "
                         "(word-level, of order <= K, an n-gram's n-1); a checkpoint is charged "
                         "--unk-penalty as --model, an n-gram scores a word outside it as its "
                         "<unk> as --old-lm")
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
                   help="with --model: the old LM in the graph score, taken out of it: an "
                        "ARPA file (plain or .gz) or a Kaldi G.fst over --words' ids, scored "
                        "exactly on the fixed-point expansion (--order >= its n-1). Without it "
                        "the graph score is kept whole: the old LM stays in beside the new one")
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
    from lmrescore.rescoring.job import JobOptions, rescore_job
    from lmrescore.rescoring.rescorer import RescoreOptions

    options = RescoreOptions(method=args.method, weights=weights(args),
                             first_pass_scale=args.first_pass_scale,
                             old_lm_scale=args.old_lm_scale, unk_penalty=args.unk_penalty,
                             oov_symbol=args.oov_symbol,
                             skip_words=_patterns(args.skip_words), order=args.order,
                             num_paths=args.num_paths, max_ngram_order=args.max_ngram_order,
                             beam=None if math.isinf(args.beam) else args.beam,
                             prune_order=args.prune_order or None,
                             prune_beam=args.prune_beam, determinize=args.determinize,
                             max_arcs=args.max_arcs)
    done = rescore_job(JobOptions(
        _lm_files(args, options.old_lm_weight), args.lattice, args.words, options,
        format=args.format, batch_size=args.batch_size, device=args.device,
        one_best=args.one_best, nbest_out=args.nbest_out, write_lattice=args.write_lattice,
        out_format=args.out_format, ref=args.ref, summary=args.summary,
        max_failures=args.max_failures, shard_timeout=args.shard_timeout))
    if done.run is not None:  # one process, or rank 0: the job's totals
        s = done.summary
        if "wer" in s:
            print(f"{s['wer_detail']} over {s['wer_utterances']} of {s['ref_utterances']} "
                  f"reference utterances ({s['ref_utterances'] - s['wer_utterances']} not "
                  f"rescored)", file=sys.stderr)
        log.info("summary: %s", json.dumps(s))
        log.info("Done %d lattices, failed for %d", len(done.run.one_best), len(done.run.failed))
    return done.exit_status


def _lm_files(args: argparse.Namespace, old_lm_scale: float) -> list[LmFile]:
    """The LMs: ``--lm`` in order (``lm_0``, ``lm_1``...), or ``--model`` at ``--lm-scale``
    (column "rnnlm", charged for OOV words) and ``--old-lm`` at ``old_lm_scale`` ("old_lm",
    not charged)."""
    from lmrescore.rescoring.job import LmFile

    if args.lm:
        if args.old_lm or args.old_lm_scale is not None or args.lm_scale != 1.0:
            raise InputError("--lm gives each LM its scale: give the old LM as --lm G:SCALE, "
                             "not --old-lm, --old-lm-scale or --lm-scale")
        return args.lm
    lms = [LmFile(args.model, args.lm_scale, **MODEL_ROLE)]
    if args.old_lm:
        lms.append(LmFile(args.old_lm, old_lm_scale, **OLD_LM_ROLE))
    return lms


def _lm_file(spec: str) -> LmFile:
    """``--lm PATH:SCALE`` (the scale after the last colon)."""
    from lmrescore.rescoring.job import LmFile

    path, _, scale = spec.rpartition(":")
    try:
        weight = float(scale)
    except ValueError:
        weight = math.nan
    if not path or not math.isfinite(weight):
        raise argparse.ArgumentTypeError(f"{spec!r} is not PATH:SCALE (a finite scale)")
    return LmFile(path, weight, source=f"--lm {spec}")


def _patterns(spec: str) -> tuple[str, ...]:
    """The ``--skip-words`` comma list as patterns."""
    return tuple(w for w in spec.split(",") if w)

