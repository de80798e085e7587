"""Experiment configs: YAML -> nested dataclasses; unknown keys, values of the wrong type and YAML
aliases are errors."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmrescore.errors import InputError
from lmrescore.lm.data import MAX_SENTENCE_TOKENS
from lmrescore.lm.kinds import DEFAULT_KIND, KINDS, kind_named, kind_of
from lmrescore.lm.model import ModelConfig


@dataclass
class FPPConfig:
    """FPP settings (the method's knobs; the optimizer is chosen by the caller).

    Attributes:
        buffer: N, transitions kept.
        updates: n, minibatch updates per online step.
        batch: transitions per minibatch update (per run).
        state_weight: lam, weight of the state loss.
        target_only: ablation: drop the state loss (lam = 0).
        state_lr: step size of the gradient update of stored start states (0 = off).
        refresh: extra random buffer entries re-propagated per step (0 = off).
        window: W, steps recomputed from a stored start state to the scored step (1: one).
    """

    buffer: int = 1000
    updates: int = 1
    batch: int = 1
    state_weight: float = 1.0
    target_only: bool = False
    state_lr: float = 0.1
    refresh: int = 0
    window: int = 1

    def __post_init__(self) -> None:
        for name in ("buffer", "updates", "batch", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"fpp {name} must be >= 1, got {getattr(self, name)}")
        if self.state_lr < 0 or self.refresh < 0 or self.state_weight < 0:
            raise ValueError("fpp state_lr, refresh and state_weight must be >= 0")


@dataclass
class DataConfig:
    """Which corpus and how it becomes tokens.

    Attributes:
        corpus: "ptb" or "wikitext-2" (file names inside ``--corpus-dir``).
        max_vocab: keep the most frequent words (specials included); None keeps all.
        units: "word", or "sentencepiece" (subword units trained on the train split).
        sp_vocab_size: sentencepiece vocabulary size.
        max_sentence_tokens: a corpus line of more words, or of more bytes than
            ``lm.data.BYTES_PER_TOKEN`` per such word, is an error naming file:line.
    """

    corpus: str = "ptb"
    max_vocab: int | None = None
    units: str = "word"
    sp_vocab_size: int = 2000
    max_sentence_tokens: int = MAX_SENTENCE_TOKENS

    def __post_init__(self) -> None:
        if self.max_sentence_tokens < 1:
            raise ValueError(f"max_sentence_tokens must be >= 1, got {self.max_sentence_tokens}")
        if self.units not in ("word", "sentencepiece"):
            raise ValueError(f"units must be 'word' or 'sentencepiece', got {self.units!r}")


@dataclass
class TrainConfig:
    """How the model is trained.

    Attributes:
        method: "bptt" (exact recurrence, gradients back through time: full sentences in
            sentence batching, truncated with carried state in stream batching), "afp"
            (order-K fixed point, K = model.order) or "fpp" (fixed point propagation, stream
            batching; see lmrescore/online/fpp.py).
        batching: "sentence" (one utterance per row, fresh state) or "stream" (continuous text).
        batch_size: rows per batch.
        bptt_len: chunk length in stream batching.
        optimizer: "sgd", "adam" or "adagrad".
        lr: initial learning rate.
        clip: gradient-norm clipping (0 = off).
        weight_decay: L2 penalty.
        lr_decay: multiply lr by this when validation perplexity does not improve.
        decay_from: also multiply it by ``lr_decay`` after epoch ``decay_from`` and every
            epoch after it, improving or not (a fixed schedule, as Zaremba et al.'s PTB
            LSTMs'); 0: only on a plateau.
        min_lr: stop once lr falls below this.
        epochs: maximum number of epochs.
        early_stop: stop after this many epochs without improvement.
        seed: random seed (weights, shuffling, dropout).
        eval_batch_size: rows per evaluation batch.
        save_every: also checkpoint every this many steps inside an epoch (0 = epoch ends only).
        fpp: FPP settings (method "fpp" only).
    """

    method: str = "bptt"
    batching: str = "sentence"
    batch_size: int = 32
    bptt_len: int = 35
    optimizer: str = "sgd"
    lr: float = 1.0
    clip: float = 5.0
    weight_decay: float = 0.0
    lr_decay: float = 0.5
    decay_from: int = 0
    min_lr: float = 1e-4
    epochs: int = 20
    early_stop: int = 3
    seed: int = 1
    eval_batch_size: int = 32
    save_every: int = 500
    fpp: FPPConfig = field(default_factory=FPPConfig)

    def __post_init__(self) -> None:
        for name in ("batch_size", "bptt_len", "eval_batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("early_stop", "save_every", "decay_from"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name, value, allowed in [("method", self.method, ("bptt", "afp", "fpp")),
                                     ("batching", self.batching, ("sentence", "stream")),
                                     ("optimizer", self.optimizer, ("sgd", "adam", "adagrad"))]:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass
class ExperimentConfig:
    """Everything that defines a training run: data, model and trainer settings.

    ``model`` is the config of a registered kind (lmrescore/lm/kinds.py): in a dict or YAML
    file, the ``model`` section's ``kind`` (default ``rnn``) says which, and ``to_dict`` writes
    it.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: Any = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        kind = kind_of(self.model)
        if self.train.method not in KINDS[kind].methods:
            raise ValueError(f"method {self.train.method!r} does not train model kind "
                             f"{kind!r} (it trains with: {', '.join(KINDS[kind].methods)})")
        if self.train.method == "afp" and self.model.order is None:
            raise ValueError("method 'afp' needs model.order (the fixed-point order K)")
        if self.train.method in ("bptt", "fpp") and self.model.order is not None:
            raise ValueError(f"method {self.train.method!r} trains the exact recurrence: "
                             "set model.order to null")
        if self.train.method == "fpp" and self.train.batching != "stream":
            raise ValueError("method 'fpp' learns online from a stream: set train.batching: stream")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = {"kind": kind_of(self.model), **d["model"]}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "ExperimentConfig":
        """Build from nested dicts; the ``model`` section is its ``kind``'s config class."""
        if not isinstance(d, dict):
            raise InputError(f"{where}: expected a mapping, got {type(d).__name__}")
        model = d.get("model", {})
        if not isinstance(model, dict):
            raise InputError(f"{where}: model: expected a mapping, got {type(model).__name__}")
        kind = kind_named(model.get("kind", DEFAULT_KIND), f"{where}: model: kind")
        fields = {k: v for k, v in model.items() if k != "kind"}
        return from_dict(cls, {**d, "model": from_dict(kind.config, fields, f"{where}: model")},
                         where)

    @classmethod
    def load(cls, path: str | Path) -> "ExperimentConfig":
        """Read a YAML file; each top-level section is optional."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such config file")
        try:
            with open(path, encoding="utf-8") as f:
                raw = yaml.load(f, _NoAliasLoader) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
        return cls.from_dict(raw, str(path))


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without aliases (``*name``): a few lines of them can expand to billions of
    nodes, and a config has no use for them."""

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201 (yaml's signature)
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def from_dict(cls: type, d: Any, where: str) -> Any:
    """Build dataclass ``cls`` from ``d``, recursing into dataclass fields."""
    if not isinstance(d, dict):
        raise InputError(f"{where}: expected a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
                         f"known: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in d.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value, f"{where}: {name}")
        elif not _is_a(value, hint):
            raise InputError(f"{where}: {name} must be {_type_name(hint)}, got "
                             f"{type(value).__name__} {_short(value)}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {e}") from None


def _is_a(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the type ``hint`` (str, int, float, bool, ``X | None``,
    ``list[X]``, ``Any``: anything); an int is a float, a bool is not a number."""
    if hint is Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_a(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_is_a(v, args[0]) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
