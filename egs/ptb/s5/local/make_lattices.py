#!/usr/bin/env python3
"""Real ASR lattices for LM rescoring: pick test sentences, speak them, decode, list the words.

Usage (needs espeak-ng and pocketsphinx with its bundled en-us model):

    local/make_lattices.py select --text data/corpus/ptb.test.txt --num-utts 200 \\
        --prefix ptb-test > data/test/text
    local/make_lattices.py decode --text data/test/split4/text.1 --slf-dir data/test/slf \\
        --hyp data/test/split4/hyp.1
    local/make_lattices.py words --slf-dir data/test/slf --text data/test/text \\
        --out data/test/words.txt

``select`` keeps sentences of ``--min-words``..``--max-words`` words, every word in the
PocketSphinx dictionary (so no ``<unk>`` and no PTB number token ``N``), and takes
``--num-utts`` of them evenly spaced through the file (deterministic, covers the whole set).

``decode`` speaks each sentence with espeak-ng (``--voice``), pads it with ``--pad`` seconds of
silence at both ends, adds white noise at ``--snr`` dB (seeded per utterance), decodes it with a
fresh PocketSphinx decoder (no carried-over CMN state) and writes ``<slf-dir>/<utt>.slf``
(PocketSphinx ``write_htk``) and the decoder's 1-best (first pass, with its trigram LM) to
``--hyp``. PocketSphinx lattices carry acoustic scores only (no ``l=``).

``words`` writes ``words.txt``: the recogniser's vocabulary (its dictionary, as Kaldi's
``lang/words.txt`` is the decoding graph's), plus any other lattice or reference word. With the
whole vocabulary listed, ``lmrescore score``'s default OOV penalty shares ``<unk>``'s
probability among all words the recogniser could output that the LM does not know.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import wave
import zlib
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
# PocketSphinx's default pruning keeps thousands of links; a tight flat-pass word beam keeps
# each lattice to about a thousand with the oracle WER nearly unchanged.
DECODER_CONFIG = {"fwdflatwbeam": 1e-20, "samprate": SAMPLE_RATE}
_VARIANT = re.compile(r"\(\d+\)$")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("select", help="pick speakable test sentences; 'utt words' to stdout")
    p.add_argument("--text", type=Path, required=True, help="one sentence per line")
    p.add_argument("--num-utts", type=int, required=True)
    p.add_argument("--prefix", required=True, help="utterance ids are <prefix>-<line number>")
    p.add_argument("--min-words", type=int, default=5)
    p.add_argument("--max-words", type=int, default=15)
    p = sub.add_parser("decode", help="speak and decode 'utt words' lines into SLF lattices")
    p.add_argument("--text", type=Path, required=True, help="'utt w1 w2 ...' per line")
    p.add_argument("--slf-dir", type=Path, required=True)
    p.add_argument("--hyp", type=Path, required=True, help="first-pass 1-best 'utt words' lines")
    p.add_argument("--voice", default="en-us+klatt2", help="espeak-ng voice")
    p.add_argument("--pad", type=float, default=0.3, help="seconds of silence at both ends")
    p.add_argument("--snr", type=float, default=36.0, help="white-noise SNR in dB")
    p = sub.add_parser("words", help="words.txt: the recogniser's vocabulary")
    p.add_argument("--slf-dir", type=Path, required=True)
    p.add_argument("--text", type=Path, required=True, help="'utt w1 w2 ...' per line")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-dictionary", action="store_true",
                   help="only the lattice and reference words (a small table, for demos)")
    return parser


def dictionary_words() -> set[str]:
    """Words of PocketSphinx's bundled en-us dictionary (pronunciation variants merged)."""
    from pocketsphinx import Config

    with open(Config()["dict"], encoding="utf-8") as f:
        return {_VARIANT.sub("", line.split(maxsplit=1)[0]) for line in f if line.strip()}


def select_sentences(lines: list[str], num_utts: int, known: set[str], min_words: int,
                     max_words: int) -> list[tuple[int, str]]:
    """(line number, sentence) of ``num_utts`` evenly spaced speakable sentences.

    Args:
        lines: the corpus, one sentence per line.
        known: words the recogniser can output; a sentence with any other word is skipped.
        min_words, max_words: sentence length range, inclusive.
    """
    ok = [(i + 1, " ".join(w)) for i, w in enumerate(line.split() for line in lines)
          if min_words <= len(w) <= max_words and all(x in known for x in w)]
    if len(ok) < num_utts:
        raise SystemExit(f"only {len(ok)} sentences qualify, {num_utts} asked for")
    return [ok[i * len(ok) // num_utts] for i in range(num_utts)]


def speak(text: str, wav: Path, voice: str = "en-us+klatt2") -> np.ndarray:
    """16 kHz mono int16 samples of ``text`` spoken by espeak-ng."""
    import subprocess

    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    with wave.open(str(wav)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
    x = x.reshape(-1, channels).mean(1)
    n = int(len(x) * SAMPLE_RATE / rate)
    return np.interp(np.arange(n) * rate / SAMPLE_RATE, np.arange(len(x)), x).astype(np.int16)


def degrade(samples: np.ndarray, pad: float, snr_db: float, seed: int) -> np.ndarray:
    """Pad ``pad`` seconds of silence at both ends and add white noise ``snr_db`` below the speech.

    Args:
        samples: (T,) int16 speech.
        seed: seeds the noise, so each utterance's audio is reproducible.
    Returns:
        (T + 2 * pad * 16000,) int16.
    """
    x = samples.astype(np.float64)
    noise_rms = np.sqrt(np.mean(x**2)) / 10 ** (snr_db / 20)
    x = np.pad(x, int(pad * SAMPLE_RATE))
    x += np.random.default_rng(seed).normal(0.0, noise_rms, x.shape)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def decode(samples: np.ndarray, slf: Path) -> str:
    """Decode with a fresh PocketSphinx decoder; write its lattice as SLF; return the 1-best."""
    from pocketsphinx import Decoder

    decoder = Decoder(**DECODER_CONFIG)
    decoder.start_utt()
    decoder.process_raw(samples.tobytes(), full_utt=True)
    decoder.end_utt()
    decoder.get_lattice().write_htk(str(slf))
    return decoder.hyp().hypstr


def slf_words(slf: Path) -> list[str]:
    """The node words of a PocketSphinx SLF file, variants stripped."""
    return [_VARIANT.sub("", w) for w in re.findall(r"\bW=(\S+)", slf.read_text())]


def read_text(path: Path) -> list[tuple[str, str]]:
    """(utt_id, sentence) of each 'utt w1 w2 ...' line."""
    with open(path, encoding="utf-8") as f:
        return [(p[0], p[1] if len(p) > 1 else "") for p in
                (line.strip().split(maxsplit=1) for line in f) if p]


def main() -> None:
    args = get_parser().parse_args()
    if args.command == "select":
        lines = args.text.read_text(encoding="utf-8").splitlines()
        chosen = select_sentences(lines, args.num_utts, dictionary_words(), args.min_words,
                                  args.max_words)
        sys.stdout.write("".join(f"{args.prefix}-{n:05d} {s}\n" for n, s in chosen))
    elif args.command == "decode":
        args.slf_dir.mkdir(parents=True, exist_ok=True)
        hyps = []
        with tempfile.TemporaryDirectory() as tmp:
            for utt, text in read_text(args.text):
                audio = speak(text, Path(tmp) / "utt.wav", args.voice)
                audio = degrade(audio, args.pad, args.snr, zlib.crc32(utt.encode()))
                part = args.slf_dir / f"{utt}.slf.tmp"
                hyp = decode(audio, part)
                part.rename(args.slf_dir / f"{utt}.slf")
                hyps.append(f"{utt} {hyp}".rstrip() + "\n")
                print(f"{utt}: {len(slf_words(args.slf_dir / f'{utt}.slf'))} nodes; "
                      f"ref: {text}; hyp: {hyp}", flush=True)
        from lmrescore.atomic import atomic_write_text

        atomic_write_text(args.hyp, "".join(hyps))
    else:
        from lmrescore.formats.slf import EPSILON_WORDS
        from lmrescore.vocab import Vocab

        words = {w for _, t in read_text(args.text) for w in t.split()}
        if not args.no_dictionary:
            words |= dictionary_words()
        for slf in sorted(args.slf_dir.glob("*.slf")):
            words.update(slf_words(slf))
        Vocab.from_words(sorted(words - EPSILON_WORDS)).save(args.out)


if __name__ == "__main__":
    main()
