"""Peak memory of ``lmrescore score`` against the number of lattices: it should stay flat.

Usage:
    python3 bench/score_memory.py [--sizes 100 1000 3000] [--beam 10]

Builds Kaldi archives of N lattices (the PocketSphinx fixtures, copied under new utterance ids)
and a random tiny LSTM over the fixture words, then runs ``lmrescore score`` on each archive in
a child process (writing the rescored lattices and the 1-best, as a recipe does) and reads its
peak resident memory from ``os.wait4``. Printed per N: peak MiB, its ratio to the smallest N's,
seconds, and the memory added per extra lattice against the smallest N (KiB).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000])
    p.add_argument("--beam", type=float, default=10.0)
    return p


def make_inputs(folder: Path, sizes: list[int]) -> Path:
    """A tiny random model and one archive per size; returns the model's path."""
    import torch

    from lmrescore.formats import read_lattices, write_lattices
    from lmrescore.lm.checkpoint import save_checkpoint
    from lmrescore.lm.config import ExperimentConfig, TrainConfig
    from lmrescore.lm.model import ModelConfig, RNNLM
    from lmrescore.vocab import Vocab

    symbols = Vocab.load(FIXTURES / "words.txt")
    vocab = Vocab.from_words(w for w in symbols.words if w != "<eps>")
    config = ExperimentConfig(model=ModelConfig(cell="lstm", vocab_size=len(vocab),
                                                hidden_dim=16, order=3),
                              train=TrainConfig(method="afp"))
    torch.manual_seed(0)
    save_checkpoint(folder / "lm.pt", RNNLM(config.model), vocab, config)
    fixtures = [lat for _, lat in read_lattices(f"ark:{FIXTURES / 'lats.ark'}", "kaldi", symbols)]
    for n in sizes:
        def copies():
            for i in range(n):
                lat = fixtures[i % len(fixtures)].select([0])
                lat.utt_ids = [f"utt{i:06d}"]
                yield lat
        write_lattices(f"ark:{folder / f'{n}.ark'}", copies(), "kaldi")
    return folder / "lm.pt"


def peak_mib(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; its peak resident memory (MiB) and wall seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    args = get_parser().parse_args()
    sizes = sorted(args.sizes)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = make_inputs(folder, sizes)
        rows = []
        for n in sizes:
            cmd = [sys.executable, "-m", "lmrescore.cli", "--log-level", "ERROR", "score",
                   "--model", str(model), "--lattice", f"ark:{folder / f'{n}.ark'}",
                   "--words", str(FIXTURES / "words.txt"), "--beam", str(args.beam),
                   "--num-threads", "1", "--write-lattice", f"ark:{folder / f'out{n}.ark'}",
                   "--one-best", str(folder / f"hyp{n}")]
            rows.append((n, *peak_mib(cmd)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"# python3 bench/score_memory.py {' '.join(sys.argv[1:])}  (commit {commit})")
    print(f"{'lattices':>8} {'peak MiB':>9} {'peak/first':>10} {'seconds':>8} {'KiB/extra lattice':>18}")
    n0, m0, _ = rows[0]
    for n, mib, seconds in rows:
        slope = f"{(mib - m0) * 1024 / (n - n0):.1f}" if n > n0 else "-"
        print(f"{n:>8} {mib:>9.0f} {mib / m0:>10.2f} {seconds:>8.1f} {slope:>18}")


if __name__ == "__main__":
    main()
