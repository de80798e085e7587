"""Training throughput (tokens/s) of BPTT vs AFP(K), full vs adaptive softmax, in one run.

Usage:
    python3 bench/train_speed.py [--cell lstm] [--hidden 256] [--vocab 10000] [--orders 4 8 16]
        [--outputs softmax adaptive] [--cutoffs 2000 5000] [--div-value 4] [--text ptb.train.txt]

Every method trains the same model (per output layer: same seed) on the same batches of B rows
of T tokens (the shape of a PTB sentence batch): random ids, or with ``--text`` consecutive
tokens of that text over its vocabulary (``Vocab.build``: ids by falling count, so the adaptive
layer's head holds the frequent words, as in training; random ids would put most targets in
the tail). The ratios are against BPTT with the full softmax, and adaptive against full for the
same method, all measured in this run. Both output layers are tied to the input embedding, as
the models/ configs have them.
"""

from __future__ import annotations

import argparse
import time

import torch

from lmrescore.lm.data import read_sentences
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.vocab import Vocab


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
    p.add_argument("--orders", type=int, nargs="*", default=[4, 8, 16])
    p.add_argument("--outputs", nargs="+", default=["softmax", "adaptive"],
                   choices=["softmax", "adaptive"])
    p.add_argument("--cutoffs", type=int, nargs="+", default=[2000, 5000])
    p.add_argument("--div-value", type=float, default=4.0,
                   help="adaptive: tail cluster i has dimension hidden / div**(i+1)")
    p.add_argument("--text", help="take batches from this text (ids by count); --vocab ignored")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    size = args.batch * args.length * (args.steps + 1)
    if args.text:
        sentences = read_sentences(args.text)
        vocab = Vocab.build(sentences)
        ids = torch.tensor([vocab.id(w) for s in sentences for w in s + ["</s>"]][:size])
        args.vocab = len(vocab)
    else:
        ids = torch.randint(4, args.vocab, (size,), generator=torch.Generator().manual_seed(0))
    batches = list(ids.to(args.device).view(args.steps + 1, args.batch, args.length))
    print(f"{args.cell} x{args.layers} H={args.hidden} V={args.vocab} B={args.batch} "
          f"T={args.length} on {args.device}, {torch.get_num_threads()} threads; tokens: "
          f"{args.text or 'random ids'}; adaptive cutoffs {args.cutoffs}, div_value "
          f"{args.div_value}, tied")
    models = {}
    for output in args.outputs:
        torch.manual_seed(0)
        adaptive = output == "adaptive"
        models[output] = RNNLM(ModelConfig(
            cell=args.cell, vocab_size=args.vocab, hidden_dim=args.hidden,
            num_layers=args.layers, output=output, cutoffs=args.cutoffs if adaptive else None,
            div_value=args.div_value)).to(args.device)
    print(f"{'method':<10} {'output':<9} {'tokens/s':>10} {'vs BPTT':>8} {'vs full':>8}")
    base = {}
    for k in [None] + args.orders:
        name = "BPTT" if k is None else f"AFP K={k}"
        for output, model in models.items():
            tps = tokens_per_second(model, batches, k)
            base.setdefault(None, tps)
            base.setdefault(k, tps)
            print(f"{name:<10} {output:<9} {tps:>10.0f} {tps / base[None]:>8.2f} "
                  f"{tps / base[k]:>8.2f}")


if __name__ == "__main__":
    main()
