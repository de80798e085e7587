"""Every command's --help shows every option's default, and mentions only options that exist."""

from __future__ import annotations

import argparse
import re

import pytest

from lmrescore.cli import build_parser
from lmrescore.cli.options import HelpFormatter


def parsers() -> dict[str, argparse.ArgumentParser]:
    """'lmrescore', 'lmrescore info', 'lmrescore fpp seqmnist', ...: every (sub)command."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        found[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    walk(f"{name} {sub}", child)

    walk("lmrescore", build_parser())
    return found


def option_help(help_text: str, option: str) -> str:
    """The entry of ``option`` in a format_help() text: its line (two spaces, then the option)
    and the indented lines under it."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if re.match(rf"  (-\w, )?{re.escape(option)}(?![\w-])", line))
    end = next((i for i in range(start + 1, len(lines))
                if not lines[i].startswith("   ")), len(lines))
    return " ".join(line.strip() for line in lines[start:end])


WITH_DEFAULTS = list(parsers())


@pytest.mark.parametrize("name", WITH_DEFAULTS)
def test_every_option_shows_its_default(name: str) -> None:
    parser = parsers()[name]
    assert parser.formatter_class is HelpFormatter
    help_text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.default is argparse.SUPPRESS or action.required:
            continue  # positionals, --help and required options have no default
        text = option_help(help_text, action.option_strings[-1])
        assert re.search(r"\(default:? [^)]", text) or "default: " in text, (name, text)


def test_the_default_is_said_once() -> None:
    for name in WITH_DEFAULTS:
        for line in parsers()[name].format_help().split("  -"):
            assert line.count("default") <= 1, (name, line)


OTHER_TOOLS = {"--standalone", "--nproc-per-node"}  # torchrun's, in score's examples


@pytest.mark.parametrize("name", list(parsers()))
def test_help_mentions_only_options_that_exist(name: str) -> None:
    all_parsers = parsers()
    options = {o for p in all_parsers.values() for a in p._actions for o in a.option_strings}
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", all_parsers[name].format_help()))
    assert mentioned <= options | OTHER_TOOLS, mentioned - options - OTHER_TOOLS
