#!/usr/bin/env python3
"""Compare two LMs' WERs at the same weights, over a grid of LM weights and insertion penalties.

Usage: utils/compare_at_weights.py --a A.json [A2.json ...] --b B.json [B2.json ...] \\
           [--lmwt 8:14] [--wip 0:3]

Each JSON is ``lmrescore tune --json`` run on one model's rescored TEST lattices (e.g. one per
training seed); A's WER at each (LMWT, penalty) point is the mean over A's files, and so for B.
Prints B - A at every point of the region and the mean, min and max of that gap. Each model
tested at the weights tuned on its own dev set (the recipe's RESULTS.md) adds how well those
weights carry over to test, which can move WER by a point either way; at the same weights
only the models differ.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

Point = tuple[float, float]


def mean_grid(paths: list[str]) -> dict[Point, float]:
    """(LMWT, penalty) -> WER averaged over the files (points all files have)."""
    grids = [{(p["lmwt"], p["word_ins_penalty"]): p["wer"]
              for p in json.loads(Path(f).read_text())["grid"]} for f in paths]
    common = set.intersection(*(set(g) for g in grids))
    return {k: statistics.mean(g[k] for g in grids) for k in sorted(common)}


def span(text: str) -> tuple[float, float]:
    """'8:14' -> (8.0, 14.0)."""
    lo, _, hi = text.partition(":")
    return float(lo), float(hi or lo)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", nargs="+", required=True, help="tune JSONs of model A (the baseline)")
    p.add_argument("--b", nargs="+", required=True, help="tune JSONs of model B")
    p.add_argument("--lmwt", type=span, default=(8.0, 14.0), help="LMWT range lo:hi")
    p.add_argument("--wip", type=span, default=(0.0, 3.0), help="insertion penalty range lo:hi")
    args = p.parse_args()
    a, b = mean_grid(args.a), mean_grid(args.b)
    region = [k for k in a if k in b and args.lmwt[0] <= k[0] <= args.lmwt[1]
              and args.wip[0] <= k[1] <= args.wip[1]]
    if not region:
        p.error("no (LMWT, penalty) point of both grids lies in --lmwt and --wip")
    print(f"# WER% at the same weights; A: mean of {len(args.a)} grid(s), "
          f"B: mean of {len(args.b)}")
    print(f"{'LMWT':>5} {'WIP':>5} {'A':>7} {'B':>7} {'B-A':>7}")
    for k in region:
        print(f"{k[0]:5g} {k[1]:5g} {a[k]:7.2f} {b[k]:7.2f} {b[k] - a[k]:+7.2f}")
    gaps = [b[k] - a[k] for k in region]
    print(f"B - A over {len(region)} points: mean {statistics.mean(gaps):+.2f}, "
          f"min {min(gaps):+.2f}, max {max(gaps):+.2f}; best of the whole grid: "
          f"A {min(a.values()):.2f}, B {min(b.values()):.2f}")


if __name__ == "__main__":
    main()
