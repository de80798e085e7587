#!/usr/bin/env python3
"""Write a recipe's RESULTS.md from its measured outputs (never from typed-in numbers).

Usage: utils/make_results.py --exp-dir exp --lattice-dir data/test --dev-dir data/dev \\
           --models "a b" --command "./run.sh ..." --out RESULTS.md

Reads, for each model, exp/<model>/results.json (training), ppl_test.jsonl
(``lmrescore eval --json``, utils/eval_lms.sh), and for each rescoring system score_<system>/
(utils/rescore_tuned.sh): tune.json (dev WER and the weights picked on dev), wer.json (test
WER), hyp (test 1-best: the WER's 95% interval), test/summary.*.json and the first line of
test/log/score.1.log (the command); from the lattice folders wer_first_pass.json, text,
hyp_first_pass and info.json (``lmrescore info --json``: lattice sizes, acoustic-only 1-best
and oracle errors). exp/<model>/NOTE, if there, is quoted under Notes
(e.g. how a model trained elsewhere got there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable
from pathlib import Path


def perplexities(path: Path) -> dict[int | None, float]:
    """Order K (None: the exact recurrence) -> ppl, from ``lmrescore eval --json`` lines."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["order"]: r["ppl"] for r in records}


# rescoring systems: folders score_<prefix><number> (utils/rescore_tuned.sh), in table order
SYSTEMS = (("fp_k", "fixed-point K="), ("nbest", "n-best N="), ("ngram", "n-gram approx n="),
           ("fp_arpa_k", "fixed-point + first-pass n-gram, K="))


def parse_system(sdir: Path) -> tuple[int, int] | None:
    """(index in SYSTEMS, number) of a score_<system> folder; None for any other folder."""
    name = sdir.name[len("score_"):]
    for rank, (prefix, _) in enumerate(SYSTEMS):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return rank, int(name[len(prefix):])
    return None


def interval_of(ref: Path, replications: int = 10000, seed: int = 0) -> Callable[[Path], str]:
    """A function giving a hypothesis file's test WER 95% interval, '[lo, hi]', by a bootstrap
    over the utterances of ``ref`` (the same draws for every file)."""
    from lmrescore.rescoring.bootstrap import (draw_indices, utterance_errors,
                                               utterance_words, wer_interval)
    from lmrescore.rescoring.metrics import read_text

    refs = read_text(ref)
    words = utterance_words(refs)
    draws = draw_indices(len(words), replications, seed)

    def interval(hyp: Path) -> str:
        i = wer_interval(utterance_errors(refs, read_text(hyp)), words, draws)
        return f"[{i.low:.2f}, {i.high:.2f}]"
    return interval


def model_rows(exp: Path, model: str, interval: Callable[[Path], str]
               ) -> tuple[list[str], list[str], list[str]]:
    """Perplexity-table rows, WER-table rows and score commands of one model; ``interval``
    gives a test hypothesis file's 95% interval (:func:`interval_of`)."""
    d = exp / model
    train = json.loads((d / "results.json").read_text())
    k = train["order"]
    test = perplexities(d / "ppl_test.jsonl")
    ppl = [f"| {model} | {train['method']} | {k if k is not None else '-'} | {train['epochs']} "
           f"| {train['train_seconds'] / 60:.1f} | {train['valid_ppl']:.2f} "
           f"| {test[k]:.2f} / {test[None]:.2f} |"]
    wer, commands = [], []
    systems = sorted((key, sdir) for sdir in d.glob("score_*")
                     if (key := parse_system(sdir)) is not None and (sdir / ".done").is_file())
    for (rank, number), sdir in systems:
        tune = json.loads((sdir / "tune.json").read_text())
        w = json.loads((sdir / "wer.json").read_text())
        summaries = [json.loads(p.read_text()) for p in (sdir / "test").glob("summary.*.json")]
        seconds = sum(s["seconds"] for s in summaries)
        failed = sum(s["failed"] for s in summaries)
        wer.append(f"| {model} ({train['method']}) | {SYSTEMS[rank][1]}{number} "
                   f"| {tune['wer']:.2f} | {tune['lmwt']:g} / {tune['word_ins_penalty']:g} "
                   f"| {w['wer']:.2f} | {interval(sdir / 'hyp')} "
                   f"| {w['errors']} / {w['ref_words']} | {failed} | {seconds:.0f} |")
        log = sdir / "test/log/score.1.log"
        commands.append(log.read_text().splitlines()[0].lstrip("# ").strip())
    return ppl, wer, commands


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", type=Path, required=True)
    p.add_argument("--lattice-dir", type=Path, required=True, help="the test lattices")
    p.add_argument("--dev-dir", type=Path, required=True, help="the dev lattices (tuning)")
    p.add_argument("--models", required=True, help="space-separated model names")
    p.add_argument("--command", required=True, help="the recipe command line that ran")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    lat = args.lattice_dir
    first = json.loads((lat / "wer_first_pass.json").read_text())
    dev_first = json.loads((args.dev_dir / "wer_first_pass.json").read_text())
    dev_utts = json.loads((args.dev_dir / "info.json").read_text())["scored"]
    info = json.loads((lat / "info.json").read_text())
    utts, ref_words = info["scored"], info["ref_words"]
    am_err, oracle_err = info["one_best_errors"], info["oracle_errors"]
    arcs = info["arcs"] / info["lattices"]
    interval = interval_of(lat / "text")
    ppl_rows, wer_rows, commands = [], [], []
    for m in args.models.split():
        a, b, c = model_rows(args.exp_dir, m, interval)
        ppl_rows += a
        wer_rows += b
        commands += c
    notes = [f"- {m}: {(args.exp_dir / m / 'NOTE').read_text().strip()}"
             for m in args.models.split() if (args.exp_dir / m / "NOTE").is_file()]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    lines = [
        "# Results",
        "",
        f"Written by `utils/make_results.py` from the outputs of `{args.command}` "
        f"(commit {commit}); rerun that command to regenerate.",
        "",
        "## Perplexity",
        "",
        "Word-level perplexity of `best.pt` at the model's order K: valid as measured by "
        "`lmrescore train` (it picks `best.pt` by it; in the model's training batching), test "
        "by `lmrescore eval --exact --batching sentence` (fresh state per sentence, as in "
        "rescoring), which also gives the exact recurrence's.",
        "",
        "| model | method | K | epochs | train min | valid ppl (K) | test ppl (K / exact) |",
        "|---|---|---|---|---|---|---|",
        *ppl_rows,
        "",
        "## WER on real ASR lattices",
        "",
        f"{utts} test sentences ({ref_words} words, `{lat / 'text'}`) spoken by espeak-ng and "
        f"decoded by PocketSphinx (`local/make_lattices.sh`); {arcs:.1f} arcs per lattice on "
        "average. The lattices carry acoustic scores only; rescoring adds the RNN LM's (and, "
        "in the systems with the first-pass n-gram, `--arpa-scale` times the decoder's own "
        "trigram, `local/make_first_pass_arpa.sh`, scored exactly on the same expansion). Each "
        "system rescores the dev lattices "
        f"({dev_utts} valid sentences, `{args.dev_dir / 'text'}`) and the test lattices the "
        "same way; the LM weight LMWT (= 1 / acoustic scale) and the word insertion penalty "
        "WIP are the pair with the lowest dev WER (`lmrescore tune`), and the test WER is "
        "measured with them (`utils/rescore_tuned.sh`). *not rescored*: test lattices that "
        "failed (e.g. past `--max-arcs`); they keep their first-pass 1-best. *seconds*: "
        "test rescoring time summed over jobs. *95% interval*: of the test WER, by a "
        "bootstrap over the test sentences (10000 draws, seed 0; the draws' mean +- 1.96 "
        "standard deviations, as Kaldi's compute-wer-bootci; `utils/compare_systems.py` "
        "compares two systems on the same draws): two systems whose intervals overlap may "
        "still differ, and that script tells.",
        "",
        "| system | method | dev WER % | LMWT / WIP | test WER % | 95% interval "
        "| errors / words | not rescored | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| first pass (PocketSphinx 1-best, its trigram LM) | - | {dev_first['wer']:.2f} | - "
        f"| {first['wer']:.2f} | {interval(lat / 'hyp_first_pass')} "
        f"| {first['errors']} / {first['ref_words']} | | |",
        f"| lattice best path, acoustic scores only | - | | - "
        f"| {100 * am_err / ref_words:.2f} | | {am_err} / {ref_words} | | |",
        *wer_rows,
        f"| lattice oracle | - | | - | {100 * oracle_err / ref_words:.2f} "
        f"| | {oracle_err} / {ref_words} | | |",
        "",
        *(["## Notes", "", *notes, ""] if notes else []),
        "## Commands",
        "",
        "```",
        args.command,
        *commands,
        "```",
        "",
    ]
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
