"""Time to refuse one lattice over the readers' caps, against its size: it should stay bounded.

Usage:
    python3 bench/oversize.py [--arcs 10000 100000 1000000 4000000] [--cap-bytes 1048576]
        [--cap-arcs 50000] [--uncapped-max 1000000] [--repeat 3]
    python3 bench/oversize.py --bombs
    python3 bench/oversize.py --parse-cost [--mb 8 32]

``--bombs`` instead reads each input of issue #27 that once sized an allocation by a number it
claims (a Kaldi text state id near 2^31, a checkpoint config of hidden 1e6, of 100,000 layers,
of order 1e9, a YAML alias bomb in ``data.corpus`` then ``to_dict()`` as training does, a corpus
line of 200 MB), each in a child process under a
2 GiB address-space cap, and prints its outcome, seconds and peak RSS (ru_maxrss), with the
child that only imports lmrescore as the baseline.

``--parse-cost`` measures each reader's cost model, the peak memory of parsing B bytes (peak RSS
of a child under the same cap, less the import-only child's, divided by B): a Kaldi text entry,
a Kaldi binary entry and an SLF file of tiny tokens, B = ``--mb`` MB each; then a batch of 16
two-line Kaldi text lattices whose state ids claim ~10M states each, read and sorted
topologically, and the expansion of a 3,803-arc lattice of levels of 400, 400 and 3,000 parallel
words under ``--max-arcs 1000000``. ``lmrescore/formats/limits.py`` states the multiples.

For each size N, one random lattice of N arcs (N/4 states, the fixture words) is written in each
input format, a small good lattice after it where the format holds several (Kaldi archives, the
k2 file). Each input is then read with fixed caps, timed in this process:
- kaldi-ark / kaldi-text: ``read_kaldi_batches("ark:...", max_bytes=cap_bytes)``, a binary or
  text archive (the oversize entry, then the good one);
- slf: ``read_slf(path, max_bytes=cap_bytes, max_arcs=cap_arcs)``;
- k2: ``list(read_k2(path, max_arcs=cap_arcs))``.
Printed per format and size: the file's MB, seconds with the caps (best of ``--repeat``), their
ratio to the smallest size's, what happened to the big lattice and to the good one, and (up to
``--uncapped-max`` arcs, once) the seconds the same input takes with the default caps, i.e.
read whole.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
FORMATS = ("kaldi-ark", "kaldi-text", "slf", "k2")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arcs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 4_000_000])
    p.add_argument("--cap-bytes", type=int, default=1 << 20)
    p.add_argument("--cap-arcs", type=int, default=50_000)
    p.add_argument("--uncapped-max", type=int, default=1_000_000,
                   help="time reading without the caps only up to this many arcs")
    p.add_argument("--repeat", type=int, default=3, help="best of this many capped reads")
    p.add_argument("--bombs", action="store_true", help="peak memory of issue #27's inputs")
    p.add_argument("--parse-cost", action="store_true", help="peak bytes per input byte")
    p.add_argument("--mb", type=float, nargs="+", default=[8, 32], help="--parse-cost sizes")
    return p


def write_bombs(folder: Path) -> dict[str, str]:
    """Per case, the code a child runs to read it (the inputs written into ``folder``)."""
    from lmrescore.lm.checkpoint import save_checkpoint
    from lmrescore.lm.config import ExperimentConfig, TrainConfig
    from lmrescore.lm.model import ModelConfig, RNNLM
    from lmrescore.vocab import Vocab

    big = 2**31 - 2
    (folder / "lat.txt").write_text(f"big\n0\t{big}\t3\t1,2,\n{big}\t0,0,\n\n")
    vocab = Vocab.from_words(["a", "b"])
    config = ExperimentConfig(model=ModelConfig(vocab_size=len(vocab), hidden_dim=8, order=2),
                              train=TrainConfig(method="afp"))
    save_checkpoint(folder / "lm.pt", RNNLM(config.model), vocab, config)
    payload = torch.load(folder / "lm.pt", weights_only=True)
    for name, key, value in (("hidden", "hidden_dim", 10**6), ("layers", "num_layers", 100_000),
                             ("order", "order", 10**9)):
        torch.save({**payload, "config": {**payload["config"], "model": {
            **payload["config"]["model"], key: value}}}, folder / f"{name}.pt")
    (folder / "bomb.yaml").write_text("data:\n  corpus:\n    - &a [x, x, x, x, x, x, x, x, x]\n"
                                      + "".join(f"    - &{c} [{', '.join([f'*{p}'] * 9)}]\n"
                                                for p, c in zip("abcdefgh", "bcdefghi")))
    with open(folder / "line.txt", "wb") as f:
        for _ in range(100):
            f.write(b"ab " * 700_000)
    load = "from lmrescore.lm.checkpoint import load_model; load_model({!r})".format
    return {
        "import only": "import lmrescore.formats, lmrescore.lm.checkpoint",
        "kaldi text state 2^31-2": "from lmrescore.formats import read_lattices; "
                                   f"print(list(read_lattices('ark,t:{folder / 'lat.txt'}', "
                                   "'kaldi')))",
        "checkpoint hidden 1e6": load(str(folder / "hidden.pt")),
        "checkpoint 100,000 layers": load(str(folder / "layers.pt")),
        "checkpoint order 1e9": load(str(folder / "order.pt")),
        "YAML alias bomb, 9 levels": "from lmrescore.lm.config import ExperimentConfig; "
                                     f"ExperimentConfig.load({str(folder / 'bomb.yaml')!r})"
                                     ".to_dict()",
        "corpus line of 210 MB": "from lmrescore.lm.corpus import encode_text; "
                                 "from lmrescore.lm.units import WordUnits; "
                                 "from lmrescore.vocab import Vocab; "
                                 f"encode_text({str(folder / 'line.txt')!r}, 'plain', "
                                 "WordUnits(Vocab.from_words(['ab'])))",
    }


def run_bomb(code: str, limit: int = 2 << 30) -> tuple[str, float, float]:
    """(outcome, seconds, peak RSS MB) of ``code`` in a child capped at ``limit`` bytes."""
    child = f"""
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
start = time.perf_counter()
try:
    exec({code!r})
    what = "read"
except Exception as e:
    what = f"{{type(e).__name__}}: {{str(e)[-60:]}}"
print(what, time.perf_counter() - start,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, sep="\t")
"""
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    if out.returncode:
        return f"child died ({out.returncode}): {out.stderr[-60:]}", float("nan"), float("nan")
    what, seconds, mb = out.stdout.strip().rsplit("\t", 2)
    return what.splitlines()[-1], float(seconds), float(mb)


def bombs() -> None:
    """Print outcome, seconds and peak RSS of each of issue #27's inputs."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"# python3 bench/oversize.py --bombs  (commit {commit}; each child under a 2 GiB "
          "RLIMIT_AS)")
    print(f"{'case':<28} {'s':>6} {'peak MB':>8}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for case, code in write_bombs(Path(tmp)).items():
            what, seconds, mb = run_bomb(code)
            print(f"{case:<28} {seconds:>6.2f} {mb:>8.0f}  {what}")


def write_parse_inputs(folder: Path, size: int) -> dict[str, str]:
    """Per case, the code a child runs to parse ``size`` bytes of tiny tokens (in ``folder``)."""
    text = b"0\t0\t1\n" * (size // 6)
    (folder / "text.ark").write_bytes(b"t \n" + text + b"0\n\n")
    (folder / "lat.slf").write_bytes(b"VERSION=1.0\nN=2 L=%d\nI=0\nI=1\n" % (size // 12)
                                     + b"J=0 S=0 E=1\n" * (size // 12))
    from lmrescore.formats import write_lattices
    from lmrescore.lattice.lattice import Lattice

    n = size // 20  # a CompactLattice arc of one transition id is 20 bytes
    write_lattices(f"ark:{folder / 'bin.ark'}", [Lattice.from_arcs(
        "b", 3, [0] * n + [1], [1] * n + [2], [1] * n + [-1],
        {"am": [0.0] * (n + 1), "lm": [0.0] * (n + 1)})], "kaldi")
    read = ("from lmrescore.formats import read_lattices; "
            "print([type(v).__name__ for _, v in read_lattices({!r}, {!r})])").format
    return {f"kaldi text entry {size >> 20} MB": read(f"ark:{folder / 'text.ark'}", "kaldi"),
            f"kaldi binary entry {size >> 20} MB": read(f"ark:{folder / 'bin.ark'}", "kaldi"),
            f"SLF file {size >> 20} MB": "from lmrescore.formats.slf import read_slf; "
                                         f"read_slf({str(folder / 'lat.slf')!r}, None)"}


def write_batch_cases(folder: Path) -> dict[str, str]:
    """The batch and expansion cases of issue #27 (inputs in ``folder``)."""
    big = 9_999_990
    (folder / "b.txt").write_text("".join(f"u{i} \n0\t{big}\t3\n{big}\n\n" for i in range(16)))
    wide = """
import torch
from lmrescore.lattice.lattice import Lattice
from lmrescore.rescoring.expand import TokenTable, expand
w = [400, 400, 3000]
src = torch.cat([torch.full((n,), i) for i, n in enumerate(w)] + [torch.tensor([3])])
label = torch.cat([torch.arange(1, n + 1) for n in w] + [torch.tensor([-1])])
lat = Lattice.from_arcs("bomb", 5, src, src + 1, label, {"am": torch.zeros(src.shape[0])})
print(expand(lat, TokenTable(torch.arange(3001), torch.arange(3002)), 2, 0, 1_000_000).failed)
"""
    return {"16 text lattices of ~10M ids": "from lmrescore.formats import read_lattice_batches; "
                                            "from lmrescore.lattice.topsort import levels; "
                                            f"[levels(b) for b, _ in read_lattice_batches("
                                            f"'ark,t:{folder / 'b.txt'}', 'kaldi')]",
            "expand 400x400x3000 words": wide}


def parse_cost(args: argparse.Namespace) -> None:
    """Print peak MB and peak bytes per input byte of each reader, then the batch cases."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"# python3 bench/oversize.py {' '.join(sys.argv[1:])}  (commit {commit}; each child "
          "under a 2 GiB RLIMIT_AS)")
    base = run_bomb("import lmrescore.formats, lmrescore.rescoring.expand")[2]
    print(f"# import-only child: {base:.0f} MB")
    print(f"{'case':<30} {'s':>6} {'peak MB':>8} {'x bytes':>8}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in args.mb:
            for case, code in write_parse_inputs(Path(tmp), int(mb * (1 << 20))).items():
                what, seconds, peak = run_bomb(code)
                print(f"{case:<30} {seconds:>6.2f} {peak:>8.0f} {(peak - base) / mb:>8.1f}  "
                      f"{what[:60]}")
        for case, code in write_batch_cases(Path(tmp)).items():
            what, seconds, peak = run_bomb(code)
            print(f"{case:<30} {seconds:>6.2f} {peak:>8.0f} {'-':>8}  {what[:60]}")


def make_lattice(num_arcs: int, utt: str, symbols):
    """A random acyclic lattice of ``num_arcs`` arcs over ``symbols``, one final arc."""
    from lmrescore.lattice.lattice import Lattice

    rng = np.random.default_rng(num_arcs)
    s = max(3, num_arcs // 4)
    src = np.sort(rng.integers(0, s - 2, num_arcs - 1))
    dst = np.minimum(src + 1 + rng.integers(0, 3, num_arcs - 1), s - 2)
    label = rng.integers(1, len(symbols), num_arcs - 1)
    scores = {k: torch.from_numpy(rng.standard_normal(num_arcs).astype(np.float32) * 10)
              for k in ("am", "lm")}
    return Lattice.from_arcs(utt, s, np.append(src, s - 2), np.append(dst, s - 1),
                             np.append(label, -1), scores, symbols=symbols)


def write_inputs(folder: Path, num_arcs: int, symbols) -> dict[str, Path]:
    """The lattice of ``num_arcs`` arcs in each format (a good one after it where possible)."""
    from lmrescore.formats import write_lattices
    from lmrescore.formats.k2 import write_k2
    from lmrescore.formats.slf import write_slf
    from lmrescore.lattice.lattice import Lattice

    big, good = make_lattice(num_arcs, "big", symbols), make_lattice(200, "good", symbols)
    paths = {f: folder / f"{num_arcs}.{f}" for f in FORMATS}
    write_lattices(f"ark:{paths['kaldi-ark']}", [big, good], "kaldi")
    write_lattices(f"ark,t:{paths['kaldi-text']}", [big, good], "kaldi")
    write_slf(paths["slf"], big)
    write_k2(paths["k2"], Lattice.cat([big, good]))
    return paths


def readers(symbols, capped: bool, args: argparse.Namespace) -> dict[str, Callable]:
    """Per format: path -> [(utt_id, lattice or error)], with the caps or the defaults."""
    from lmrescore.errors import InputError
    from lmrescore.formats.archive import read_kaldi_batches
    from lmrescore.formats.k2 import read_k2
    from lmrescore.formats.slf import read_slf

    kaldi = {"max_bytes": args.cap_bytes} if capped else {}
    slf = {"max_bytes": args.cap_bytes, "max_arcs": args.cap_arcs} if capped else {}
    k2 = {"max_arcs": args.cap_arcs} if capped else {}

    def from_batches(path: Path) -> list:
        out = []
        for lat, errors in read_kaldi_batches(f"ark:{path}", symbols, **kaldi):
            out += errors + [(utt, lat) for utt in ([] if lat is None else lat.utt_ids)]
        return out

    def one_slf(path: Path) -> list:
        try:
            return [("big", read_slf(path, symbols, "big", **slf))]
        except InputError as e:
            return [("big", e)]

    return {"kaldi-ark": from_batches, "kaldi-text": from_batches, "slf": one_slf,
            "k2": lambda path: list(read_k2(path, symbols, **k2))}


def outcome(items: list) -> str:
    """What happened to ``big`` and ``good``."""
    from lmrescore.errors import InputError

    said = {utt: ("refused" if isinstance(x, InputError) else "read") for utt, x in items}
    lost = sum(utt not in ("big", "good") for utt, _ in items)
    return f"big {said.get('big', 'missing')}" + (f", good {said['good']}" if "good" in said
                                                  else "") + (f", {lost} other" if lost else "")


def timed(read: Callable, path: Path) -> tuple[float, list]:
    start = time.perf_counter()
    items = read(path)
    return time.perf_counter() - start, items


def main() -> None:
    args = get_parser().parse_args()
    if args.bombs:
        bombs()
        return
    if args.parse_cost:
        parse_cost(args)
        return
    from lmrescore.vocab import Vocab

    symbols = Vocab.load(FIXTURES / "words.txt")
    sizes = sorted(args.arcs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        capped, whole = readers(symbols, True, args), readers(symbols, False, args)
        for n in sizes:
            paths = write_inputs(Path(tmp), n, symbols)
            for f in FORMATS:
                seconds, items = min((timed(capped[f], paths[f]) for _ in range(args.repeat)),
                                     key=lambda t: t[0])
                uncapped = timed(whole[f], paths[f])[0] if n <= args.uncapped_max else None
                rows.append((f, n, paths[f].stat().st_size / 1e6, seconds, outcome(items),
                             uncapped))
                paths[f].unlink()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"# python3 bench/oversize.py {' '.join(sys.argv[1:])}  (commit {commit})")
    print(f"# caps: Kaldi entry {args.cap_bytes} bytes; SLF file {args.cap_bytes} bytes and "
          f"{args.cap_arcs} links; k2 FSA {args.cap_arcs} arcs")
    print(f"{'format':<10} {'arcs':>8} {'MB':>7} {'capped s':>9} {'ratio':>6}  "
          f"{'outcome':<26} {'uncapped s':>10}")
    first = {}
    for f in FORMATS:
        for fmt, n, mb, seconds, what, uncapped in rows:
            if fmt != f:
                continue
            first.setdefault(f, seconds)
            whole = f"{uncapped:.3f}" if uncapped is not None else "-"
            print(f"{f:<10} {n:>8} {mb:>7.1f} {seconds:>9.3f} {seconds / first[f]:>6.1f}  "
                  f"{what:<26} {whole:>10}")


if __name__ == "__main__":
    main()
