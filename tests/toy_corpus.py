"""A tiny synthetic corpus with real structure (a small grammar), written in PTB's layout."""

from __future__ import annotations

import random
from pathlib import Path

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the company"]
VERBS = ["sees", "likes", "buys", "sells", "finds"]
OBJECTS = ["the ball", "a house", "some shares", "the red car", "a book"]
ENDINGS = ["today", "again", "in new york", "", ""]


def sentence(rng: random.Random) -> str:
    words = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDINGS)}"
    return " ".join(words.split())


def write_toy_corpus(folder: Path, seed: int = 0, train: int = 400, heldout: int = 40) -> Path:
    """Write ptb.{train,valid,test}.txt with sentences of the toy grammar; return the folder."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in [("train", train), ("valid", heldout), ("test", heldout)]:
        lines = [sentence(rng) for _ in range(n)]
        (folder / f"ptb.{split}.txt").write_text("".join(f" {s} \n" for s in lines))
    return folder
