"""How rescoring cost grows with the vocabulary: full softmax vs adaptive softmax (timing only).

Usage:
    python3 bench/output_growth.py [--sizes 10000 33000 100000 200000] [--beam 5] [--replicate 1]
        [--word-ranks ../shared/data/ptb/ptb.train.txt] [--threads 1] [--cutoffs 2000 10000 50000]
        [--div-value 4] [--repeat 1]

For each vocabulary size and output layer, a random LSTM-256 (order 4, seed 0) rescores the
fixture lattices (tests/fixtures/lats.ark) by fixed-point, in a child process of
bench/rescore.py (``--methods fixed-point``); a second child only loads the model and lattices
(the memory floor: the model grows with V). The lattice words sit in the big vocabulary at
their frequency rank in ``--word-ranks`` (PTB's training text), and the words it lacks at
random ids (rare words: in a big vocabulary, mostly in the far tail clusters). The adaptive
layer uses ``--cutoffs`` (those below V), by default bench/rescore.py's (2000, 10000, 50000
below V), and ``--div-value`` (default 4).

Ratios are of CPU seconds (rescoring only, not loading) against the 10k-word run of the same
output layer, measured in this run; wall seconds include waiting for a shared core. With
``--repeat N`` every configuration runs N times, in N rounds over all of them (so a slow spell
of the machine hits each), and the run with the median CPU seconds is reported, with the range.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rescore import run_child  # noqa: E402  (bench/rescore.py)

# the shared data folder beside the checkout (as CI and the sessions have it)
PTB = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb" / "ptb.train.txt")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 33000, 100000, 200000])
    p.add_argument("--outputs", nargs="+", default=["softmax", "adaptive"])
    p.add_argument("--beam", default="5")
    p.add_argument("--replicate", default="1")
    p.add_argument("--order", default="4")
    p.add_argument("--word-ranks", default=PTB if Path(PTB).is_file() else "")
    p.add_argument("--threads", default="1")
    p.add_argument("--cutoffs", type=int, nargs="+",
                   help="adaptive cutoffs (those below each V); default: bench/rescore.py's")
    p.add_argument("--div-value", default="4")
    p.add_argument("--repeat", type=int, default=1, help="runs per configuration (median)")
    args = p.parse_args()

    configs = []  # (output, size, bench/rescore.py arguments)
    for output in args.outputs:
        for size in args.sizes:
            argv = ["--vocab-size", str(size), "--output", output, "--beam", args.beam,
                    "--replicate", args.replicate, "--order", args.order, "--threads",
                    args.threads, "--methods", "fixed-point", "--ref", ""]
            if args.word_ranks:
                argv += ["--word-ranks", args.word_ranks]
            if output == "adaptive":
                argv += ["--div-value", args.div_value]
                if args.cutoffs:
                    argv += ["--cutoffs", *(str(c) for c in args.cutoffs if c < size)]
            configs.append((output, size, argv))
    floors = [run_child(argv, "0/load")["maxrss_mib"] for _, _, argv in configs]
    runs: list[list[dict]] = [[] for _ in configs]
    for _ in range(args.repeat):
        for (output, size, argv), done in zip(configs, runs):
            done.append(run_child(argv, "0/fixed-point"))
            print(f"  done {output} {size}: {done[-1]['cpu_seconds']:.2f} cpu s", file=sys.stderr)
    rows = []
    for (output, size, _), done, floor in zip(configs, runs, floors):
        done.sort(key=lambda r: r["cpu_seconds"])
        spread = (done[0]["cpu_seconds"], done[-1]["cpu_seconds"])
        rows.append((output, size, done[(len(done) - 1) // 2], floor, spread))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"# python3 bench/output_growth.py {' '.join(sys.argv[1:])}  (commit {commit})")
    print(f"# fixture lattices, --beam {args.beam}, --replicate {args.replicate}, fixed-point "
          f"K = {args.order}, {args.threads} thread(s); word ranks from "
          f"{args.word_ranks or '(none: lattice words first)'}")
    print(f"{'output':<9} {'V':>7} {'seconds':>8} {'cpu s':>7} {'cpu/10k':>8} {'cpu range':>12} "
          f"{'rows':>7} {'tail rows':>9} {'peak MiB':>9} {'floor':>6} {'+floor':>7} {'err max':>8}")
    base = {}
    for output, size, r, floor, (lo, hi) in rows:
        base.setdefault(output, r["cpu_seconds"])
        print(f"{output:<9} {size:>7} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} "
              f"{r['cpu_seconds'] / base[output]:>8.2f} {f'{lo:.2f}-{hi:.2f}':>12} "
              f"{r['softmax_rows'] or r['head_rows']:>7} {r['tail_rows']:>9} "
              f"{r['maxrss_mib']:>9.0f} {floor:>6.0f} {r['maxrss_mib'] - floor:>7.0f} "
              f"{r['lm_error_max']:>8.1e}")
    by = {(o, s): r for o, s, r, _, _ in rows}
    if set(args.outputs) == {"softmax", "adaptive"}:
        print("adaptive / softmax cpu s: " + ", ".join(
            f"V={s}: {by['adaptive', s]['cpu_seconds'] / by['softmax', s]['cpu_seconds']:.2f}"
            for s in args.sizes))


if __name__ == "__main__":
    main()
