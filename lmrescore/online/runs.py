"""One online experiment: settings, learner construction, and the result record it writes."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lmrescore.atomic import atomic_write_text
from lmrescore.online.ensemble import Ensemble
from lmrescore.lm.config import FPPConfig
from lmrescore.online.fpp import FPPLearner
from lmrescore.online.tbptt import TBPTTLearner

Learner = FPPLearner | TBPTTLearner
# element-wise optimizers only: each packed run must be updated as if it were alone
OPTIMIZERS = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam,
              "rmsprop": torch.optim.RMSprop}


@dataclass
class OnlineConfig:
    """An online run over R seeds at once.

    Attributes:
        method: "fpp" or "tbptt".
        cell: "rnn", "gru" or "lstm".
        hidden: units per run.
        optimizer: "adagrad", "adam" or "rmsprop" (torch defaults besides lr; the authors'
            code uses RMSProp).
        lr: learning rate.
        runs: R, seeds trained together (seed, seed+1, ...).
        seed: first seed.
        steps: online steps (sequential MNIST: training steps; 0 = one pass).
        truncation: T for "tbptt".
        every: "tbptt" updates every this many steps (T = every = sequence length: full BPTT).
        fpp: FPP settings.
    """

    method: str = "fpp"
    cell: str = "rnn"
    hidden: int = 4
    optimizer: str = "adagrad"
    lr: float = 0.1
    runs: int = 5
    seed: int = 1
    steps: int = 300_000
    truncation: int = 1
    every: int = 1
    fpp: FPPConfig = field(default_factory=FPPConfig)

    def __post_init__(self) -> None:
        if self.method not in ("fpp", "tbptt"):
            raise ValueError(f"method must be 'fpp' or 'tbptt', got {self.method!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")

    @property
    def name(self) -> str:
        """A file stem spelling the method's settings, e.g. fpp_n1_N1000, fpp_n1_N1000_W10 or
        tbptt_T4."""
        if self.method == "tbptt":
            return f"tbptt_T{self.truncation}" + (f"_every{self.every}" if self.every > 1 else "")
        f = self.fpp
        return (f"fpp_n{f.updates}_N{f.buffer}" + (f"_W{f.window}" if f.window > 1 else "")
                + ("_target-only" if f.target_only else "")
                + (f"_refresh{f.refresh}" if f.refresh else ""))


def make_learner(config: OnlineConfig, input_size: int, classes: int,
                 ) -> tuple[Ensemble, Learner]:
    """The R-run model and its online learner, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    model = Ensemble(config.cell, config.runs, input_size, config.hidden, classes, config.seed)
    opt_cls = OPTIMIZERS[config.optimizer]
    # fused (less overhead) where the optimizer has it
    kwargs = {"fused": True} if config.optimizer != "rmsprop" else {"foreach": True}
    optimizer = opt_cls(model.parameters(), lr=config.lr, **kwargs)
    if config.method == "fpp":
        return model, FPPLearner(model, optimizer, config.fpp, seed=config.seed)
    return model, TBPTTLearner(model, optimizer, config.truncation, config.every)


def git_commit() -> str:
    """The current commit of the working tree's repository, or "unknown"."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_result(path: str | Path, config: OnlineConfig, result: dict[str, Any],
                 command: str) -> None:
    """Write one run's record (settings, measurements, command, commit) as JSON, atomically."""
    record = {"config": asdict(config), "name": config.name, "command": command,
              "commit": git_commit(), **result}
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
