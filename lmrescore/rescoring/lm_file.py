"""The LM that ``score`` rescores with, from its file: a checkpoint of any model kind
(lmrescore/lm/kinds.py), or an n-gram, an ARPA file (plain or gzipped) or a Kaldi G.fst over
the lattices' symbols (lmrescore/rescoring/old_lm.py). The file's bytes say which, not a flag:
``torch.save`` writes a zip archive. ``hf:DIR`` is a local Hugging Face causal LM folder, read
as an order-K model over the lattices' words (lmrescore/lm/hf.py)."""

from __future__ import annotations

from pathlib import Path

from lmrescore.errors import InputError
from lmrescore.lm.checkpoint import load_model
from lmrescore.lm.hf import load_hf_lm
from lmrescore.lm.interface import LanguageModel
from lmrescore.lm.units import (DISAMBIGUATION, NOT_WORDS, Units, WordUnits,
                                units_from_checkpoint)
from lmrescore.rescoring.old_lm import load_old_lm
from lmrescore.vocab import Vocab

ZIP_MAGIC = b"PK\x03\x04"  # a checkpoint: torch.save's zip archive
HF_PREFIX = "hf:"  # a Hugging Face model folder


def load_lm(path: str | Path, symbols: Vocab, device: str = "cpu", order: int | None = None,
            ) -> tuple[LanguageModel, Units]:
    """The model in ``path`` and the units its tokens are (an n-gram's: its words; a Hugging
    Face LM's: the lattices' words).

    Args:
        symbols: the lattices' words.txt (a G.fst's labels are its ids).
        device: where a checkpoint's or Hugging Face model goes (an n-gram runs on the CPU).
        order: K, the words of context a Hugging Face LM reads (required there; unused else).
    Raises:
        InputError: naming the file, when it cannot be read or is none of these.
    """
    if str(path).startswith(HF_PREFIX):
        vocab = Vocab.from_words(w for w in symbols.words
                                 if w not in NOT_WORDS and not DISAMBIGUATION.fullmatch(w))
        return load_hf_lm(str(path)[len(HF_PREFIX):], vocab, order, device), WordUnits(vocab)
    try:
        with open(path, "rb") as f:
            head = f.read(len(ZIP_MAGIC))
    except OSError as e:
        raise InputError(f"{path}: cannot read the model: {e.strerror}") from None
    if head == ZIP_MAGIC:
        model, _, _, payload = load_model(path, device)
        return model, units_from_checkpoint(payload, str(path))
    lm = load_old_lm(path, symbols)
    return lm, WordUnits(lm.vocab)
