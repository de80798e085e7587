"""Training on big corpora: peak memory of tokenising and training against the corpus size
(it should stay flat), and training tokens/s in 1 and 2 processes.

Usage:
    python3 bench/scale.py [--wikitext ../shared/data/wikitext-2] [--sizes 1000000 20000000]
                           [--steps 20] [--old-max 20000000]

Per size N, a training text of N words is made by repeating WikiText-2's train split. A child
process runs ``Trainer`` on it (valid/test: WikiText-2's): the units (a streamed vocabulary
count), tokenising into the memory-mapped store (lmrescore/lm/corpus.py), then ``--steps``
training steps. Printed: its peak resident memory after tokenising and after training, and
the anonymous (non file-backed) resident memory at the end. For N <= ``--old-max`` another
child does what training did before the store: the text read into lists of word strings,
the vocabulary counted, every sentence encoded to a tensor. Then the same training steps are
timed on the smallest N in 1 process (1 and 2 threads) and in 2 processes (``torchrun``, gloo,
1 thread each); tokens/s are printed with their ratio to 1 process x 1 thread.

Internal: ``--worker train|old|speed`` runs one child.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"data": {"max_vocab": 10000},
          "model": {"cell": "lstm", "hidden_dim": 128, "dropout": 0.0},
          "train": {"method": "bptt", "batching": "stream", "batch_size": 32, "bptt_len": 35,
                    "optimizer": "sgd", "lr": 1.0, "epochs": 1, "save_every": 0}}
# Stream batches all have one shape (32 x 35), so training memory differs between sizes only by
# what the corpus costs; each of the 32 rows reads its own region of the memory-mapped ids.


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--wikitext", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext-2",
                   help="WikiText-2 folder (default: ../shared/data/wikitext-2 beside the checkout)")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 20_000_000])
    p.add_argument("--steps", type=int, default=20, help="training steps timed / run per child")
    p.add_argument("--old-max", type=int, default=20_000_000,
                   help="measure the in-memory lists up to this size")
    p.add_argument("--worker", choices=["train", "old", "speed"], help=argparse.SUPPRESS)
    p.add_argument("--text", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--exp-dir", type=Path, help=argparse.SUPPRESS)
    return p


def memory_mib() -> dict[str, float]:
    """This process's peak resident (VmHWM) and anonymous resident (RssAnon) memory, MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text()
                  .splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmHWM", "RssAnon")}


def make_text(wikitext: Path, words: int, out: Path) -> int:
    """WikiText-2's train split repeated, line by line, up to ``words`` words; words written."""
    lines = (wikitext / "wiki.train.tokens").read_text(encoding="utf-8").splitlines(True)
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        while n < words:
            for line in lines:
                f.write(line)
                n += len(line.split())
                if n >= words:
                    break
    return n


def trainer(args: argparse.Namespace, dist=None):
    from lmrescore.lm.config import ExperimentConfig
    from lmrescore.lm.corpus import CorpusFiles
    from lmrescore.training.trainer import Trainer

    files = CorpusFiles({"train": args.text, "valid": args.wikitext / "wiki.valid.tokens",
                         "test": args.wikitext / "wiki.test.tokens"})
    return Trainer(ExperimentConfig.from_dict(CONFIG), files, args.exp_dir, dist=dist)


def worker_train(args: argparse.Namespace) -> dict:
    tic = time.perf_counter()
    t = trainer(args)
    out = {"prepare_s": time.perf_counter() - tic, "after_tokenise": memory_mib()["VmHWM"]}
    batches = t.batches(0)
    for i in range(args.steps):
        t.step(batches[i])
    mem = memory_mib()
    return {**out, "after_train": mem["VmHWM"], "anon_end": mem["RssAnon"],
            "tokens": int(len(t.data["train"].tokens))}


def worker_old(args: argparse.Namespace) -> dict:
    """What ``Trainer`` kept in memory before the store (lists, then one tensor per sentence)."""
    from lmrescore.lm.data import read_sentences
    from lmrescore.lm.units import WordUnits
    from lmrescore.vocab import Vocab

    tic = time.perf_counter()
    sentences = read_sentences(args.text)
    units = WordUnits(Vocab.build(sentences, max_size=CONFIG["data"]["max_vocab"]))
    data = units.encode(sentences)
    return {"prepare_s": time.perf_counter() - tic, "peak": memory_mib()["VmHWM"],
            "sentences": len(data)}


def worker_speed(args: argparse.Namespace) -> dict:
    import torch.distributed

    from lmrescore.distributed import Dist

    dist = Dist.from_env("cpu")
    t = trainer(args, dist)
    batches = t.batches(0)
    for i in range(2):  # warm-up
        t.step(batches[i])
    dist.barrier()
    tic, tokens = time.perf_counter(), 0
    for i in range(2, 2 + args.steps):
        t.step(batches[i])
        tokens += batches[i].num_tokens
    dist.barrier()
    seconds = time.perf_counter() - tic
    if dist.world > 1:
        torch.distributed.destroy_process_group()
    return {"tokens_per_s": tokens / seconds, "rank": dist.rank}


def child(cmd: list[str], threads: int = 1) -> dict:
    """Run a worker; the JSON line it printed (rank 0's under torchrun)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if run.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{run.stderr[-3000:]}")
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return next(r for r in rows if r.get("rank", 0) == 0)


def main() -> None:
    args = get_parser().parse_args()
    if args.worker:
        work = {"train": worker_train, "old": worker_old, "speed": worker_speed}[args.worker]
        print(json.dumps(work(args)), flush=True)
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip()
    print(f"# python3 bench/scale.py {' '.join(sys.argv[1:])}  (commit {commit})")
    print(f"# model: {json.dumps(CONFIG)}")
    me = [sys.executable, str(Path(__file__).resolve()), "--wikitext", str(args.wikitext),
          "--steps", str(args.steps)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{'words':>10} {'text MiB':>8} {'prepare s':>9} {'peak MiB tok':>12} "
              f"{'peak MiB train':>14} {'anon MiB':>8} | {'lists: s':>8} {'peak MiB':>8}")
        for n in sorted(args.sizes):
            text = folder / f"{n}.txt"
            words = make_text(args.wikitext, n, text)
            new = child(me + ["--worker", "train", "--text", str(text), "--exp-dir",
                              str(folder / f"exp{n}")])
            old = (child(me + ["--worker", "old", "--text", str(text)])
                   if n <= args.old_max else None)
            old_cols = (f"{old['prepare_s']:>8.1f} {old['peak']:>8.0f}" if old
                        else f"{'-':>8} {'-':>8}")
            print(f"{words:>10} {text.stat().st_size / 2**20:>8.0f} {new['prepare_s']:>9.1f} "
                  f"{new['after_tokenise']:>12.0f} {new['after_train']:>14.0f} "
                  f"{new['anon_end']:>8.0f} | {old_cols}", flush=True)
        n = min(args.sizes)
        speed = me + ["--worker", "speed", "--text", str(folder / f"{n}.txt"), "--exp-dir"]
        runs = [("1 process x 1 thread", child(speed + [str(folder / "s1")], threads=1)),
                ("1 process x 2 threads", child(speed + [str(folder / "s2")], threads=2)),
                ("2 processes x 1 thread", child(
                    [sys.executable, "-m", "torch.distributed.run", "--standalone",
                     "--nproc-per-node", "2", *speed[1:], str(folder / "s3")], threads=1))]
    base = runs[0][1]["tokens_per_s"]
    print(f"# training speed on the {n}-word text, {args.steps} timed steps of "
          f"{CONFIG['train']['batch_size']} x {CONFIG['train']['bptt_len']} tokens (global "
          f"batch), {os.cpu_count()} cores")
    print(f"{'run':<24} {'tokens/s':>9} {'ratio':>6}")
    for name, r in runs:
        print(f"{name:<24} {r['tokens_per_s']:>9.0f} {r['tokens_per_s'] / base:>6.2f}")


if __name__ == "__main__":
    main()
