"""Training throughput (tokens/s) of BPTT vs AFP(K) for the same model, in one run.

Usage:
    python3 bench/train_speed.py [--cell lstm] [--hidden 256] [--vocab 10000] [--orders 4 8 16]

Every method trains the same model on the same random batches (B sentences of length T, the
shape of a PTB sentence batch); the ratios are against BPTT measured in this run.
"""

from __future__ import annotations

import argparse
import time

import torch

from lmrescore.lm.model import ModelConfig, RNNLM


def tokens_per_second(model: RNNLM, batches: list[torch.Tensor], order: int | None) -> float:
    """Forward + backward + SGD step over ``batches``; the first batch is a warm-up."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mask = torch.ones_like(batches[0], dtype=torch.bool)
    tokens, start = 0, 0.0
    for i, x in enumerate(batches):
        if i == 1:
            start = time.perf_counter()
        loss, _ = model.nll(x, x, mask, order=order)
        opt.zero_grad()
        (loss / x.numel()).backward()
        opt.step()
        tokens += x.numel() if i else 0
    return tokens / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cell", default="lstm")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=35)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--orders", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    torch.manual_seed(0)
    cfg = ModelConfig(cell=args.cell, vocab_size=args.vocab, hidden_dim=args.hidden,
                      num_layers=args.layers)
    model = RNNLM(cfg).to(args.device)
    batches = [torch.randint(4, args.vocab, (args.batch, args.length), device=args.device)
               for _ in range(args.steps + 1)]
    print(f"{args.cell} x{args.layers} H={args.hidden} V={args.vocab} B={args.batch} "
          f"T={args.length} on {args.device}, {torch.get_num_threads()} threads")
    base = tokens_per_second(model, batches, None)
    print(f"{'method':<10} {'tokens/s':>10} {'vs BPTT':>8}")
    print(f"{'BPTT':<10} {base:>10.0f} {1.0:>8.2f}")
    for k in args.orders:
        tps = tokens_per_second(model, batches, k)
        print(f"{f'AFP K={k}':<10} {tps:>10.0f} {tps / base:>8.2f}")


if __name__ == "__main__":
    main()
