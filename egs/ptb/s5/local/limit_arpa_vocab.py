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
import io
import re

from lmrescore.atomic import atomic_open
from lmrescore.text_input import read_text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("arpa", help="ARPA file (.gz read as gzip)")
    p.add_argument("words", help="words.txt (word id per line) or one word per line")
    p.add_argument("out", help="ARPA file to write (.gz written as gzip), never half")
    args = p.parse_args()
    keep = {line.split()[0] for line in read_text(args.words).splitlines() if line.strip()}
    keep |= {"<s>", "</s>", "<unk>"}
    sections: list[list[str]] = []
    order = 0
    for line in io.StringIO(read_text(args.arpa, gz=args.arpa.endswith(".gz"))):
        header = re.fullmatch(r"\\(\d+)-grams:\s*", line)
        if header:
            order = int(header.group(1))
            sections.append([])
        elif line.startswith("\\end\\"):
            break
        elif order and line.strip():
            if all(w in keep for w in line.split()[1: 1 + order]):
                sections[-1].append(line)
    text = "\\data\\\n" + "".join(f"ngram {n}={len(lines)}\n"
                                 for n, lines in enumerate(sections, 1))
    text += "".join(f"\n\\{n}-grams:\n" + "".join(lines) for n, lines in enumerate(sections, 1))
    text += "\n\\end\\\n"
    data = text.encode("utf-8")
    with atomic_open(args.out, "wb") as out:
        out.write(gzip.compress(data) if args.out.endswith(".gz") else data)
    print(" ".join(f"{n}-grams {len(lines)}" for n, lines in enumerate(sections, 1)))


if __name__ == "__main__":
    main()
