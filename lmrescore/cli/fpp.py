"""lmrescore fpp: online FPP / T-BPTT runs on CycleWorld and sequential MNIST."""

from __future__ import annotations

import argparse
import shlex


CONFIG = " (default: the config's)"  # the options that override a config value


def register(sub: argparse._SubParsersAction) -> None:
    from lmrescore.cli.options import HelpFormatter

    p = sub.add_parser("fpp", help=__doc__.split(": ", 1)[1], description=__doc__,
                       formatter_class=HelpFormatter)
    tasks = p.add_subparsers(dest="task", required=True)
    for task in ("cycleworld", "seqmnist"):
        t = tasks.add_parser(task, help=f"one {task} run (all its seeds) -> JSON record",
                             formatter_class=HelpFormatter)
        t.add_argument("--config", required=True, help="conf/<task>.yaml (OnlineConfig keys)")
        t.add_argument("--out", required=True, help="JSON record to write")
        t.add_argument("--method", choices=["fpp", "tbptt"], help="training method" + CONFIG)
        t.add_argument("--updates", type=int, help="FPP: n, updates per step" + CONFIG)
        t.add_argument("--buffer", type=int, help="FPP: N, buffer size" + CONFIG)
        t.add_argument("--target-only", action="store_true", help="FPP: no state loss (ablation)")
        t.add_argument("--window", type=int,
                       help="FPP: W, steps recomputed from a stored state to the scored one"
                       + CONFIG)
        t.add_argument("--state-lr", type=float,
                       help="FPP: step size of the stored start states' update (0: off)"
                       + CONFIG)
        t.add_argument("--truncation", type=int, help="T-BPTT: T" + CONFIG)
        t.add_argument("--every", type=int, help="T-BPTT: update every this many steps" + CONFIG)
        t.add_argument("--optimizer", choices=["adagrad", "adam", "rmsprop"],
                       help="optimizer (the authors' code: rmsprop)" + CONFIG)
        t.add_argument("--lr", type=float, help="learning rate" + CONFIG)
        t.add_argument("--steps", type=int, help="online steps" + CONFIG)
        t.add_argument("--runs", type=int, help="seeds trained together" + CONFIG)
        if task == "cycleworld":
            t.add_argument("--period", type=int, default=6, help="p")
        else:
            t.add_argument("--mnist-dir", required=True, help="folder with the MNIST IDX files")
            t.add_argument("--eval-every", type=int, default=4000, help="steps between tests")
            t.add_argument("--test-images", type=int, default=0, help="score this many (0: all)")
        t.set_defaults(func=run)


def online_config(args: argparse.Namespace):  # -> OnlineConfig
    """The YAML config with the command-line overrides applied."""
    import yaml

    from lmrescore.lm.config import from_dict
    from lmrescore.errors import InputError
    from lmrescore.online.runs import OnlineConfig

    try:
        with open(args.config, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except OSError as e:
        raise InputError(f"{args.config}: {e.strerror}") from None
    fpp = raw.setdefault("fpp", {})
    for key, value in [("method", args.method), ("truncation", args.truncation),
                       ("every", args.every), ("optimizer", args.optimizer), ("lr", args.lr),
                       ("steps", args.steps), ("runs", args.runs)]:
        if value is not None:
            raw[key] = value
    for key, value in [("updates", args.updates), ("buffer", args.buffer),
                       ("state_lr", args.state_lr), ("window", args.window)]:
        if value is not None:
            fpp[key] = value
    if args.target_only:
        fpp["target_only"] = True
    return from_dict(OnlineConfig, raw, args.config)


def command_line(args: argparse.Namespace) -> str:
    """The ``lmrescore fpp <task>`` command that reproduces this run."""
    words = ["lmrescore", "fpp", args.task]
    for key, value in vars(args).items():
        if key in ("func", "task", "command", "log_level") or value is None or value is False:
            continue
        words += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from lmrescore.formats.outputs import check_output
    from lmrescore.online.runs import write_result

    check_output(args.out, "--out")
    config = online_config(args)
    if args.task == "cycleworld":
        from lmrescore.online.cycleworld import run_cycleworld

        result = run_cycleworld(config, args.period)
    else:
        from lmrescore.online.seqmnist import run_seqmnist

        result = run_seqmnist(config, args.mnist_dir, eval_every=args.eval_every,
                              test_images=args.test_images)
    write_result(args.out, config, result, command_line(args))
    finals = ", ".join(f"{a:.3f}" for a in result["final"])
    print(f"{config.name}: final accuracy per seed {finals}; {result['steps_per_s']:.0f} steps/s")
    return 0
