#!/usr/bin/env python3
"""WikiText-2 as ASR LM text: one lower-case sentence per line, words only.

Usage: local/normalize_text.py IN_DIR OUT_DIR   (wiki.{train,valid,test}.tokens in both)

Drops blank lines and section headings (`` = Title = ``); splits paragraphs into sentences
after `` . ``, `` ? `` and `` ! ``; splits ``@-@`` compounds into words; lower-cases; drops
tokens without a letter or digit (punctuation). ``<unk>`` stays. Perplexities on this text are
therefore not comparable with published WikiText-2 numbers (raw, cased, punctuated text).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SENTENCE_END = re.compile(r"(?<= [.?!]) ")
WORD = re.compile(r"[a-z0-9]")


def sentences(line: str) -> list[str]:
    """The normalised sentences of one WikiText line (none for headings and blank lines)."""
    line = line.strip()
    if not line or line.startswith("="):
        return []
    out = []
    for s in SENTENCE_END.split(line):
        words = [w if w == "<unk>" else w.lower() for w in s.replace(" @-@ ", " ").split()]
        words = [w for w in words if w == "<unk>" or WORD.search(w)]
        if words:
            out.append(" ".join(words))
    return out


def main() -> None:
    in_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        with open(in_dir / f"wiki.{split}.tokens", encoding="utf-8") as f:
            text = "".join(f"{s}\n" for line in f for s in sentences(line))
        tmp = out_dir / f"wiki.{split}.tokens.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out_dir / f"wiki.{split}.tokens")


if __name__ == "__main__":
    main()
