"""CLI convert / info smoke tests on the PocketSphinx fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from formats_testing import assert_same

from lmrescore.cli import main
from lmrescore.formats import read_lattices
from lmrescore.vocab import Vocab

FIXTURES = Path(__file__).parent / "fixtures"
WORDS = str(FIXTURES / "words.txt")


def _read(spec: str, fmt: str = "kaldi") -> list:
    return [x for _, x in read_lattices(spec, fmt, Vocab.load(WORDS))]


def test_convert_chain_kaldi_slf_k2_kaldi(tmp_path: Path) -> None:
    ark = f"ark:{FIXTURES / 'lats.ark'}"
    assert main(["convert", ark, str(tmp_path / "slf"), "--in-format", "kaldi",
                 "--out-format", "slf", "--words", WORDS]) == 0
    assert main(["convert", str(tmp_path / "slf"), str(tmp_path / "l.pt"), "--in-format", "slf",
                 "--out-format", "k2", "--words", WORDS]) == 0
    assert main(["convert", str(tmp_path / "l.pt"), f"ark,t:{tmp_path / 'l.txt'}",
                 "--in-format", "k2", "--out-format", "kaldi"]) == 0
    for a, b in zip(_read(ark), _read(f"ark:{tmp_path / 'l.txt'}")):
        assert_same(a, b, ragged=False)


def test_max_failures(tmp_path: Path) -> None:
    data = (FIXTURES / "lats.txt").read_bytes()
    bad = data.replace(b"ptb-002 \n0\t", b"ptb-002 \n0\tx", 1)
    (tmp_path / "bad.txt").write_bytes(bad)
    args = ["convert", f"ark:{tmp_path / 'bad.txt'}", f"ark:{tmp_path / 'out.ark'}",
            "--in-format", "kaldi", "--out-format", "kaldi"]
    assert main(args) == 1
    assert main(args + ["--max-failures", "0.2"]) == 0
    assert [x.utt_ids[0] for x in _read(f"ark:{tmp_path / 'out.ark'}")] == \
        ["ptb-001", "ptb-003", "ptb-004", "ptb-005"]


def test_info_reports_oracle_below_one_best(tmp_path: Path, capsys) -> None:
    assert main(["info", str(FIXTURES / "slf"), "--format", "slf", "--words", WORDS,
                 "--ref", str(FIXTURES / "text"), "--acoustic-scale", "1",
                 "--one-best", str(tmp_path / "hyp")]) == 0
    out = capsys.readouterr().out
    assert "5 lattices read, 0 failed" in out
    one_best = float(out.split("1-best WER ")[1].split("%")[0])
    oracle = float(out.split("oracle WER ")[1].split("%")[0])
    assert oracle < one_best
    hyp = (tmp_path / "hyp").read_text().splitlines()
    assert [h.split()[0] for h in hyp] == [f"ptb-00{i}" for i in range(1, 6)]


def test_subprocess_stdout_pipe() -> None:
    code = "import sys; from lmrescore.cli import main; sys.exit(main())"
    out = subprocess.run([sys.executable, "-c", code, "convert", f"ark:{FIXTURES / 'lats.ark'}",
                          "ark,t:-", "--in-format", "kaldi", "--out-format", "kaldi"],
                         capture_output=True, check=True).stdout
    assert out == (FIXTURES / "lats.txt").read_bytes()
    bad = subprocess.run([sys.executable, "-c", code, "convert", "ark:/nonexistent.ark", "x",
                          "--in-format", "kaldi", "--out-format", "kaldi"], capture_output=True)
    assert bad.returncode == 1 and b"error" in bad.stderr


def test_info_counts_a_corrupt_binary_entry(tmp_path: Path, capsys) -> None:
    data = (FIXTURES / "lats.ark").read_bytes()
    at = data.index(b"ptb-003 ") + len(b"ptb-003 ")
    (tmp_path / "bad.ark").write_bytes(data[:at] + b"\xff" + data[at + 1:])  # break its magic
    args = ["info", f"ark:{tmp_path / 'bad.ark'}", "--words", WORDS, "--one-best", "-"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "4 lattices read, 1 failed" in captured.err  # statistics beside, not in, the 1-best
    assert [x.split()[0] for x in captured.out.splitlines()] == \
        ["ptb-001", "ptb-002", "ptb-004", "ptb-005"]
    assert main(args + ["--max-failures", "0.2"]) == 0


def test_info_counts_lattices_lost_after_a_corrupt_binary_entry(tmp_path: Path, capsys) -> None:
    """ptb-003's arc type broken (its extent unknown) and ptb-004's key gone: reading resumes at
    ptb-005, and ptb-004, seen only as an FST in the skipped bytes, still counts as failed."""
    data = bytearray((FIXTURES / "lats.ark").read_bytes())
    at = data.index(b"ptb-003 ") + len(b"ptb-003 ") + 20
    data[at] ^= 0xFF
    at = data.index(b"ptb-004 ")
    data[at: at + 7] = bytes(7)
    (tmp_path / "bad.ark").write_bytes(bytes(data))
    args = ["info", f"ark:{tmp_path / 'bad.ark'}", "--words", WORDS, "--one-best", "-"]
    assert main(args) == 1
    out = capsys.readouterr()
    assert "3 lattices read, 2 failed" in out.err  # statistics beside the 1-best on stdout
    assert [x.split()[0] for x in out.out.splitlines() if x.startswith("ptb-")] == \
        ["ptb-001", "ptb-002", "ptb-005"]


def test_info_ref_words_outside_a_words_txt_without_unk_are_errors(tmp_path: Path,
                                                                   capsys) -> None:
    """A words.txt with no <unk> and a reference of words outside it: no KeyError; each such
    word is an error, so a reference of 3 unknown words costs max(3, hypothesis length)."""
    words = (FIXTURES / "words.txt").read_text().replace("<unk> 3\n", "!SIL 3\n")
    (tmp_path / "words.txt").write_text(words)
    (tmp_path / "text").write_text("ptb-001 xq1 xq2 xq3\n")
    args = ["info", str(FIXTURES / "slf"), "--format", "slf", "--words",
            str(tmp_path / "words.txt"), "--ref", str(tmp_path / "text"), "--acoustic-scale",
            "1", "--json", "--one-best", str(tmp_path / "hyp")]
    assert main(args) == 0
    stats = json.loads(capsys.readouterr().out)
    hyp = (tmp_path / "hyp").read_text().splitlines()[0].split()[1:]
    assert (stats["ref_words"], stats["one_best_errors"]) == (3, max(3, len(hyp)))
    assert stats["oracle_errors"] >= 3
