"""egs/utils/lmrescore_decode_dir.sh on a Kaldi decode dir: 3 gzipped binary archives rescored
by 3 jobs through $cmd, then scored as Kaldi's local/score.sh; the same 1-best as one score run."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from lmrescore.cli import main
from lmrescore.lm.arpa import NgramLM
from lmrescore.formats import read_lattices, write_lattices
from lmrescore.rescoring.metrics import read_text
from lmrescore.vocab import Vocab
from test_cli_score import ARK, FIXTURES, UTTS, WORDS, make_model

UTILS = Path(__file__).parent.parent / "egs" / "utils"
SCORE_OPTS = "--beam 10 --acoustic-scale 0.1 --order 2"


def decode_dir(folder: Path) -> Path:
    """A Kaldi-style decode dir: lat.{1,2,3}.gz (binary CompactLattice archives) and num_jobs."""
    lats = [lat for _, lat in read_lattices(ARK, "kaldi", Vocab.load(WORDS))]
    folder.mkdir()
    for job, part in enumerate([lats[:2], lats[2:4], lats[4:]], 1):
        write_lattices(f"ark:{folder / 'plain.ark'}", part, "kaldi")
        (folder / f"lat.{job}.gz").write_bytes(gzip.compress((folder / "plain.ark").read_bytes()))
    (folder / "plain.ark").unlink()
    (folder / "num_jobs").write_text("3\n")
    return folder


def test_decode_dir_is_rescored_by_jobs_and_scored_like_kaldi(tmp_path: Path) -> None:
    make_model(tmp_path / "lm.pt")
    indir = decode_dir(tmp_path / "decode")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text").write_text((FIXTURES / "text").read_text())
    out = tmp_path / "decode_rescored"
    env = {**os.environ, "PATH": f"{UTILS}:{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", str(UTILS / "lmrescore_decode_dir.sh"), "--score-opts", SCORE_OPTS,
         "--scoring-opts", "--min-lmwt 9 --max-lmwt 11 --word-ins-penalty 0.0,1.0",
         str(tmp_path / "lm.pt"), str(tmp_path / "data"), WORDS, str(indir), str(out)],
        capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert (out / "num_jobs").read_text().strip() == "3"
    rescored = [u for n in (1, 2, 3) for u, lat in
                read_lattices(f"ark:gunzip -c {out / f'lat.{n}.gz'} |", "kaldi", Vocab.load(WORDS))
                if not isinstance(lat, Exception)]
    assert rescored == UTTS
    assert sorted(p.name for p in out.glob("wer_*")) == [
        f"wer_{lmwt}_{wip}" for lmwt in (10, 11, 9) for wip in ("0.0", "1.0")]
    best = (out / "scoring_kaldi" / "best_wer").read_text()
    assert best.startswith("%WER ") and "/wer_" in best
    per_utt = (out / "scoring_kaldi" / "wer_details" / "per_utt").read_text().splitlines()
    assert [line.split()[0] for line in per_utt if "#csid" in line] == UTTS

    # one score run over the whole archive: the same 1-best as the jobs, and as the scoring
    # dir's best path at LMWT 10 (= 1 / 0.1), penalty 0
    assert main(["score", "--model", str(tmp_path / "lm.pt"), "--lattice", ARK, "--words", WORDS,
                 *SCORE_OPTS.split(), "--one-best", str(tmp_path / "hyp")]) == 0
    whole = read_text(tmp_path / "hyp")
    jobs = {u: w for n in (1, 2, 3) for u, w in read_text(out / f"hyp.{n}").items()}
    assert jobs == whole
    assert read_text(out / "scoring_kaldi" / "penalty_0.0" / "10.txt") == whole


def test_a_killed_driver_reruns_only_the_unfinished_jobs_to_the_same_output(tmp_path: Path
                                                                           ) -> None:
    import signal
    import time

    make_model(tmp_path / "lm.pt")
    indir = tmp_path / "decode"
    indir.mkdir()
    lats = [lat for _, lat in read_lattices(ARK, "kaldi", Vocab.load(WORDS))]
    big = []  # job 3: 40 lattices
    for i in range(40):
        copy = lats[i % 5].select([0])
        copy.utt_ids = [f"copy-{i:02d}"]
        big.append(copy)
    for job, part in enumerate([lats[:1], lats[1:2], big], 1):
        write_lattices(f"ark:{tmp_path / 'plain.ark'}", part, "kaldi")
        (indir / f"lat.{job}.gz").write_bytes(gzip.compress((tmp_path / "plain.ark").read_bytes()))
    (indir / "num_jobs").write_text("3\n")
    env = {**os.environ, "PATH": f"{UTILS}:{os.environ['PATH']}"}
    # a $cmd that holds job 3 back until the driver is killed, whatever the machine's load
    held = tmp_path / "held.sh"
    held.write_text(f"#!/usr/bin/env bash\ncase $1 in *rescore.3.log) "
                    f"while [ ! -e {tmp_path / 'go'} ]; do sleep 0.1; done ;; esac\n"
                    f"exec run_local.sh \"$@\"\n")
    held.chmod(0o755)

    def driver(out: Path, cmd: str = "run_local.sh") -> list[str]:
        return ["bash", str(UTILS / "lmrescore_decode_dir.sh"), "--cmd", cmd, "--score-opts",
                SCORE_OPTS, "--skip-scoring", "true", str(tmp_path / "lm.pt"),
                str(tmp_path / "data"), WORDS, str(indir), str(out)]

    whole = tmp_path / "whole"
    assert subprocess.run(driver(whole), env=env, capture_output=True).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(driver(out, str(held)), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (out / "summary.1.json").exists() and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the driver and every job
    proc.wait()
    assert not (out / "summary.3.json").exists()
    rerun = subprocess.run(driver(out), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "rescored 1 of 3 jobs" in rerun.stdout or "rescored 2 of 3 jobs" in rerun.stdout
    for n in (1, 2, 3):
        assert (out / f"hyp.{n}").read_text() == (whole / f"hyp.{n}").read_text()
        assert (gzip.decompress((out / f"lat.{n}.gz").read_bytes())
                == gzip.decompress((whole / f"lat.{n}.gz").read_bytes()))


def test_kaldis_interface_takes_the_old_lm_out_of_the_graph_score(tmp_path: Path) -> None:
    """utils/lmrescore_lat.sh <old-lang-dir> <model> <data> <in> <out> (Kaldi's
    lmrescore_pruned.sh interface) on gzipped lattices whose graph score holds the old LM (a
    trigram, G.fst by Kaldi's arpa2fst in the lang dir): with --weight 1 the 1-best is that of
    the same lattices without the old LM, rescored by one `lmrescore score`; the scoring dir
    is Kaldi's. Given in the other driver's argument order, the error says which to use."""
    pytest.importorskip("kaldilm")
    from test_old_lm import few_paths, make_lang, with_old_lm

    arpa, lang, _ = make_lang(tmp_path, 0)
    symbols = Vocab.load(lang / "words.txt")
    plain = few_paths(symbols)
    graph = with_old_lm(plain, NgramLM.from_file(arpa), symbols)
    indir = tmp_path / "decode"
    indir.mkdir()
    for job, rows in enumerate([[0, 1], [2, 3, 4]], 1):
        write_lattices(f"ark:| gzip -c > {indir / f'lat.{job}.gz'}", [graph.select(rows)],
                       "kaldi")
    (indir / "num_jobs").write_text("2\n")
    write_lattices(f"ark:{tmp_path / 'plain.ark'}", [plain], "kaldi")
    make_model(tmp_path / "lm.pt")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text").write_text((FIXTURES / "text").read_text())
    env = {**os.environ, "PATH": f"{UTILS}:{os.environ['PATH']}"}
    out = tmp_path / "decode_afp"
    run = subprocess.run(
        ["bash", str(UTILS / "lmrescore_lat.sh"), "--weight", "1.0", "--acwt", "0.1",
         "--scoring-opts", "--min-lmwt 9 --max-lmwt 11", str(lang), str(tmp_path / "lm.pt"),
         str(tmp_path / "data"), str(indir), str(out)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert main(["score", "--model", str(tmp_path / "lm.pt"), "--lattice",
                 f"ark:{tmp_path / 'plain.ark'}", "--words", str(lang / "words.txt"),
                 "--one-best", str(tmp_path / "hyp")]) == 0
    jobs = {u: w for n in (1, 2) for u, w in read_text(out / f"hyp.{n}").items()}
    assert jobs == read_text(tmp_path / "hyp") and len(jobs) == 5
    assert read_text(out / "scoring_kaldi" / "penalty_0.0" / "10.txt") == jobs
    assert (out / "scoring_kaldi" / "best_wer").read_text().startswith("%WER ")

    wrong = subprocess.run(["bash", str(UTILS / "lmrescore_decode_dir.sh"), str(lang),
                            str(tmp_path / "lm.pt"), str(tmp_path / "data"), str(indir),
                            str(tmp_path / "x")], capture_output=True, text=True, env=env)
    assert wrong.returncode == 1 and "use utils/lmrescore_lat.sh" in wrong.stderr
    bad = subprocess.run(["bash", str(UTILS / "lmrescore_lat.sh"), "--weight", "1.5",
                          str(lang), str(tmp_path / "lm.pt"), str(tmp_path / "data"),
                          str(indir), str(tmp_path / "y")], capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 1 and "--weight must be in [0, 1]" in bad.stderr
