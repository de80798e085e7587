"""Online training speed (steps/s) of FPP(n) vs T-BPTT(T) at equal gradient computations, one run.

Usage:
    python3 bench/fpp_speed.py [--cell rnn] [--hidden 4] [--input 2] [--runs 1] [--steps 2000]
                               [--budgets 1 2 4 8]

FPP with n updates per step and T-BPTT with truncation T = n both compute n gradients per step
(one per sampled transition, one per back-propagated step); each pair trains the same model on
the same CycleWorld-like stream, and the ratio is FPP's steps/s over T-BPTT's in this run.
"""

from __future__ import annotations

import argparse
import time

import torch

from lmrescore.online.fpp import FPPConfig
from lmrescore.online.runs import OnlineConfig, make_learner


def steps_per_second(config: OnlineConfig, input_size: int, steps: int) -> float:
    """Online steps per second over ``steps`` steps after ``steps // 10`` warm-up steps."""
    _, learner = make_learner(config, input_size, classes=2)
    warm = max(1, steps // 10)
    obs = torch.eye(input_size)[:2, None].expand(2, config.runs, input_size)
    target = torch.zeros(config.runs, dtype=torch.long)
    tic = 0.0
    for t in range(warm + steps):
        if t == warm:
            tic = time.perf_counter()
        learner.observe(obs[int(t % 6 == 5)], target, t == 0)
    return steps / (time.perf_counter() - tic)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cell", default="rnn")
    p.add_argument("--hidden", type=int, default=4)
    p.add_argument("--input", type=int, default=2)
    p.add_argument("--runs", type=int, default=1, help="seeds packed in one model")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 4, 8])
    args = p.parse_args()
    base = dict(cell=args.cell, hidden=args.hidden, runs=args.runs, steps=args.steps)
    print(f"{args.cell} H={args.hidden} E={args.input} runs={args.runs} steps={args.steps}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'n = T':>5} {'FPP steps/s':>12} {'T-BPTT steps/s':>15} {'FPP / T-BPTT':>13}")
    for k in args.budgets:
        fpp = steps_per_second(OnlineConfig(method="fpp", fpp=FPPConfig(updates=k), **base),
                               args.input, args.steps)
        tbptt = steps_per_second(OnlineConfig(method="tbptt", truncation=k, **base),
                                 args.input, args.steps)
        print(f"{k:>5} {fpp:>12.0f} {tbptt:>15.0f} {fpp / tbptt:>13.2f}")


if __name__ == "__main__":
    main()
