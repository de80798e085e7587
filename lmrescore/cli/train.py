"""lmrescore train: train an RNN LM from a YAML config; rerun to resume after a kill."""

from __future__ import annotations

import argparse
import json

import yaml

from lmrescore.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=__doc__.split(": ", 1)[1],
                       description=__doc__)
    p.add_argument("--config", required=True, help="models/<name>.yaml")
    p.add_argument("--corpus-dir", required=True,
                   help="folder with the corpus files (ptb.train.txt ... or wiki.train.tokens ...)")
    p.add_argument("--exp-dir", required=True, help="output folder; resumes from its last.pt")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--num-threads", type=int,
                   help="CPU threads for torch (default: torch's; use 1 per job with --nj)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2 or "
                        "--set train.fpp.window=5 (repeatable)")
    p.set_defaults(func=run)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set ``section.key=value`` pairs in a raw config dict: the key is a dotted path of any
    depth (``train.fpp.window``), the value is parsed as YAML."""
    for item in overrides:
        key, sep, value = item.partition("=")
        *sections, name = key.split(".")
        if not sep or not sections or not all(sections) or not name:
            raise InputError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {item!r}: {section} is a value, not a section")
        node[name] = yaml.safe_load(value)
    return raw


def run(args: argparse.Namespace) -> int:
    from lmrescore.lm.config import ExperimentConfig
    from lmrescore.training.trainer import Trainer

    raw = ExperimentConfig.load(args.config).to_dict()
    config = ExperimentConfig.from_dict(apply_overrides(raw, args.set), args.config)
    results = Trainer(config, args.corpus_dir, args.exp_dir, args.device).run()
    print(json.dumps(results))
    return 0
