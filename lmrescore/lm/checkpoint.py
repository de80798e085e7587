"""Checkpoints: one file holding config, vocabulary, weights and (for training) run state."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmrescore.atomic import atomic_save
from lmrescore.lm.config import ExperimentConfig
from lmrescore.errors import InputError
from lmrescore.lm.kinds import build_model
from lmrescore.lm.units import units_from_checkpoint
from lmrescore.vocab import Vocab

FORMAT = "lmrescore-checkpoint-1"


def save_checkpoint(path: str | Path, model: nn.Module, vocab: Vocab, config: ExperimentConfig,
                    **run_state: Any) -> None:
    """Write a checkpoint atomically; ``run_state`` holds optimizer, epoch, step, rng, ..."""
    payload = {"format": FORMAT, "config": config.to_dict(), "vocab": list(vocab.words),
               "model": model.state_dict(), **run_state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_save(path, lambda f: f.write(buffer.getvalue()))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict; a missing, foreign or damaged file is an ``InputError``.

    A checkpoint is untrusted input: it is unpickled with ``weights_only=True`` (tensors and
    plain data only), so a file that would run code when loaded is refused before it can.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        why = next((line for line in str(e).splitlines() if "GLOBAL" in line), "")
        raise InputError(f"{path}: refused: it holds Python objects other than tensors and "
                         f"plain data, which loading could run as code. {why}") from None
    except Exception as e:  # torch raises many kinds for a damaged file
        raise InputError(f"{path}: not a readable checkpoint ({e.__class__.__name__}: {e})")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not an lmrescore checkpoint")
    return payload


def load_model(path: str | Path, device: str = "cpu",
               ) -> tuple[nn.Module, Vocab, ExperimentConfig, dict[str, Any]]:
    """Rebuild the model of the config's kind (lmrescore/lm/kinds.py; ``rnn`` when the config
    names none) from a checkpoint alone, in eval mode.

    Everything is checked before the model is built: the config (types, caps), the vocabulary
    (a list of distinct words), the units, and every weight's name and shape against the model
    the config describes (built first on the meta device, which allocates nothing), so the
    model costs what its weights in the file cost.

    Returns:
        model, vocabulary, experiment config, and the whole checkpoint dict.
    Raises:
        InputError: naming the file and what is wrong.
    """
    payload = load_checkpoint(path)
    missing = [k for k in ("config", "vocab", "model") if k not in payload]
    if missing:
        raise InputError(f"{path}: the checkpoint lacks {', '.join(map(repr, missing))}")
    config = ExperimentConfig.from_dict(payload["config"], f"{path}: config")
    words = payload["vocab"]
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise InputError(f"{path}: the vocabulary is not a list of words")
    try:
        vocab = Vocab(tuple(words))
    except ValueError as e:
        raise InputError(f"{path}: {e}") from None
    if config.model.vocab_size != len(vocab):
        raise InputError(f"{path}: model has {config.model.vocab_size} outputs but the "
                         f"vocabulary has {len(vocab)} words")
    units_from_checkpoint(payload, str(path))
    _check_weights(path, config, payload["model"])
    model = build_model(config.model)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), vocab, config, payload


def _check_weights(path: str | Path, config: ExperimentConfig, weights: Any) -> None:
    """Raise an ``InputError`` unless ``weights`` has exactly the names and shapes of the model
    ``config`` describes."""
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor)
                                                for v in weights.values()):
        raise InputError(f"{path}: the weights are not a dict of tensors")
    layers = getattr(config.model, "num_layers", 0)
    if layers > len(weights):  # each layer has weights: bounds the meta build
        raise InputError(f"{path}: the config says {layers} layers, the file "
                         f"has {len(weights)} weights")
    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in build_model(config.model).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    if got != want:
        name = next(k for k in sorted(want.keys() | got.keys()) if want.get(k) != got.get(k))
        raise InputError(f"{path}: weight {name!r} has shape {got.get(name, 'none')} in the "
                         f"file, {want.get(name, 'none')} in the config's model")


def check_same_vocab(expected: Vocab, found: Vocab, where: str) -> None:
    """Raise an ``InputError`` naming the first difference between two vocabularies."""
    if expected.words == found.words:
        return
    if len(expected) != len(found):
        raise InputError(f"{where}: vocabulary has {len(found)} words, expected {len(expected)}")
    i = next(i for i, (a, b) in enumerate(zip(expected.words, found.words)) if a != b)
    raise InputError(f"{where}: vocabulary differs at id {i}: {found.words[i]!r} "
                     f"instead of {expected.words[i]!r}")


INFERENCE_KEYS = ("format", "config", "vocab", "model", "units", "sp_model")


def export_for_inference(src: str | Path, dst: str | Path, half: bool = True) -> None:
    """Copy what scoring needs (config, vocabulary, units, weights) to a smaller checkpoint.

    Args:
        src: a training checkpoint (``best.pt``).
        dst: where to write; optimizer and run state are dropped.
        half: store floating-point weights as float16 (loading casts them back to float32).
    """
    model, _, _, payload = load_model(src)
    payload = {k: v for k, v in payload.items() if k in INFERENCE_KEYS}
    if half:
        model.half()
    payload["model"] = model.state_dict()  # tied weights stay one tensor
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_save(dst, lambda f: f.write(buffer.getvalue()))
