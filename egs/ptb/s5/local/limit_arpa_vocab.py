#!/usr/bin/env python3
"""Keep the n-grams of an ARPA LM whose words are all in a word list (SRILM's -limit-vocab).

Every kept line is copied unchanged (log-probability and back-off weight), so any sentence over
the list's words scores exactly as in the full LM: a small LM that ships with the demo lattices
in place of PocketSphinx's 3.7M-n-gram trigram. <s>, </s> and <unk> are always kept.

Usage: local/limit_arpa_vocab.py first_pass.arpa.gz demo/words.txt demo/first_pass.arpa.gz
"""

from __future__ import annotations

import argparse
import gzip
import re


def open_text(path: str, mode: str):
    return gzip.open(path, mode + "t", encoding="utf-8") if path.endswith(".gz") else \
        open(path, mode, encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("arpa", help="ARPA file (.gz read as gzip)")
    p.add_argument("words", help="words.txt (word id per line) or one word per line")
    p.add_argument("out", help="ARPA file to write (.gz written as gzip)")
    args = p.parse_args()
    with open(args.words, encoding="utf-8") as f:
        keep = {line.split()[0] for line in f if line.strip()} | {"<s>", "</s>", "<unk>"}
    sections: list[list[str]] = []
    order = 0
    with open_text(args.arpa, "r") as f:
        for line in f:
            header = re.fullmatch(r"\\(\d+)-grams:\s*", line)
            if header:
                order = int(header.group(1))
                sections.append([])
            elif line.startswith("\\end\\"):
                break
            elif order and line.strip():
                if all(w in keep for w in line.split()[1: 1 + order]):
                    sections[-1].append(line)
    with open_text(args.out, "w") as out:
        out.write("\\data\\\n")
        out.writelines(f"ngram {n}={len(lines)}\n" for n, lines in enumerate(sections, 1))
        for n, lines in enumerate(sections, 1):
            out.write(f"\n\\{n}-grams:\n")
            out.writelines(lines)
        out.write("\n\\end\\\n")
    print(" ".join(f"{n}-grams {len(lines)}" for n, lines in enumerate(sections, 1)))


if __name__ == "__main__":
    main()
