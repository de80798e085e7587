"""The training loop: BPTT (exact recurrence) or AFP (order-K fixed point), resumable.

An experiment directory holds ``words.txt``, ``config.yaml``, ``last.pt`` (resume point, written
every ``save_every`` steps and at each epoch end), ``best.pt`` (best validation perplexity),
``metrics.json`` (one row per epoch), ``curves.png`` and ``results.json`` (final perplexities).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from lmrescore.atomic import atomic_write_text
from lmrescore.errors import InputError
from lmrescore.lm.checkpoint import check_same_vocab, load_checkpoint, save_checkpoint
from lmrescore.lm.config import ExperimentConfig
from lmrescore.lm.data import Batch, corpus_path, read_sentences, sentence_batches, stream_batches
from lmrescore.lm.evaluate import Perplexity, perplexity
from lmrescore.online.fpp_lm import FPPStreams
from lmrescore.lm.model import RNNLM
from lmrescore.training.curves import plot_curves
from lmrescore.lm.units import Units, make_units
from lmrescore.vocab import Vocab

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """Where training stands; saved in every checkpoint so a killed run resumes exactly."""

    epoch: int = 0
    step_in_epoch: int = 0
    lr: float = 0.0
    best_valid: float = math.inf
    bad_epochs: int = 0
    done: bool = False
    train_nll: float = 0.0
    train_tokens: int = 0
    epoch_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


def make_optimizer(model: RNNLM, config: ExperimentConfig) -> torch.optim.Optimizer:
    t = config.train
    params = model.parameters()
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.Adagrad(params, lr=t.lr, weight_decay=t.weight_decay)


def check_same_config(exp_dir: Path, config: ExperimentConfig) -> None:
    """Refuse to go on in an experiment folder made with another config (its ``config.yaml``),
    naming every setting that differs; ``model.vocab_size`` comes from the data, not the config."""
    path = exp_dir / "config.yaml"
    if not path.is_file():
        return
    try:
        old = _flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable config ({e.__class__.__name__})") from None
    new = _flatten(config.to_dict())
    differ = [k for k in sorted(old.keys() | new.keys())
              if k != "model.vocab_size" and old.get(k) != new.get(k)]
    if differ:
        raise InputError(f"{exp_dir} was trained with another config: "
                         + "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now"
                                     for k in differ)
                         + ". Use another --exp-dir, or remove this one to start over")


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Trainer:
    """Trains one experiment; ``run()`` resumes from ``exp_dir/last.pt`` when it exists."""

    def __init__(self, config: ExperimentConfig, corpus_dir: str | Path, exp_dir: str | Path,
                 device: str = "cpu") -> None:
        self.exp_dir = Path(exp_dir)
        self.device = device
        check_same_config(self.exp_dir, config)
        texts = {s: read_sentences(corpus_path(corpus_dir, config.data.corpus, s))
                 for s in ("train", "valid", "test")}
        self.units: Units = make_units(config.data, texts["train"], self.exp_dir)
        self.vocab: Vocab = self.units.vocab
        self.config = replace(config, model=replace(config.model, vocab_size=len(self.vocab)))
        self.data = {s: self.units.encode(t) for s, t in texts.items()}
        self.num_words = {s: sum(len(x) for x in t) for s, t in texts.items()}
        torch.manual_seed(self.config.train.seed)
        self.model = RNNLM(self.config.model).to(device)
        self.optimizer = make_optimizer(self.model, self.config)
        self.state = RunState(lr=self.config.train.lr)
        self.carry: list[torch.Tensor] | None = None
        t = self.config.train
        self.fpp = (FPPStreams(self.model, self.optimizer, t.fpp, t.batch_size, t.seed, t.clip)
                    if t.method == "fpp" else None)
        self._resume()

    # ---- checkpoints -------------------------------------------------------------------

    def _resume(self) -> None:
        last = self.exp_dir / "last.pt"
        if not last.exists():
            return
        payload = load_checkpoint(last)
        check_same_vocab(self.vocab, Vocab(tuple(payload["vocab"])), str(last))
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.state = RunState(**payload["run_state"])
        self.carry = payload["carry"]
        if self.fpp is not None:
            self.fpp.load_state_dict(payload["fpp"])
        torch.set_rng_state(payload["rng"])
        log.info("resumed %s at epoch %d step %d", last, self.state.epoch + 1,
                 self.state.step_in_epoch)

    def save(self, name: str = "last.pt") -> None:
        save_checkpoint(self.exp_dir / name, self.model, self.vocab, self.config,
                        optimizer=self.optimizer.state_dict(), run_state=asdict(self.state),
                        carry=self.carry, rng=torch.get_rng_state(), **self.units.to_checkpoint(),
                        fpp=None if self.fpp is None else self.fpp.state_dict())

    # ---- one step ----------------------------------------------------------------------

    def batches(self, epoch: int) -> list[Batch]:
        t, order = self.config.train, self.config.model.order
        if t.batching == "sentence":
            return sentence_batches(self.data["train"], self.vocab, t.batch_size,
                                    shuffle_seed=t.seed * 1000 + epoch)
        return stream_batches(self.data["train"], self.vocab, t.batch_size, t.bptt_len,
                              context=0 if order is None else order - 1)

    def step(self, batch: Batch) -> float:
        """One update on ``batch``; returns its summed NLL."""
        self.model.train()
        if self.fpp is not None:  # online: the streams continue unless the epoch restarts them
            nll = self.fpp.train_batch(batch.inputs, batch.targets, start=self.carry is None)
            self.carry = [self.fpp.learner.state]
            return nll
        dev = self.device
        state = self.carry if batch.carry else None
        loss, final = self.model.nll(batch.inputs.to(dev), batch.targets.to(dev),
                                     batch.mask.to(dev), state=state)
        self.optimizer.zero_grad()
        (loss / batch.num_tokens).backward()
        if self.config.train.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.clip)
        self.optimizer.step()
        self.carry = [s.detach() for s in final] if batch.carry else None
        return float(loss.detach())

    # ---- the loop ----------------------------------------------------------------------

    def evaluate(self, split: str, order: int | None | str = "model") -> Perplexity:
        t = self.config.train
        return perplexity(self.model, self.data[split], self.vocab, t.batching,
                          t.eval_batch_size, t.bptt_len, order, self.num_words[split])

    def run(self) -> dict[str, Any]:
        """Train until done (resuming if possible), then evaluate the best model on valid/test."""
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self.vocab.save(self.exp_dir / "words.txt")
        atomic_write_text(self.exp_dir / "config.yaml", yaml.safe_dump(self.config.to_dict()))
        t, s = self.config.train, self.state
        while not s.done and s.epoch < t.epochs:
            self._train_epoch()
        return self.final_results()

    def _train_epoch(self) -> None:
        t, s = self.config.train, self.state
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr
        batches = self.batches(s.epoch)
        if s.step_in_epoch == 0:
            self.carry, s.train_nll, s.train_tokens, s.epoch_seconds = None, 0.0, 0, 0.0
        bar = tqdm(range(s.step_in_epoch, len(batches)), desc=f"epoch {s.epoch + 1}",
                   initial=s.step_in_epoch, total=len(batches), mininterval=5, leave=False)
        tic = time.time()
        for i in bar:
            s.train_nll += self.step(batches[i])
            s.train_tokens += batches[i].num_tokens
            s.step_in_epoch = i + 1
            if t.save_every and s.step_in_epoch % t.save_every == 0 and i + 1 < len(batches):
                s.epoch_seconds += time.time() - tic
                tic = time.time()
                self.save()
            bar.set_postfix(ppl=f"{math.exp(s.train_nll / max(1, s.train_tokens)):.1f}",
                            refresh=False)
        s.epoch_seconds += time.time() - tic
        valid = self.evaluate("valid")
        row = {"epoch": s.epoch + 1, "lr": s.lr,
               "train_ppl": math.exp(s.train_nll / s.train_tokens), "valid_ppl": valid.ppl,
               "seconds": s.epoch_seconds, "tokens_per_s": s.train_tokens / s.epoch_seconds}
        s.history.append(row)
        log.info("epoch %(epoch)d lr %(lr).4g train ppl %(train_ppl).2f valid ppl "
                 "%(valid_ppl).2f (%(seconds).0f s, %(tokens_per_s).0f tokens/s)", row)
        s.epoch, s.step_in_epoch = s.epoch + 1, 0
        if valid.ppl < s.best_valid:
            s.best_valid, s.bad_epochs = valid.ppl, 0
            self.save("best.pt")
        else:
            s.bad_epochs += 1
            s.lr *= t.lr_decay
        s.done = s.bad_epochs >= t.early_stop or s.lr < t.min_lr
        self.save()
        atomic_write_text(self.exp_dir / "metrics.json", json.dumps(s.history, indent=1) + "\n")
        plot_curves(s.history, self.exp_dir / "curves.png", title=self.exp_dir.name)

    def final_results(self) -> dict[str, Any]:
        """Perplexities of ``best.pt`` at the model's order (and exact, for an AFP model)."""
        self.model.load_state_dict(load_checkpoint(self.exp_dir / "best.pt")["model"])
        s = self.state
        results: dict[str, Any] = {
            "method": self.config.train.method, "order": self.config.model.order,
            "epochs": s.epoch, "train_seconds": sum(r["seconds"] for r in s.history)}
        for split in ("valid", "test"):
            results[f"{split}_ppl"] = self.evaluate(split).ppl
            if self.config.model.order is not None:
                results[f"{split}_ppl_exact"] = self.evaluate(split, order=None).ppl
        atomic_write_text(self.exp_dir / "results.json", json.dumps(results, indent=1) + "\n")
        log.info("results: %s", results)
        return results
