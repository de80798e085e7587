"""Lattice rescoring: fixed-point vs ngram-approx vs n-best, on the same lattices and model.

Usage:
    python3 bench/rescore.py [--model exp/ptb-lstm256-afp4/best.pt [OTHER.pt ...]] [--replicate 4]
        [--beam 8] [--num-paths 100 1000] [--threads 1] [--device cpu]

Each method runs in its own child process (``--worker``), so its peak memory is the child's
``ru_maxrss`` (from ``os.wait4``); a child that loads the model and lattices and stops gives the
floor that every method pays. Wall time covers rescoring only (prune, expand, score, best path)
over all batches, not loading; CPU seconds are printed beside it, since on a shared machine wall
time includes waiting for a core. Arcs/s counts input lattice arcs (before pruning) per wall
second. Ratios are against fixed-point from this run (with several ``--model``s: against the
first model's first method; every model runs every method on the same lattices). Copies made
by ``--replicate`` relabel the words by a random permutation, so copies do not share LM
histories; WER against ``--ref`` (default: the fixture references) is on the original copies,
those that every method rescored (a lattice past ``--max-arcs`` is skipped by one method and
not by another).

A second table counts each method's model work (the model's own output-layer counters, hooks on
the cells): rows through the output layer (a full softmax: one V-way softmax each, the bulk of
the CPU time; an adaptive one: head rows, one per distinct history, and tail rows, one per
(history, tail cluster) pair that some arc asks a token of that cluster for), the coarse pass's
distinct histories (``--prune-order``, the same for every method), cell steps, and
batched cell calls, which run one after another (fixed-point: K per layer and pass, down the
history trie; ngram-approx: one per topological level and token; n-best: one per sweep or
position, per block of sentences). A third table checks consistency: on each rescored
lattice, the LM score summed along its best path against the model's own log-probability of
that path's words, scored as one sentence at the model's order (its exact recurrence for a BPTT
model); 0 up to float rounding for an exact method.

Without ``--model`` the model is random: an LSTM of 256 units over the fixture words.txt, order
``--order`` (default 4); its WERs only say whether the methods agree, not how good an LM is.
``--vocab-size 10000`` pads its vocabulary with words that never occur in the lattices, to give
the output softmax a realistic (PTB) cost; ``--output adaptive`` gives it an adaptive softmax
(``--cutoffs``, default those of 2000, 10000, 50000 below the vocabulary size;
``--div-value``, default 4), tied to the embedding as the models/ configs are. The lattice words
take the first ids, unless ``--word-ranks TEXT``: then each sits at its frequency rank in TEXT
(as ``Vocab.build`` orders a trained model's words), and those TEXT lacks at random free ids
(rare words, mostly in the far tail clusters of a big vocabulary). ``--max-ngram-order`` defaults to order + 1, so
ngram-approx expands the same lattice as fixed-point (n - 1 = K history tokens) and the two
differ only in how they score it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", nargs="*", default=[],
                   help="checkpoint(s) (default: a random LSTM-256, see above)")
    p.add_argument("--lattice", default=f"ark:{FIXTURES / 'lats.ark'}",
                   help="Kaldi rspecifier (e.g. scp:egs/ptb/s5/data/test/lat.scp)")
    p.add_argument("--words", default=str(FIXTURES / "words.txt"))
    p.add_argument("--ref", default=str(FIXTURES / "text"), help="reference text ('' for none)")
    p.add_argument("--replicate", type=int, default=4, help="copies of each lattice")
    p.add_argument("--order", type=int, help="K for fixed-point (default: the model's, or 4)")
    p.add_argument("--vocab-size", type=int, default=0,
                   help="random model: pad the vocabulary to this size (0: words.txt only)")
    p.add_argument("--output", choices=["softmax", "adaptive"], default="softmax",
                   help="random model: output layer")
    p.add_argument("--cutoffs", type=int, nargs="+",
                   help="random adaptive model: cluster cutoffs (default: see above)")
    p.add_argument("--div-value", type=float, default=4.0,
                   help="random adaptive model: tail cluster i has dimension 256 / div**(i+1)")
    p.add_argument("--word-ranks", help="random model: a text whose word counts rank the ids")
    p.add_argument("--methods", nargs="+", default=["fixed-point", "ngram-approx", "nbest"],
                   choices=["fixed-point", "ngram-approx", "nbest"])
    p.add_argument("--max-ngram-order", type=int, help="n for ngram-approx (default: K + 1)")
    p.add_argument("--num-paths", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--beam", type=float, default=8.0, help="prune before rescoring")
    p.add_argument("--prune-order", type=int, help="coarse pass order (as lmrescore score)")
    p.add_argument("--prune-beam", type=float, default=5.0, help="coarse pass beam")
    p.add_argument("--unk-penalty", type=float, help="as lmrescore score")
    p.add_argument("--max-arcs", type=int, default=200_000,
                   help="as lmrescore score: a lattice expanding past this is skipped")
    p.add_argument("--acoustic-scale", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads per child")
    p.add_argument("--device", default="cpu")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def load(args: argparse.Namespace):
    """Model, units, symbols and the replicated lattices (as batches of one)."""
    import torch

    from lmrescore.lm.checkpoint import load_model
    from lmrescore.formats import read_lattices
    from lmrescore.lm.model import ModelConfig, RNNLM
    from lmrescore.lm.units import WordUnits, units_from_checkpoint
    from lmrescore.vocab import Vocab

    symbols = Vocab.load(args.words)
    if args.model:
        model, _, _, payload = load_model(args.model[0], args.device)
        units = units_from_checkpoint(payload)
    else:
        vocab = random_vocab(symbols, args.vocab_size, args.word_ranks)
        adaptive = args.output == "adaptive"
        cutoffs = args.cutoffs or [c for c in (2000, 10000, 50000) if c < len(vocab)]
        torch.manual_seed(0)
        model = RNNLM(ModelConfig(cell="lstm", vocab_size=len(vocab), hidden_dim=256,
                                  order=args.order or 4, output=args.output,
                                  cutoffs=cutoffs if adaptive else None,
                                  div_value=args.div_value)).to(args.device).eval()
        units = WordUnits(vocab)
    # copy r relabels the words by a permutation (copy 0: none), so that copies do not share
    # LM histories, as different utterances would not
    words = torch.tensor([i for i, w in enumerate(symbols.words)
                          if i > 0 and w[0] not in "<!#"])
    perms = [torch.arange(len(symbols))]
    for r in range(1, args.replicate):
        perm = torch.arange(len(symbols))
        perm[words] = words[torch.randperm(words.shape[0],
                                           generator=torch.Generator().manual_seed(r))]
        perms.append(perm)
    lattices = []
    for utt, lat in read_lattices(args.lattice, "kaldi", symbols):
        if isinstance(lat, Exception):
            raise lat
        for r, perm in enumerate(perms):
            copy = lat.select([0])
            copy.utt_ids = [f"{utt}/{r}"]
            copy.label = torch.where(copy.label > 0, perm[copy.label.clamp(min=0)], copy.label)
            lattices.append(copy)
    return model, units, symbols, lattices


def random_vocab(symbols, size: int, ranks: str | None):
    """The random model's vocabulary: the lattice words padded to ``size`` with words that never
    occur; with ``ranks`` (a text) each lattice word at its rank by count there, the others at
    random free ids (seed 0), else the lattice words first."""
    import torch

    from lmrescore.lm.data import read_sentences
    from lmrescore.vocab import SPECIALS, Vocab

    if not ranks:
        words = [w for w in symbols.words if w != "<eps>"]
        return Vocab.from_words(words + [f"<pad{i}>" for i in range(size - len(words) - 1)])
    words = [w for w in symbols.words if w not in SPECIALS]
    table: list[str | None] = [None] * max(size, len(words) + 4)
    table[:4] = SPECIALS
    rank = {w: i for i, w in enumerate(Vocab.build(read_sentences(ranks)).words)
            if i < len(table)}
    for w in words:
        if w in rank:
            table[rank[w]] = w
    rest = [w for w in words if w not in rank]
    free = [i for i, w in enumerate(table) if w is None]
    for w, j in zip(rest, torch.randperm(len(free), generator=torch.Generator().manual_seed(0))):
        table[free[j]] = w
    return Vocab(tuple(w or f"<pad{i}>" for i, w in enumerate(table)))


def count_work(model) -> dict[str, int]:
    """Count the model's work from now on, whatever the method: rows through the output layer
    (the model's ``work``: softmax rows, or the adaptive layer's head and tail rows), cell steps
    (rows through a cell call, per layer) and batched cell calls (one after another: the
    method's sequential depth; a Transformer: rows through each layer's step, and its steps
    times its layers). The counts are the model's ``work`` dict itself."""
    work = model.work
    work.clear()
    work.update(softmax_rows=0, head_rows=0, tail_rows=0, cell_steps=0, cell_calls=0)
    inside: list[bool] = []  # a cell's step_ may call its step: count the outer call only

    def counted(step):
        def call(state, xp):
            if not inside:
                work["cell_steps"] += state.numel() // state.shape[-1]
                work["cell_calls"] += 1
            inside.append(True)
            try:
                return step(state, xp)
            finally:
                inside.pop()
        return call

    if hasattr(model, "cells"):
        for cell in model.cells:
            cell.step, cell.step_ = counted(cell.step), counted(cell.step_)
    else:  # a kind without cells (the windowed Transformer): its steps, each through every layer
        layers, step = model.config.num_layers, model.step

        def stepped(state, tokens):
            work["cell_steps"] += tokens.numel() * layers
            work["cell_calls"] += layers
            return step(state, tokens)
        model.step = stepped
    return work


def worker(args: argparse.Namespace) -> dict:
    """Rescore all lattices with one method; print what was measured as JSON."""
    import torch

    from lmrescore.lattice.lattice import Lattice
    from lmrescore.lattice.weights import Weights
    from lmrescore.rescoring.pipeline import rescore_stream
    from lmrescore.rescoring.rescorer import LatticeRescorer, RescoreOptions

    torch.set_num_threads(args.threads)
    which, _, job = args.worker.partition("/")
    args.model = args.model[int(which):int(which) + 1]
    model, units, symbols, lattices = load(args)
    if job == "load":
        return {}
    method, _, paths = job.partition(":")
    order = args.order or model.order or 4
    options = RescoreOptions(method=method, order=order if method == "fixed-point" else None,
                             num_paths=int(paths or 1),
                             max_ngram_order=args.max_ngram_order or order + 1,
                             weights=Weights(args.acoustic_scale), beam=args.beam,
                             prune_order=args.prune_order, prune_beam=args.prune_beam,
                             unk_penalty=args.unk_penalty, max_arcs=args.max_arcs)
    rescorer = LatticeRescorer(model, units, symbols, options)
    batches = [(Lattice.cat(lattices[i: i + args.batch_size]), [])
               for i in range(0, len(lattices), args.batch_size)]
    along, sentences = [], []  # per rescored lattice: LM score along its best path, its tokens

    def keep_best_paths(result) -> None:
        if result.lattice is not None:
            along.append(best_path_sums(result))
            sentences.extend(token_ids(rescorer.tokens.table, w)
                             for w in result.best.word_lists())

    work = count_work(model)
    run = rescore_stream(rescorer, batches, keep_best_paths, progress=False)
    out = {"order": rescorer.order, "arcs_in": run.arcs_in, "arcs_pruned": run.arcs_pruned,
           "arcs_scored": run.arcs_expanded, "failed": len(run.failed),
           "coarse_rows": run.counts.get("coarse_histories", 0), "seconds": run.seconds,
           "cpu_seconds": run.cpu_seconds}
    hyps = run.one_best
    out.update(work)  # the model's work in rescoring; the check below is not counted
    errors = ((torch.cat(along) - own_log_probs(model, units, sentences)).abs() if sentences
              else torch.zeros(1, dtype=torch.float64))
    out.update(lm_error_mean=float(errors.mean()), lm_error_max=float(errors.max()),
               lm_differs=int((errors > 1e-3).sum()))
    out["hyps"] = {u[:-2]: h for u, h in hyps.items() if u.endswith("/0")}  # original copies
    return out


def best_path_sums(result) -> "torch.Tensor":
    """(L,) float64: the rescored lattice's LM log-probabilities summed along each best path."""
    import torch

    best, lat = result.best, result.lattice
    which = torch.repeat_interleave(torch.arange(lat.num_lattices), best.arc_splits.diff())
    return torch.zeros(lat.num_lattices, dtype=torch.float64).index_add_(
        0, which, lat.scores["rnnlm"][best.arcs].double())


def token_ids(table, words: list[int]) -> list[int]:
    """The LM tokens of a word sequence (lattice labels), by the rescorer's token table."""
    return [t for w in words for t in table.values[table.splits[w]: table.splits[w + 1]].tolist()]


def own_log_probs(model, units, sentences: list[list[int]]) -> "torch.Tensor":
    """(N,) float64: the model's log-probability of each sentence (with ``</s>``), scored as a
    whole at the model's own order (its exact recurrence for a BPTT model)."""
    import torch

    from lmrescore.rescoring.nbest import sentence_log_probs

    lengths = torch.tensor([len(s) for s in sentences])
    padded = torch.zeros(len(sentences), max(1, int(lengths.max())), dtype=torch.int64)
    for i, s in enumerate(sentences):
        padded[i, : len(s)] = torch.tensor(s, dtype=torch.int64)
    vocab = units.vocab
    return sentence_log_probs(model, padded, lengths, vocab.bos, vocab.eos,
                              model.order).double().sum(1)


def run_child(argv: list[str], job: str) -> dict:
    """Run one worker; its JSON result plus its peak resident memory in MiB."""
    cmd = [sys.executable, __file__, *argv, "--worker", job]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"worker {job} failed with exit code {proc.returncode}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result["maxrss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    return result


def ratio(a: float, b: float) -> float:
    """a / b, NaN when fixed-point did nothing (every lattice past --max-arcs)."""
    return a / b if b else float("nan")


def common_wers(ref: str, results: dict[str, dict]) -> tuple[dict[str, float], int]:
    """WER of each method over the original lattices that every method rescored (a lattice
    past --max-arcs fails in one method and not in another), and how many those are."""
    from lmrescore.rescoring.metrics import corpus_word_errors, read_text

    if not ref:
        return {}, 0
    refs = read_text(ref)
    keys = sorted(set(refs).intersection(*(r["hyps"] for r in results.values())))
    if not keys:
        return {}, 0
    return {job: corpus_word_errors([refs[u] for u in keys], [r["hyps"][u] for u in keys]).wer
            for job, r in results.items()}, len(keys)


def model_label(path: str) -> str:
    """exp/<name>/best.pt (or last.pt) -> <name>; models/<name>.pt -> <name>."""
    p = Path(path)
    return p.parent.name if p.stem in ("best", "last") else p.stem


def main() -> None:
    args = get_parser().parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    argv = sys.argv[1:]
    methods = [m for m in args.methods if m != "nbest"]
    methods += [f"nbest:{n}" for n in args.num_paths] if "nbest" in args.methods else []
    names = {f"{i}/{m}": m if len(args.model) < 2 else f"{model_label(path)}:{m}"
             for i, path in enumerate(args.model or [None]) for m in methods}  # job -> name
    if len(set(names.values())) < len(names):
        sys.exit(f"bench/rescore.py: models with the same label: {' '.join(args.model)}")
    floor = run_child(argv, "0/load")["maxrss_mib"]
    results = {name: run_child(argv, job) for job, name in names.items()}
    w = max(14, *map(len, results))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    fp = next(iter(results.values()))
    wers, compared = common_wers(args.ref, results)
    print(f"# python3 bench/rescore.py {' '.join(argv)}  (commit {commit})")
    model = " vs ".join(args.model) or (
        f"random LSTM-256, vocab {args.vocab_size or 'of words.txt'}, {args.output} output")
    coarse = f" and the order-{args.prune_order} coarse pass" if args.prune_order else ""
    ngram = next((r for name, r in results.items() if name.endswith("ngram-approx")), None)
    print(f"# model: {model}; K = {fp['order']}, ngram-approx n = "
          f"{ngram['order'] + 1 if ngram else '-'}; {fp['arcs_in']} input arcs, "
          f"{fp['arcs_pruned']} after --beam {args.beam}{coarse}; {args.threads} thread(s) on "
          f"{args.device}; memory floor (model + lattices loaded) {floor:.0f} MiB")
    if wers:
        print(f"# WER over the {compared} original lattices that every method rescored")
    print(f"{'method':<{w}} {'seconds':>8} {'cpu s':>8} {'arcs/s':>9} {'time/fp':>8} "
          f"{'scored arcs':>11} "
          f"{'peak MiB':>9} {'+floor':>7} {'WER%':>6} {'failed':>6}")
    for job, r in results.items():
        wer = f"{wers[job]:.2f}" if wers else "-"
        print(f"{job:<{w}} {r['seconds']:>8.3f} {r['cpu_seconds']:>8.3f} "
              f"{r['arcs_in'] / r['seconds']:>9.0f} "
              f"{ratio(r['seconds'], fp['seconds']):>8.2f} {r['arcs_scored']:>11} "
              f"{r['maxrss_mib']:>9.0f} {r['maxrss_mib'] - floor:>7.0f} {wer:>6} "
              f"{r['failed']:>6}")
    print(f"{'method':<{w}} {'softmax rows':>12} {'head rows':>10} {'tail rows':>10} "
          f"{'rows/fp':>8} {'coarse rows':>11} {'cell steps':>11} {'cell calls':>10}  "
          f"(model work, all passes; rows/fp: softmax or head rows)")
    for job, r in results.items():
        rows = r["softmax_rows"] or r["head_rows"]
        print(f"{job:<{w}} {r['softmax_rows']:>12} {r['head_rows']:>10} "
              f"{r['tail_rows']:>10} {ratio(rows, fp['softmax_rows'] or fp['head_rows']):>8.2f} "
              f"{r['coarse_rows']:>11} {r['cell_steps']:>11} {r['cell_calls']:>10}")
    print(f"{'method':<{w}} {'err mean':>9} {'err max':>9} {'> 1e-3':>7}  (|LM score along the "
          f"1-best - the model's own score of its words|, nats)")
    for job, r in results.items():
        print(f"{job:<{w}} {r['lm_error_mean']:>9.4f} {r['lm_error_max']:>9.4f} "
              f"{r['lm_differs']:>7}")


if __name__ == "__main__":
    main()
