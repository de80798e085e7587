"""egs/utils/score_kaldi.sh on a Kaldi decode dir (gzipped lattices, num_jobs): the files and
formats of Kaldi's steps/score_kaldi.sh, every number recounted with kaldialign on the written
hypotheses, the filter hooks, --stage 1, and Kaldi's best_wer.sh logic in the shell."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import kaldialign
import pytest

from lmrescore.rescoring.metrics import read_text
from test_cli_score import FIXTURES, UTTS, WORDS
from test_decode_dir import UTILS, decode_dir

LMWTS, WIPS = ("9", "10", "11"), ("0.0", "1.0")
WER = re.compile(r"%WER (\d+\.\d\d) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]"
                 r"( \[PARTIAL\])?")
SER = re.compile(r"%SER (\d+\.\d\d) \[ (\d+) / (\d+) \]")
SCORED = re.compile(r"Scored (\d+) sentences, (\d+) not present in hyp\.")
# drops every "said" from the hypotheses, keeping int2sym.pl's 'field ' layout
HYP_FILTER = """#!/bin/sh
awk '{for (i = 1; i <= NF; i++) if ($i != "said") printf "%s ", $i; print ""}'
"""


def score_kaldi(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{UTILS}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(UTILS / "score_kaldi.sh"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Path:
    """A decode dir of the 5 fixture lattices in 3 jobs, scored with a local/wer_hyp_filter."""
    root = tmp_path_factory.mktemp("score_kaldi")
    decode_dir(root / "decode")
    (root / "data").mkdir()
    (root / "data" / "text").write_text((FIXTURES / "text").read_text())
    (root / "data" / "utt2spk").write_text("".join(
        f"{u} {'spk-a' if i < 2 else 'spk-b'}\n" for i, u in enumerate(UTTS)))
    (root / "local").mkdir()
    (root / "local" / "wer_hyp_filter").write_text(HYP_FILTER)
    (root / "local" / "wer_hyp_filter").chmod(0o755)
    run = score_kaldi(root, "--min-lmwt", "9", "--max-lmwt", "11", "--word-ins-penalty",
                      ",".join(WIPS), "data", WORDS, "decode")
    assert run.returncode == 0, run.stderr
    return root


def test_every_file_of_kaldis_layout_is_written(scored: Path):
    dir = scored / "decode"
    sk = dir / "scoring_kaldi"
    for wip in WIPS:
        for lmwt in LMWTS:
            assert (sk / f"penalty_{wip}" / f"{lmwt}.txt").is_file()
            assert (dir / f"wer_{lmwt}_{wip}").is_file()
    assert sorted(p.name for p in dir.glob("wer_*")) == sorted(
        f"wer_{lmwt}_{wip}" for lmwt in LMWTS for wip in WIPS)
    for name in ("best_wer", "test_filt.txt", "wer_details/per_utt", "wer_details/per_spk",
                 "wer_details/ops", "wer_details/lmwt", "wer_details/wip"):
        assert (sk / name).is_file(), name
    assert (sk / "test_filt.txt").read_text() == (FIXTURES / "text").read_text()  # no filter


def test_wer_files_are_compute_wers_lines_and_recount_with_kaldialign(scored: Path):
    refs = read_text(scored / "decode" / "scoring_kaldi" / "test_filt.txt")
    for wip in WIPS:
        for lmwt in LMWTS:
            hyps = read_text(scored / "decode" / "scoring_kaldi" / f"penalty_{wip}" / f"{lmwt}.txt")
            assert set(hyps) == set(UTTS)
            lines = (scored / "decode" / f"wer_{lmwt}_{wip}").read_text().splitlines()
            assert len(lines) == 3
            w, s, n = WER.fullmatch(lines[0]), SER.fullmatch(lines[1]), SCORED.fullmatch(lines[2])
            assert w and s and n, lines
            counts = [kaldialign.edit_distance(refs[u], hyps[u]) for u in UTTS]
            ins, dels, subs = (sum(c[k] for c in counts) for k in ("ins", "del", "sub"))
            words = sum(len(refs[u]) for u in UTTS)
            assert [int(x) for x in w.groups()[1:6]] == [ins + dels + subs, words, ins, dels, subs]
            assert w.group(1) == f"{100 * (ins + dels + subs) / words:.2f}" and not w.group(7)
            wrong = sum(refs[u] != hyps[u] for u in UTTS)
            assert s.groups() == (f"{100 * wrong / len(UTTS):.2f}", str(wrong), str(len(UTTS)))
            assert n.groups() == (str(len(UTTS)), "0")


def test_hyp_filter_is_applied(scored: Path):
    texts = [p.read_text() for p in (scored / "decode" / "scoring_kaldi").glob("penalty_*/*.txt")]
    assert len(texts) == 6 and not any(" said " in t for t in texts)
    assert all(line.endswith(" ") for t in texts for line in t.splitlines())


def test_best_wer_is_the_lowest_and_the_details_are_its_point(scored: Path):
    dir = scored / "decode"
    sk = dir / "scoring_kaldi"
    first = {(lmwt, wip): (dir / f"wer_{lmwt}_{wip}").read_text().splitlines()[0]
             for wip in WIPS for lmwt in LMWTS}  # Kaldi's order: penalty-major
    lowest = min(float(v.split()[1]) for v in first.values())
    lmwt, wip = next(k for k, v in first.items() if float(v.split()[1]) == lowest)
    assert (sk / "best_wer").read_text() == f"{first[lmwt, wip]} decode/wer_{lmwt}_{wip}\n"
    assert (sk / "wer_details" / "lmwt").read_text() == f"{lmwt}\n"
    assert (sk / "wer_details" / "wip").read_text() == f"{wip}\n"
    errors, words = (int(x) for x in WER.match(first[lmwt, wip]).groups()[1:3])

    per_utt = (sk / "wer_details" / "per_utt").read_text().splitlines()
    assert [line.split(" ", 2)[1] for line in per_utt] == ["ref", "hyp", "op", "#csid"] * 5
    csid = [[int(x) for x in line.split()[2:]] for line in per_utt if " #csid " in line]
    assert sum(c + s + d for c, s, i, d in csid) == words
    assert sum(s + i + d for c, s, i, d in csid) == errors
    per_spk = (sk / "wer_details" / "per_spk").read_text().splitlines()
    assert [line.split()[:2] for line in per_spk] == [
        ["SPEAKER", "id"], ["spk-a", "raw"], ["spk-a", "sys"], ["spk-b", "raw"], ["spk-b", "sys"],
        ["SUM", "raw"], ["SUM", "sys"]]
    total = [int(x) for x in per_spk[5].split()[2:]]
    assert total[:2] == [5, words] and total[6] == errors
    assert total[2:6] == [sum(x[k] for x in csid) for k in range(4)]
    ops = (sk / "wer_details" / "ops").read_text().splitlines()
    kinds = {"correct": 0, "substitution": 1, "insertion": 2, "deletion": 3}
    by_kind = [0, 0, 0, 0]
    for line in ops:
        by_kind[kinds[line.split()[0]]] += int(line.split()[3])
    assert by_kind == total[2:6]


def test_kaldis_best_wer_logic_in_the_shell_agrees(scored: Path):
    """score_kaldi.sh's stage 1 in the shell: grep WER of every wer file, the lowest as
    utils/best_wer.sh turns it round ('%WER ... file'), and the point from the file name."""
    script = r"""
    dir=decode
    for wip in 0.0 1.0; do for lmwt in 9 10 11; do grep WER $dir/wer_${lmwt}_${wip} /dev/null
    done; done | awk 'BEGIN{ FS="%WER" } { print "%WER"$2" "$1 }' | sed -e 's|:$||' \
      | sort -s -g -k2,2 | head -n 1 > best
    best_wer_file=$(awk '{print $NF}' best)
    echo $(awk '{print $2}' best) $(echo $best_wer_file | awk -F_ '{N=NF-1; print $N}') \
      $(echo $best_wer_file | awk -F_ '{print $NF}')
    """
    out = subprocess.run(["bash", "-c", script], cwd=scored, capture_output=True, text=True,
                         env={**os.environ, "LC_ALL": "C"}, check=True).stdout.split()
    best = (scored / "decode" / "scoring_kaldi" / "best_wer").read_text().split()
    details = scored / "decode" / "scoring_kaldi" / "wer_details"
    assert out[0] == best[1]
    assert out[1:] == [(details / name).read_text().strip() for name in ("lmwt", "wip")]


def test_stage_1_remakes_the_details_from_the_wer_files(scored: Path, tmp_path: Path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(scored, root, symlinks=True)
    sk = root / "decode" / "scoring_kaldi"
    shutil.rmtree(sk / "wer_details")
    (sk / "best_wer").unlink()
    hyp = sk / "penalty_0.0" / "9.txt"
    before = hyp.stat().st_mtime_ns
    run = score_kaldi(root, "--stage", "1", "--min-lmwt", "9", "--max-lmwt", "11",
                      "--word-ins-penalty", ",".join(WIPS), "data", WORDS, "decode")
    assert run.returncode == 0, run.stderr
    assert hyp.stat().st_mtime_ns == before
    for name in ("best_wer", "wer_details/per_utt", "wer_details/per_spk", "wer_details/ops"):
        assert (sk / name).read_text() == (scored / "decode" / "scoring_kaldi" / name).read_text()


def test_a_ref_filter_makes_test_filt_and_a_missing_hypothesis_is_partial(tmp_path: Path):
    decode_dir(tmp_path / "decode")
    (tmp_path / "data").mkdir()
    # the reference of an utterance that has no lattice: compute-wer --mode=present skips it
    (tmp_path / "data" / "text").write_text((FIXTURES / "text").read_text() + "extra a b\n")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "wer_output_filter").write_text(
        "#!/bin/sh\nawk '{for (i = 2; i <= NF; i++) $i = toupper($i); print}'\n")
    (tmp_path / "local" / "wer_output_filter").chmod(0o755)
    (tmp_path / "local" / "wer_ref_filter").write_text("#!/bin/sh\nsed 's/ said / /'\n")
    (tmp_path / "local" / "wer_ref_filter").chmod(0o755)
    run = score_kaldi(tmp_path, "--min-lmwt", "10", "--max-lmwt", "10", "--word-ins-penalty",
                      "0.0", "data", WORDS, "decode")
    assert run.returncode == 0, run.stderr
    sk = tmp_path / "decode" / "scoring_kaldi"
    # refs: wer_ref_filter wins over wer_output_filter; hyps: wer_output_filter
    assert " said " not in (sk / "test_filt.txt").read_text()
    assert "extra A B" not in (sk / "test_filt.txt").read_text()
    hyps = read_text(sk / "penalty_0.0" / "10.txt")
    assert list(hyps) == UTTS and all(w.isupper() for u in UTTS for w in hyps[u])
    lines = (tmp_path / "decode" / "wer_10_0.0").read_text().splitlines()
    assert lines[0].endswith(" [PARTIAL]")
    assert lines[2] == "Scored 5 sentences, 1 not present in hyp."
    # no utt2spk: every utterance is its own speaker
    per_spk = (sk / "wer_details" / "per_spk").read_text().splitlines()
    assert [line.split()[0] for line in per_spk[1::2]] == UTTS + ["SUM"]
