"""The training loop: BPTT (exact recurrence) or AFP (order-K fixed point), resumable, in one
process or several (``torchrun``, lmrescore/distributed.py).

An experiment directory holds ``words.txt``, ``config.yaml``, ``data/`` (the texts as token ids,
lmrescore/lm/corpus.py), ``last.pt`` (resume point, written every ``save_every`` steps and at
each epoch end), ``best.pt`` (best validation perplexity), ``metrics.json`` (one row per epoch),
``curves.png`` and ``results.json`` (final perplexities).

In several processes each batch is split by rows (lmrescore/lm/data.py ``shard``); every process
scales its summed NLL by world / (the whole batch's tokens) and DDP averages the gradients, so a
step is the one-process step on the same batch up to float rounding. Rank 0 writes every file;
checkpoints hold the whole batch's carried state and every rank's random state, and load in any
number of processes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from tqdm import tqdm

from lmrescore.atomic import atomic_write_text
from lmrescore.errors import InputError
from lmrescore.lm.checkpoint import check_same_vocab, load_checkpoint, save_checkpoint
from lmrescore.lm.config import ExperimentConfig
from lmrescore.lm.corpus import CorpusFiles, TokenStore, build_store, open_store
from lmrescore.lm.data import Batch, SentenceBatches, StreamBatches, iter_sentences, shard
from lmrescore.lm.evaluate import Perplexity, perplexity
from lmrescore.online.fpp_lm import FPPStreams
from lmrescore.lm.kinds import DEFAULT_KIND, build_model
from lmrescore.training.curves import plot_curves
from lmrescore.distributed import Dist
from lmrescore.lm.units import Units, make_units, units_from_checkpoint
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


def make_optimizer(model: nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    t = config.train
    params = model.parameters()
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.Adagrad(params, lr=t.lr, weight_decay=t.weight_decay)


# Settings a rerun in the same folder may change: a finished run given more epochs trains on
# (as icefall's --num-epochs), and a fixed lr schedule may be set before the epoch it starts
# at (checked on resuming): either way to the same weights as one run with them from the start.
BUDGET = ("train.epochs", "train.decay_from")


def check_same_config(exp_dir: Path, config: ExperimentConfig) -> dict[str, Any]:
    """Refuse to go on in an experiment folder made with another config (its ``config.yaml``),
    naming every setting that differs; ``model.vocab_size`` comes from the data, not the config,
    and the ``BUDGET`` settings may change: returns those that did, with their old values."""
    path = exp_dir / "config.yaml"
    if not path.is_file():
        return {}
    try:
        old = _flatten(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable config ({e.__class__.__name__})") from None
    old.setdefault("model.kind", DEFAULT_KIND)  # written before kinds existed
    old.setdefault("train.decay_from", 0)  # written before the schedule existed
    new = _flatten(config.to_dict())
    differ = [k for k in sorted(old.keys() | new.keys())
              if k != "model.vocab_size" and k not in BUDGET and old.get(k) != new.get(k)]
    if differ:
        raise InputError(f"{exp_dir} was trained with another config: "
                         + "; ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now"
                                     for k in differ)
                         + ". Use another --exp-dir, or remove this one to start over")
    return {k: old.get(k) for k in BUDGET if old.get(k) != new.get(k)}


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class _NLL(nn.Module):
    """``model.nll`` as a module's forward, so DDP sees the call it synchronises."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                state: list[torch.Tensor] | None) -> tuple[torch.Tensor, Any]:
        return self.model.nll(inputs, targets, mask, state=state)


class Trainer:
    """Trains one experiment; ``run()`` resumes from ``exp_dir/last.pt`` when it exists.

    Args:
        corpus: a folder with the files of ``config.data.corpus``, or the files themselves.
        dist: this process's place in a multi-process job (default: a single process).
    """

    def __init__(self, config: ExperimentConfig, corpus: str | Path | CorpusFiles,
                 exp_dir: str | Path, device: str = "cpu", dist: Dist | None = None) -> None:
        self.exp_dir = Path(exp_dir)
        self.device = device
        self.dist = dist or Dist()
        changed = check_same_config(self.exp_dir, config)
        files = (corpus if isinstance(corpus, CorpusFiles)
                 else CorpusFiles.known(corpus, config.data.corpus))
        if config.train.method == "fpp" and self.dist.world > 1:
            raise InputError("method 'fpp' trains in one process; run it without torchrun")
        files.check()
        last = self.exp_dir / "last.pt"
        self.units: Units = self._units(config, files)
        self.vocab: Vocab = self.units.vocab
        resume = load_checkpoint(last) if last.exists() else None
        if resume is not None:  # before anything is written
            check_same_vocab(self.vocab, Vocab(tuple(resume["vocab"])), str(last))
        self.data = self._stores(files, config.data.max_sentence_tokens)
        self.config = replace(config, model=replace(config.model, vocab_size=len(self.vocab)))
        t = self.config.train
        if t.batching == "stream" and t.batch_size < self.dist.world:
            raise InputError(f"stream batching splits {t.batch_size} streams over "
                             f"{self.dist.world} processes: use train.batch_size >= processes")
        torch.manual_seed(t.seed)
        self.model = build_model(self.config.model).to(device)
        self.optimizer = make_optimizer(self.model, self.config)
        self.loss = self.dist.wrap(_NLL(self.model))
        if self.dist.rank > 0:  # other dropout masks than rank 0's
            torch.manual_seed(t.seed + 7919 * self.dist.rank)
        self.state = RunState(lr=t.lr)
        self.carry: list[torch.Tensor] | None = None
        self.fpp = (FPPStreams(self.model, self.optimizer, t.fpp, t.batch_size, t.seed, t.clip)
                    if t.method == "fpp" else None)
        if resume is not None:
            self._resume(resume)
            self._check_schedule(changed.get("train.decay_from"))

    # ---- data --------------------------------------------------------------------------

    def _units(self, config: ExperimentConfig, files: CorpusFiles) -> Units:
        """Rank 0 makes the units (vocabulary counts or sentencepiece), the others get them."""
        units = None
        if self.dist.is_main:
            units = make_units(config.data,
                               lambda: iter_sentences(files.splits["train"], files.text_format,
                                                      max_tokens=config.data.max_sentence_tokens),
                               self.exp_dir, files.vocab)
        if self.dist.world == 1:
            return units
        payload = self.dist.broadcast(None if units is None
                                      else {"vocab": list(units.vocab.words),
                                            **units.to_checkpoint()})
        return units if units is not None else units_from_checkpoint(payload)

    def _stores(self, files: CorpusFiles, max_tokens: int) -> dict[str, TokenStore]:
        """Each split's token ids: rank 0 tokenises (once: kept in ``exp_dir/data``)."""
        data_dir = self.exp_dir / "data"
        stores = {}
        if self.dist.is_main:
            stores = {s: build_store(p, files.text_format, self.units, data_dir, s, max_tokens)
                      for s, p in files.splits.items()}
        self.dist.barrier()
        return stores or {s: open_store(data_dir, s) for s in files.splits}

    # ---- checkpoints -------------------------------------------------------------------

    def _resume(self, payload: dict[str, Any]) -> None:
        """Continue from a checkpoint written by any number of processes."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.state = RunState(**payload["run_state"])
        self.carry = self._my_rows(payload["carry"])
        if self.fpp is not None:
            self.fpp.load_state_dict(payload["fpp"])
        rngs = payload.get("rank_rngs") or [payload["rng"]]
        if len(rngs) == self.dist.world:
            torch.set_rng_state(rngs[self.dist.rank])
        elif self.dist.is_main:
            torch.set_rng_state(payload["rng"])
        log.info("resumed %s at epoch %d step %d", self.exp_dir / "last.pt",
                 self.state.epoch + 1, self.state.step_in_epoch)

    def _check_schedule(self, old: int | None) -> None:
        """A ``decay_from`` changed on resuming (from ``old``; None: unchanged) must name no
        epoch already done, old or new, so that the run so far is what it prescribes."""
        new, done = self.config.train.decay_from, self.state.epoch
        if old is not None and any(0 < e <= done for e in (old, new)):
            raise InputError(f"{self.exp_dir}: train.decay_from {old} -> {new}: this run has "
                             f"done {done} epochs, so the schedule may only change to start "
                             f"after epoch {done}, and only if it had not started")

    def _my_rows(self, carry: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        """This process's rows of the whole batch's carried state."""
        if carry is None or self.dist.world == 1:
            return carry
        rows, r, w = carry[0].shape[0], self.dist.rank, self.dist.world
        return [c[rows * r // w: rows * (r + 1) // w].to(self.device) for c in carry]

    def save(self, name: str = "last.pt") -> None:
        """Write a checkpoint (rank 0, atomically); in several processes every one calls this."""
        carry, rng = self.carry, torch.get_rng_state()
        extra: dict[str, Any] = {}
        if self.dist.world > 1:
            parts = self.dist.gather(None if carry is None else [c.cpu() for c in carry])
            carry = None if carry is None else [torch.cat(c) for c in zip(*parts)]
            extra["rank_rngs"] = self.dist.gather(rng)
        if self.dist.is_main:
            save_checkpoint(self.exp_dir / name, self.model, self.vocab, self.config,
                            optimizer=self.optimizer.state_dict(), run_state=asdict(self.state),
                            carry=carry, rng=rng, **self.units.to_checkpoint(),
                            fpp=None if self.fpp is None else self.fpp.state_dict(), **extra)
        self.dist.barrier()  # no process reads a checkpoint before it is written

    # ---- one step ----------------------------------------------------------------------

    def batches(self, epoch: int) -> Sequence[Batch]:
        """The whole batches of an epoch (every process sees the same; ``step`` takes its rows)."""
        t, order = self.config.train, self.config.model.order
        if t.batching == "sentence":
            return SentenceBatches(self.data["train"], self.vocab, t.batch_size,
                                   shuffle_seed=t.seed * 1000 + epoch)
        return StreamBatches(self.data["train"], self.vocab, t.batch_size, t.bptt_len,
                             context=0 if order is None else order - 1)

    def step(self, batch: Batch) -> float:
        """One update on ``batch`` (this process's rows of it); returns its summed NLL (over
        all processes)."""
        self.model.train()
        if self.fpp is not None:  # online: the streams continue unless the epoch restarts them
            nll = self.fpp.train_batch(batch.inputs, batch.targets, start=self.carry is None)
            self.carry = [self.fpp.learner.state]
            return nll
        dev, world = self.device, self.dist.world
        part = shard(batch, self.dist.rank, world)
        weight = world
        if part is None:  # fewer rows than processes: a zero-weight row keeps DDP in step
            part = Batch(batch.inputs[:1], batch.targets[:1], batch.mask[:1], batch.carry)
            weight = 0
        state = self.carry if part.carry else None
        loss, final = self.loss(part.inputs.to(dev), part.targets.to(dev), part.mask.to(dev),
                                state)
        self.optimizer.zero_grad()
        (loss * weight / batch.num_tokens).backward()
        if self.config.train.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.clip)
        self.optimizer.step()
        self.carry = [s.detach() for s in final] if part.carry else None
        return self.dist.sum(float(loss.detach()) if weight else 0.0)

    # ---- the loop ----------------------------------------------------------------------

    def evaluate(self, split: str, order: int | None | str = "model") -> Perplexity:
        t = self.config.train
        result = perplexity(self.model, self.data[split], self.vocab, t.batching,
                            t.eval_batch_size, t.bptt_len, order, self.dist.rank, self.dist.world)
        return replace(result, nll=self.dist.sum(result.nll))

    def run(self) -> dict[str, Any]:
        """Train until done (resuming if possible), then evaluate the best model on valid/test."""
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            self.vocab.save(self.exp_dir / "words.txt")
            atomic_write_text(self.exp_dir / "config.yaml", yaml.safe_dump(self.config.to_dict()))
        t, s = self.config.train, self.state
        if s.history:  # resumed: a kill may have come between the checkpoint and these
            self._write_metrics()
        while not s.done and s.epoch < t.epochs:
            self._train_epoch()
        return self.final_results()

    def _write_metrics(self) -> None:
        """metrics.json and curves.png from the run state's history (the checkpoint's)."""
        if self.dist.is_main:
            s = self.state
            atomic_write_text(self.exp_dir / "metrics.json",
                              json.dumps(s.history, indent=1) + "\n")
            plot_curves(s.history, self.exp_dir / "curves.png", title=self.exp_dir.name)

    def _train_epoch(self) -> None:
        t, s = self.config.train, self.state
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr
        batches = self.batches(s.epoch)
        if s.step_in_epoch == 0:
            self.carry, s.train_nll, s.train_tokens, s.epoch_seconds = None, 0.0, 0, 0.0
        bar = tqdm(range(s.step_in_epoch, len(batches)), desc=f"epoch {s.epoch + 1}",
                   initial=s.step_in_epoch, total=len(batches), mininterval=5, leave=False,
                   disable=not self.dist.is_main)
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
        improved = valid.ppl < s.best_valid
        if improved:
            s.best_valid, s.bad_epochs = valid.ppl, 0
            self.save("best.pt")
        else:
            s.bad_epochs += 1
        if not improved or 0 < t.decay_from <= s.epoch:
            s.lr *= t.lr_decay
        s.done = s.bad_epochs >= t.early_stop or s.lr < t.min_lr
        self.save()
        self._write_metrics()

    def final_results(self) -> dict[str, Any]:
        """Perplexities of ``best.pt`` at the model's order (and exact, for an AFP model)."""
        self.model.load_state_dict(load_checkpoint(self.exp_dir / "best.pt")["model"])
        s = self.state
        results: dict[str, Any] = {
            "method": self.config.train.method, "order": self.config.model.order,
            "epochs": s.epoch, "train_seconds": sum(r["seconds"] for r in s.history)}
        for split in [s for s in ("valid", "test") if s in self.data]:
            results[f"{split}_ppl"] = self.evaluate(split).ppl
            if self.config.model.order is not None:
                results[f"{split}_ppl_exact"] = self.evaluate(split, order=None).ppl
        if self.dist.is_main:
            atomic_write_text(self.exp_dir / "results.json",
                              json.dumps(results, indent=1) + "\n")
        log.info("results: %s", results)
        self.dist.barrier()  # no process tears the job down while another still works
        return results
