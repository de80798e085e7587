"""lmrescore eval --json: one JSON record per order, the same numbers as the text lines."""

import json
from pathlib import Path

import pytest

from lmrescore.cli import main
from lmrescore.lm.config import ExperimentConfig
from lmrescore.training.trainer import Trainer
from toy_corpus import write_toy_corpus


def test_eval_json_prints_one_record_per_order(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_toy_corpus(tmp_path / "toy")
    config = ExperimentConfig.from_dict({
        "model": {"cell": "gru", "hidden_dim": 8, "order": 2},
        "train": {"method": "afp", "batching": "sentence", "batch_size": 16, "epochs": 1}})
    Trainer(config, corpus, tmp_path / "exp").run()
    args = ["eval", "--model", str(tmp_path / "exp" / "best.pt"),
            "--text", str(corpus / "ptb.test.txt"), "--exact"]
    assert main(args) == 0
    text_lines = capsys.readouterr().out.strip().splitlines()[-2:]
    assert main(args + ["--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["order"] for r in records] == [2, None]  # the model's K, then the exact recurrence
    for r, line in zip(records, text_lines):
        assert set(r) == {"text", "order", "batching", "ppl", "words", "tokens"}
        assert (r["text"], r["batching"]) == (str(corpus / "ptb.test.txt"), "sentence")
        assert f"ppl {r['ppl']:.2f} ({r['words']} words incl. </s>, {r['tokens']} tokens)" in line
    assert records[0]["ppl"] != records[1]["ppl"]
