"""Model kinds: one registry, kind name -> its config class and how to build the model.

A checkpoint's config (``model.kind``; a config without one is ``rnn``, as every checkpoint
written before kinds existed) names the kind; loading, the trainer, ``eval`` and ``score`` build
the model through ``build_model`` and never name a kind themselves. A new kind is a module with
a config dataclass and a model class, plus one entry in ``KINDS``.

A kind's config is a dataclass with at least ``vocab_size`` (set from the vocabulary when
training starts) and ``order`` (the history length K it is exact at, or None); a kind that
has ``num_layers`` is checked against its weights' count before it is built. Its model is an
``nn.Module`` that is a ``LanguageModel`` (lmrescore/lm/interface.py) and trains through
``nll(inputs, targets, mask, starts=None, state=None)`` -> (summed NLL, final state or None),
as ``RNNLM.nll`` does. The n-gram kind (ARPA files, Kaldi's G.fst) has no config: ``score``
recognises its files by their bytes (lmrescore/rescoring/lm_file.py); nor has a Hugging Face
causal LM (``score --model hf:DIR --order K``, lmrescore/lm/hf.py), which is not trained here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from lmrescore.errors import InputError
from lmrescore.lm.model import ModelConfig, RNNLM
from lmrescore.lm.transformer import TransformerConfig, TransformerLM

DEFAULT_KIND = "rnn"  # what a config without ``model.kind`` is


@dataclass(frozen=True)
class Kind:
    """A registry entry.

    Attributes:
        config: the kind's config dataclass.
        build: config -> the model (an ``nn.Module`` and a ``LanguageModel``).
        methods: the ``train.method``s that can train it.
    """

    config: type
    build: Callable[[Any], nn.Module]
    methods: tuple[str, ...]


KINDS: dict[str, Kind] = {
    "rnn": Kind(ModelConfig, RNNLM, ("bptt", "afp", "fpp")),
    "transformer": Kind(TransformerConfig, TransformerLM, ("afp",)),  # afp: at its order K
}


def kind_named(name: Any, where: str) -> Kind:
    """The registered kind ``name``; an ``InputError`` naming ``where`` and the kinds if none."""
    if not isinstance(name, str) or name not in KINDS:
        raise InputError(f"{where}: model kind must be one of {', '.join(sorted(KINDS))}, "
                         f"got {name!r}")
    return KINDS[name]


def kind_of(config: Any) -> str:
    """The name of the kind whose config class ``config`` is."""
    for name, kind in KINDS.items():
        if type(config) is kind.config:
            return name
    raise ValueError(f"{type(config).__name__} is not a registered model kind's config")


def build_model(config: Any) -> nn.Module:
    """The model a kind's ``config`` describes (fresh weights)."""
    return KINDS[kind_of(config)].build(config)
