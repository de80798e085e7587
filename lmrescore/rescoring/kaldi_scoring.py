"""The texts of Kaldi's scoring dir (``steps/score_kaldi.sh``), from references and hypotheses.

The hypothesis files as ``lattice-best-path | utils/int2sym.pl`` write them, compute-wer's
report (``--mode=present``), the line ``utils/best_wer.sh`` prints, and the ``wer_details``
tables of ``align-text --special-symbol '***'`` piped to ``utils/scoring/wer_per_utt_details.pl``,
``wer_per_spk_details.pl`` and ``wer_ops_details.pl | sort -b -i -k 1,1 -k 4,4rn -k 2,2 -k 3,3``
(under Kaldi's ``LC_ALL=C``). References and hypotheses are ``utt_id -> words`` dicts in file
order (``metrics.read_text``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import kaldialign

from lmrescore.errors import InputError
from lmrescore.rescoring.metrics import WordErrors, corpus_word_errors, kaldi_percent

EPS = "***"  # score_kaldi.sh's --special-symbol for the empty side of an insertion / deletion
Pairs = list[tuple[str, str]]  # aligned (ref, hyp) words, EPS on the empty side


def hyp_text(hyps: dict[str, list[str]]) -> str:
    """Hypothesis lines as ``utils/int2sym.pl`` writes them: every field followed by a space."""
    return "".join(" ".join([u, *words]) + " \n" for u, words in hyps.items())


def compute_wer_report(refs: dict[str, list[str]], hyps: dict[str, list[str]]
                       ) -> tuple[WordErrors, str]:
    """compute-wer ``--mode=present``: the utterances of ``refs`` that have a hypothesis.

    Returns:
        Their word errors, and compute-wer's three lines (``%WER``, ``%SER``, ``Scored``).
    """
    present = [u for u in refs if u in hyps]
    errors = corpus_word_errors([refs[u] for u in present], [hyps[u] for u in present])
    wrong = sum(refs[u] != hyps[u] for u in present)
    missing = len(refs) - len(present)
    return errors, (f"{errors}{' [PARTIAL]' if missing else ''}\n"
                    f"%SER {kaldi_percent(wrong, len(present))} [ {wrong} / {len(present)} ]\n"
                    f"Scored {len(present)} sentences, {missing} not present in hyp.\n")


def best_wer_line(reports: Sequence[tuple[str, str]]) -> str:
    """What ``grep WER FILE... | utils/best_wer.sh`` prints: the lowest ``%WER`` line (the
    first of equals) followed by its file name.

    Args:
        reports: (file name, compute-wer text) of each grid point, in Kaldi's order.
    """
    best, best_wer = "", float("inf")
    for name, text in reports:
        for line in text.splitlines():
            m = re.search(r"[WS]ER (\S+)", line) if "WER" in line else None
            if m and (not best or float(m.group(1)) < best_wer):
                best, best_wer = f"{' '.join(line.split())} {name}", float(m.group(1))
    if not best:
        raise InputError("no %WER line in " + ", ".join(n for n, _ in reports))
    return best + "\n"


def align(refs: dict[str, list[str]], hyps: dict[str, list[str]]) -> list[tuple[str, Pairs]]:
    """``align-text``: (utt_id, aligned pairs) of each reference utterance with a hypothesis."""
    return [(u, kaldialign.align(r, hyps[u], EPS)) for u, r in refs.items() if u in hyps]


def _op(ref: str, hyp: str) -> str:
    return "D" if hyp == EPS else "I" if ref == EPS else "S" if ref != hyp else "C"


def _center(s: str, width: int) -> str:
    right = (width - len(s)) // 2
    return " " * (width - len(s) - right) + s + " " * right


def per_utt(utt: str, pairs: Pairs) -> str:
    """wer_per_utt_details.pl's lines of one utterance: centred ref, hyp, op rows and
    ``#csid C S I D``."""
    ops = [_op(r, h) for r, h in pairs]
    width = [max(len(r), len(h), 1) for r, h in pairs]
    def row(cells: list[str]) -> str:
        return "  ".join(_center(c, w) for c, w in zip(cells, width))
    n = Counter(ops)
    return (f"{utt} ref  {row([r for r, _ in pairs])}\n{utt} hyp  {row([h for _, h in pairs])}\n"
            f"{utt} op   {row(ops)}\n{utt} #csid {n['C']} {n['S']} {n['I']} {n['D']}\n")


def read_utt2spk(path: str) -> dict[str, str]:
    """utt_id -> speaker of a Kaldi ``utt2spk`` file (two fields a line)."""
    utt2spk = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) != 2:
                raise InputError(f"{path}:{n}: expected 'utt_id speaker', got {line.strip()!r}")
            utt2spk[fields[0]] = fields[1]
    return utt2spk


def per_spk(aligned: Sequence[tuple[str, Pairs]], utt2spk: dict[str, str]) -> str:
    """wer_per_spk_details.pl's table: raw counts and percentages per speaker, then ``SUM``.
    An utterance missing from ``utt2spk`` counts for the speaker ``""``, as in Kaldi."""
    width = max([15, *(len(s) for s in utt2spk.values())])
    stats: dict[str, Counter] = {}
    for utt, pairs in aligned:
        n = Counter(_op(r, h) for r, h in pairs)
        n["SENT"], n["SERR"] = 1, int(n["S"] + n["I"] + n["D"] > 0)
        stats.setdefault(utt2spk.get(utt, ""), Counter()).update(n)

    def rows(spk: str, n: Counter) -> str:
        word, err = n["C"] + n["S"] + n["D"], n["S"] + n["I"] + n["D"]
        raw = [n["C"], n["S"], n["I"], n["D"], err, n["SERR"]]
        text = f"{spk:<{width}} raw {n['SENT']:10d} {word:10d} " + " ".join(
            f"{x:10d}" for x in raw) + "\n"
        if word:
            pct = [100 * x / word for x in raw[:5]] + [100 * n["SERR"] / n["SENT"]]
            text += f"{spk:<{width}} sys {n['SENT']:10d} {word:10d} " + " ".join(
                f"{x:10.2f}" for x in pct) + "\n"
        return text

    head = ["#SENT", "#WORD", "Corr", "Sub", "Ins", "Del", "Err", "S.Err"]
    out = f"{'SPEAKER':<{width}} id  " + " ".join(f"{h:>10}" for h in head) + "\n"
    out += "".join(rows(spk, stats[spk]) for spk in sorted(stats))
    return out + rows("SUM", sum(stats.values(), Counter()))


def ops(aligned: Sequence[tuple[str, Pairs]]) -> str:
    """wer_ops_details.pl's table (how often each ref word became each hyp word) in the order of
    score_kaldi.sh's ``sort -b -i -k 1,1 -k 4,4rn -k 2,2 -k 3,3`` with ``LC_ALL=C``."""
    counts = Counter(p for _, pairs in aligned for p in pairs)
    if not counts:
        return ""
    word = min(max(max(len(r), len(h)) for r, h in counts), 16)
    digits = max(len(str(c)) for c in counts.values())
    kind = {"C": "correct", "I": "insertion", "D": "deletion", "S": "substitution"}
    lines = [(kind[_op(r, h)], c, r, h, f"{kind[_op(r, h)]:<14}{r:>{word}}    {h:>{word}}    "
              f"{c:>{digits}d}\n") for (r, h), c in counts.items()]
    def printable(s: str) -> bytes:  # sort -i in the C locale ignores bytes outside ' '..'~'
        return bytes(b for b in s.encode() if 32 <= b < 127)
    lines.sort(key=lambda x: (x[0], -x[1], printable(x[2]), printable(x[3]), x[4].encode()))
    return "".join(x[4] for x in lines)
