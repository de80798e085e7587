"""Why T-BPTT with T < p learns p-CycleWorld here: change one factor at a time.

Each probe trains ``--runs`` seeds (1, 2, ...) for ``--steps`` steps on 6-CycleWorld with the
recipe's settings (conf/cycleworld.yaml: 4 tanh units, Adagrad lr 0.1) except the one factor it
names, writes its record under ``--out`` and prints one Markdown table row: seeds learned (online
accuracy over the whole run above naive + 1 point, the paper's measure), mean final (last 10%)
and whole-run accuracies. local/why_tbptt.md quotes the table.

Usage (from egs/cycleworld/s5): python3 local/why_tbptt.py [--out exp/why_tbptt] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from lmrescore.lm.config import from_dict
from lmrescore.online.ensemble import Ensemble, run_cross_entropy
from lmrescore.online.fpp import FPPConfig, FPPLearner
from lmrescore.online.cycleworld import run_cycleworld
from lmrescore.online.runs import Learner, OnlineConfig, make_learner, write_result


class BufferTBPTT1(FPPLearner):
    """T-BPTT at T = 1 on transitions sampled from the replay buffer, as the authors' TensorFlow
    code trains its T-BPTT baseline (``use_buffer_bptt``): the stored s[t-1] (computed online with
    older weights) is the constant start state, the loss is CE on y[t] only, nothing is written
    back."""

    def update(self) -> None:
        buf, m = self.buffer, self.model
        tr = buf.gather(buf.sample(self.config.batch, self.generator))
        s_prev = tr["s_prev"].masked_fill(tr["start"][..., None], 0.0)
        loss = run_cross_entropy(m.logits(m.step(m.join(s_prev), tr["o"])), tr["y"])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def tf_init(model: Ensemble, seed: int) -> None:
    """Re-initialise like the authors' TensorFlow cell: Glorot-uniform kernels, zero biases."""
    g = torch.Generator().manual_seed(seed)
    e, h, c = model.input_size, model.hidden_size, model.classes
    with torch.no_grad():
        kernels = [(model.cell.input.weight, e + 2 * h), (model.cell.recurrent.weight, e + 2 * h),
                   (model.readout.weight, h + c)]
        for w, fan in kernels:
            bound = (6 / fan) ** 0.5
            w.copy_(torch.rand(w.shape, generator=g) * 2 * bound - bound)
        model.cell.input.bias.zero_()
        model.readout.bias.zero_()


Change = Callable[[Ensemble, Learner, OnlineConfig], Learner]


def freeze(*names: str) -> Change:
    """Stop training the named submodules of the cell (``input``, ``recurrent``)."""
    def change(model: Ensemble, learner: Learner, config: OnlineConfig) -> Learner:
        for name in names:
            for p in getattr(model.cell, name).parameters():
                p.requires_grad_(False)
        return learner
    return change


def buffer_tbptt(model: Ensemble, learner: Learner, config: OnlineConfig) -> Learner:
    return BufferTBPTT1(model, learner.optimizer, FPPConfig(buffer=1000), seed=config.seed)


def reinit(model: Ensemble, learner: Learner, config: OnlineConfig) -> Learner:
    tf_init(model, config.seed)
    return learner


T1 = {"method": "tbptt", "truncation": 1}
FPP1 = {"method": "fpp"}
# name -> (what changes, config overrides, change to the built learner)
PROBES: dict[str, tuple[str, dict, Change | None]] = {
    "tbptt_T1": ("none (the recipe)", T1, None),
    "fpp_n1": ("none (the recipe)", FPP1, None),
    "tbptt_T3": ("none (the recipe)", {"method": "tbptt", "truncation": 3}, None),
    "tbptt_T3_every3": ("update every T steps, all T targets scored",
                        {"method": "tbptt", "truncation": 3, "every": 3}, None),
    "tbptt_T1_adagrad0.01": ("Adagrad lr 0.01", {**T1, "lr": 0.01}, None),
    "fpp_n1_adagrad0.01": ("Adagrad lr 0.01", {**FPP1, "lr": 0.01}, None),
    **{f"{m}_rmsprop{lr}": (f"RMSProp lr {lr} (the authors' optimizer)",
                            {**c, "optimizer": "rmsprop", "lr": lr}, None)
       for lr in (0.003, 0.01, 0.03) for m, c in (("tbptt_T1", T1), ("fpp_n1", FPP1))},
    "tbptt_T1_buffer": ("T-BPTT on buffer samples (authors' TF code)", T1, buffer_tbptt),
    "tbptt_T1_buffer_rmsprop0.01": ("T-BPTT on buffer samples, RMSProp lr 0.01",
                                    {**T1, "optimizer": "rmsprop", "lr": 0.01}, buffer_tbptt),
    "tbptt_T1_tfinit": ("TF init (Glorot, zero biases)", T1, reinit),
    "tbptt_T1_hidden2": ("2 hidden units", {**T1, "hidden": 2}, None),
    "tbptt_T1_hidden8": ("8 hidden units", {**T1, "hidden": 8}, None),
    "tbptt_T1_fixed_recurrent": ("W_h not trained", T1, freeze("recurrent")),
    "tbptt_T1_readout_only": ("cell not trained (echo state)", T1, freeze("input", "recurrent")),
}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="conf/cycleworld.yaml")
    p.add_argument("--out", default="exp/why_tbptt", help="folder for the JSON records")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--period", type=int, default=6)
    p.add_argument("--only", nargs="+", choices=sorted(PROBES), help="run these probes only")
    args = p.parse_args(argv)
    base = from_dict(OnlineConfig, yaml.safe_load(Path(args.config).read_text()), args.config)
    base = dataclasses.replace(base, steps=args.steps, runs=args.runs)
    command = shlex.join(["python3", "local/why_tbptt.py", *argv])
    print("| probe | changed | seeds learned | final % | whole run % |\n|---|---|---|---|---|")
    for name in args.only or PROBES:
        what, overrides, change = PROBES[name]
        config = dataclasses.replace(base, **overrides)
        model, learner = make_learner(config, input_size=2, classes=2)
        if change is not None:
            learner = change(model, learner, config)
        result = run_cycleworld(config, args.period, learner=learner)
        write_result(Path(args.out) / f"{name}.json", config, result, command)
        whole = [statistics.fmean(c) for c in result["curve"]]
        learned = sum(a > result["naive"] + 0.01 for a in whole)
        print(f"| {name} | {what} | {learned}/{len(whole)} | "
              f"{100 * statistics.fmean(result['final']):.1f} | "
              f"{100 * statistics.fmean(whole):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
