#!/usr/bin/env python3
"""Write a model card table from finished experiment folders (their results.json/metrics.json).

Usage:
    python3 models/write_card.py --title "PTB, LSTM 256" --corpus-dir ../shared/data/ptb \\
        --out models/ptb-lstm256.md exp/ptb-lstm256-bptt exp/ptb-lstm256-afp8 ...

Every number in the card is read from the experiment folders; the card names the commands that
made them and the commit they ran at, and copies each run's training-curve PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import yaml

from lmrescore.atomic import atomic_write_text


def row(exp: Path) -> dict:
    """One table row from an experiment folder."""
    results = json.loads((exp / "results.json").read_text())
    history = json.loads((exp / "metrics.json").read_text())
    config = yaml.safe_load((exp / "config.yaml").read_text())
    model = config["model"]
    return {
        "name": exp.name, "cell": model["cell"], "hidden": model["hidden_dim"],
        "layers": model["num_layers"], "method": results["method"].upper(),
        "order": results["order"] or "-", "epochs": results["epochs"],
        "minutes": results["train_seconds"] / 60,
        "tokens_per_s": sum(h["tokens_per_s"] for h in history) / len(history),
        "valid": results["valid_ppl"], "test": results["test_ppl"],
        "test_exact": results.get("test_ppl_exact"), "batching": config["train"]["batching"],
        "valid_by_epoch": [h["valid_ppl"] for h in history],
    }


def epoch_table(rows: list[dict]) -> list[str]:
    """Validation perplexity after each epoch, one column per run: compares runs of unequal
    length at equal epochs."""
    epochs = max(len(r["valid_by_epoch"]) for r in rows)
    lines = ["| epoch | " + " | ".join(r["name"] for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for e in range(epochs):
        cells = [f"{r['valid_by_epoch'][e]:.2f}" if e < len(r["valid_by_epoch"]) else ""
                 for r in rows]
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("exps", nargs="+", type=Path, help="experiment folders")
    p.add_argument("--title", required=True)
    p.add_argument("--corpus-dir", default="../shared/data/ptb")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--notes", type=Path,
                   help="markdown added under the tables (notes on the runs, more results)")
    p.add_argument("--append", type=Path, nargs="*", default=[],
                   help="transcripts ('$ command' then its output) quoted under the table")
    p.add_argument("--commands", type=Path,
                   help="the commands that trained the runs (default: one `lmrescore train` per "
                        "folder, with the config models/<folder name>.yaml)")
    args = p.parse_args()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    rows = [row(e) for e in args.exps]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {args.title}", "",
             "Measured on this project's CPU machine (2 cores), numbers read from each run's "
             f"`results.json` by `models/write_card.py` at commit `{commit}`. Perplexity is per "
             "word, `</s>` included; `test (exact)` scores an order-K model with the full "
             "recurrence instead of its K sweeps.", "",
             "| run | method | K | batching | epochs | train min | tokens/s | valid ppl | "
             "test ppl | test (exact) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        exact = f"{r['test_exact']:.2f}" if r["test_exact"] is not None else "-"
        lines.append(f"| {r['name']} | {r['method']} | {r['order']} | {r['batching']} | "
                     f"{r['epochs']} | {r['minutes']:.0f} | {r['tokens_per_s']:.0f} | "
                     f"{r['valid']:.2f} | {r['test']:.2f} | {exact} |")
    lines += ["", "Validation perplexity after each epoch (from each run's `metrics.json`):", "",
              *epoch_table(rows)]
    if args.notes:
        lines += ["", args.notes.read_text().strip()]
    if args.append:
        lines += ["", "## Other measurements", "", "```"]
        lines += [t.read_text().rstrip("\n") for t in args.append]
        lines += ["```"]
    lines += ["", "## Commands", "", "```bash"]
    if args.commands:
        lines.append(args.commands.read_text().strip())
    else:
        lines += [f"lmrescore train --config models/{e.name}.yaml --corpus-dir {args.corpus_dir} "
                  f"--exp-dir {e}" for e in args.exps]
    lines += ["```", "", "## Training curves", ""]
    for e in args.exps:
        png = args.out.parent / f"{e.name}.png"
        shutil.copyfile(e / "curves.png", png)
        lines.append(f"![{e.name}]({png.name})")
    atomic_write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
