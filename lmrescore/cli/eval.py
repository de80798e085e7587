"""lmrescore eval: word-level perplexity of a trained model on a text file."""

from __future__ import annotations

import argparse
from pathlib import Path

from lmrescore.cli.options import HelpFormatter, warn_if_kaldi_text
from lmrescore.errors import InputError
from lmrescore.lm.data import TEXT_FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help=__doc__.split(": ", 1)[1], description=__doc__,
                       formatter_class=HelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint (exp/<name>/best.pt)")
    p.add_argument("--text", required=True, help="one sentence per line")
    p.add_argument("--text-format", choices=TEXT_FORMATS, default="plain",
                   help="plain, or kaldi: a Kaldi text file whose first field (the utterance "
                        "id) is not a word")
    p.add_argument("--batching", choices=["sentence", "stream"],
                   help="sentence: each line alone; stream: lines joined (default: as the "
                        "model was trained)")
    p.add_argument("--exact", action="store_true",
                   help="also score with the exact full-history recurrence (for an order-K model)")
    p.add_argument("--order", type=int,
                   help="score at this fixed-point order K (default: the model's own), e.g. a "
                        "BPTT model at the order it would be rescored with")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per order (keys: text, order [null: exact "
                        "recurrence], batching, ppl, words, tokens) instead of text lines")
    p.add_argument("--batch-size", type=int, default=32,
                   help="sentences (sentence batching) or streams (stream batching) per batch")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lmrescore.lm.checkpoint import load_model
    from lmrescore.lm.corpus import encode_text
    from lmrescore.lm.evaluate import perplexity
    from lmrescore.lm.units import units_from_checkpoint

    model, vocab, config, payload = load_model(args.model, args.device)
    units = units_from_checkpoint(payload)
    if not Path(args.text).is_file():
        raise InputError(f"{args.text}: no such corpus file")
    warn_if_kaldi_text(args.text, args.text_format)
    data = encode_text(args.text, args.text_format, units, config.data.max_sentence_tokens)
    batching = args.batching or config.train.batching
    order = args.order or model.order
    orders: list[int | None] = [order] + ([None] if args.exact and order is not None else [])
    for k in orders:
        result = perplexity(model, data, vocab, batching, args.batch_size,
                            config.train.bptt_len, k)
        if args.json:
            print(json.dumps({"text": args.text, "order": k, "batching": batching,
                              "ppl": result.ppl, "words": result.words,
                              "tokens": result.tokens}))
        else:
            how = "exact recurrence" if k is None else f"order K={k}"
            print(f"{args.text}: {how}, {batching} batching: ppl {result.ppl:.2f} "
                  f"({result.words} words incl. </s>, {result.tokens} tokens)")
    return 0
