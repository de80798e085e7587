"""Time of egs/utils/score_kaldi.sh against ``lmrescore tune`` over the same grid (issue #25).

Usage:
    python3 bench/score_kaldi.py [--copies 40] [--jobs 4] [--old REV]

Builds a Kaldi decode dir of ``copies`` x 5 fixture lattices (new utterance ids) in ``jobs``
gzipped archives with num_jobs, and data/{text,utt2spk}; then runs under ``/usr/bin/time -v``,
on Kaldi's default grid (LMWT 7..17, penalties 0.0,0.5,1.0):
- tune: ``lmrescore tune`` over the decode dir's lattices (one read, the WER of every point);
- new: this checkout's ``score_kaldi.sh``;
- old (with ``--old REV``): score_kaldi.sh and compute_wer.py of commit REV, beside this
  checkout's other utils; its hypotheses and best WER are checked to equal the new ones.
Prints wall and CPU seconds and peak memory of each, and new / tune.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent
UTILS = ROOT / "egs" / "utils"
FIXTURES = ROOT / "tests" / "fixtures"
LMWT, WIPS = ("7", "17"), "0.0,0.5,1.0"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--old", help="a commit whose score_kaldi.sh to time as well")
    return parser


def make_decode_dir(root: Path, copies: int, jobs: int) -> None:
    """root/decode/lat.N.gz + num_jobs, root/data/text + utt2spk."""
    from lmrescore.formats import read_lattices, write_lattices
    from lmrescore.rescoring.metrics import read_text
    from lmrescore.vocab import Vocab

    lats = [lat for _, lat in read_lattices(f"ark:{FIXTURES / 'lats.ark'}", "kaldi",
                                            Vocab.load(FIXTURES / "words.txt"))]
    refs = read_text(FIXTURES / "text")
    every, text, utt2spk = [], [], []
    for c in range(copies):
        for lat in lats:
            copy = lat.select([0])
            copy.utt_ids = [f"{lat.utt_ids[0]}-c{c:03d}"]
            every.append(copy)
            text.append(f"{copy.utt_ids[0]} {' '.join(refs[lat.utt_ids[0]])}\n")
            utt2spk.append(f"{copy.utt_ids[0]} spk{c % 10}\n")
    (root / "decode").mkdir(parents=True)
    (root / "data").mkdir()
    for job in range(jobs):
        plain = root / "plain.ark"
        write_lattices(f"ark:{plain}", every[job::jobs], "kaldi")
        (root / "decode" / f"lat.{job + 1}.gz").write_bytes(gzip.compress(plain.read_bytes()))
        plain.unlink()
    (root / "decode" / "num_jobs").write_text(f"{jobs}\n")
    (root / "data" / "text").write_text("".join(text))
    (root / "data" / "utt2spk").write_text("".join(utt2spk))


def timed(cmd: list[str], cwd: Path, utils: Path) -> dict[str, float]:
    """Wall, user + system seconds and peak RSS (MiB) of ``cmd`` under /usr/bin/time -v."""
    env = {**os.environ, "PATH": f"{utils}:{os.environ['PATH']}"}
    run = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, env=env,
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    field = dict(re.findall(r"^\s*(.+?): (.*)$", run.stderr, re.M))
    h, m, s = (["0"] * 3 + field["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))[-3:]
    return {"wall": int(h) * 3600 + int(m) * 60 + float(s),
            "cpu": float(field["User time (seconds)"]) + float(field["System time (seconds)"]),
            "rss": int(field["Maximum resident set size (kbytes)"]) / 1024}


def main() -> None:
    from lmrescore.rescoring.metrics import read_text

    args = get_parser().parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_score_kaldi."))
    try:
        make_decode_dir(root, args.copies, args.jobs)
        lats = "ark:gunzip -c " + " ".join(f"decode/lat.{n}.gz" for n in
                                           range(1, args.jobs + 1)) + " |"
        script = ["bash", str(UTILS / "score_kaldi.sh"), "--min-lmwt", LMWT[0],
                  "--max-lmwt", LMWT[1], "--word-ins-penalty", WIPS, "data",
                  str(FIXTURES / "words.txt")]
        results = {"tune": timed(["lmrescore", "tune", lats, "--words",
                                  str(FIXTURES / "words.txt"), "--ref", "data/text",
                                  "--inv-acoustic-scale", ":".join(LMWT),
                                  "--word-ins-penalty", WIPS], root, UTILS)}
        shutil.copytree(root / "decode", root / "decode_new")
        results["new"] = timed(script + ["decode_new"], root, UTILS)
        if args.old:
            old_utils = root / "old_utils"
            shutil.copytree(UTILS, old_utils)
            for name in ("score_kaldi.sh", "compute_wer.py"):
                (old_utils / name).write_bytes(subprocess.run(
                    ["git", "show", f"{args.old}:egs/utils/{name}"], cwd=ROOT,
                    capture_output=True, check=True).stdout)
            shutil.copytree(root / "decode", root / "decode_old")
            results["old"] = timed(["bash", str(old_utils / "score_kaldi.sh"), *script[2:],
                                    "decode_old"], root, old_utils)
            for wip in WIPS.split(","):
                for lmwt in range(int(LMWT[0]), int(LMWT[1]) + 1):
                    new = root / "decode_new" / "scoring_kaldi" / f"penalty_{wip}"
                    old = root / "decode_old" / "scoring_kaldi" / "penalty_tmp"
                    new, old = new / f"{lmwt}.txt", old / f"{lmwt}.{wip}.txt"
                    assert read_text(new) == read_text(old), (new, old)
            best = [(root / d / "scoring_kaldi" / "best_wer").read_text().split()[1]
                    for d in ("decode_new", "decode_old")]
            assert best[0] == best[1], best
            print(f"old and new: the same hypotheses at every point, best %WER {best[0]}")
        print(f"{args.copies * 5} lattices in {args.jobs} jobs, LMWT {LMWT[0]}..{LMWT[1]} x "
              f"penalties {WIPS}")
        print(f"{'':6} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9}")
        for name, r in results.items():
            print(f"{name:6} {r['wall']:8.2f} {r['cpu']:8.2f} {r['rss']:9.0f}")
        print(f"new / tune: {results['new']['wall'] / results['tune']['wall']:.2f}x wall")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
