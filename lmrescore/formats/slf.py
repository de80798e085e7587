"""HTK Standard Lattice Format (SLF), one lattice per file.

Reading:

- Words may sit on links (``W=`` on ``J=`` lines) or on nodes (``W=`` on ``I=`` lines). A node's
  word labels the links leaving it when the lattice is backward (``dir=b``, or written by
  PocketSphinx, whose ``a=`` on link S->E is the acoustic score of node S's word); otherwise
  (HTK's forward lattices) the links entering it.
- ``!NULL``, ``!SENT_START``, ``!SENT_END``, ``<s>``, ``</s>`` and ``<sil>`` become epsilon (0):
  sentence boundaries are implicit, as in Kaldi and k2 lattices. A pronunciation variant suffix
  ``(2)`` is stripped. Another word missing from words.txt is an error (or ``<unk>``).
- ``am = a``, ``lm = l + r`` (LM and pronunciation log-probs, like Kaldi's graph cost), in
  natural log: scores are multiplied by ln(base) (``base=0``: linear, so the log is taken).
  ``lmscale``, ``wdpenalty`` and ``acscale`` are decoding settings and are not applied.
- Node times ``t=`` become the per-state attribute ``"times"`` (seconds).
- The end node is the final state when it has no leaving links and all links into it are
  epsilon (they become the -1 arcs); otherwise a new final state is added after it.

Untrusted files: a file over ``max_bytes`` (decompressed), or whose ``N=`` / ``L=`` pass
``max_states`` / ``max_arcs``, fails before anything they size is allocated; every score must be
finite after conversion (a link with NaN or infinite ``a``/``l``/``r``, or a zero or negative
probability with ``base=0``, is an error naming it); ``base`` is 0 or a positive number other
than 1. Every problem is an :class:`InputError` naming the file and the field or link.

Writing puts words on links, ``!NULL`` for epsilon and -1 arcs, ``a=`` and ``l=``; reading
that file gives back the same lattice. :func:`slf_file_name` is the rule for naming the file of
an utterance.
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path

import numpy as np
import torch
from numpy.dtypes import StringDType

from lmrescore.atomic import atomic_write_text
from lmrescore.errors import InputError
from lmrescore.formats.limits import MAX_ARCS, MAX_SLF_BYTES, MAX_STATES
from lmrescore.lattice.lattice import FINAL_LABEL, Lattice
from lmrescore.text_input import read_text
from lmrescore.vocab import Vocab

EPSILON_WORDS = frozenset({"!NULL", "!SENT_START", "!SENT_END", "<s>", "</s>", "<sil>"})
_LONG = {"VERSION": "V", "UTTERANCE": "U", "NODES": "N", "LINKS": "L", "time": "t",
         "WORD": "W", "var": "v", "START": "S", "END": "E", "acoustic": "a", "language": "l",
         "div": "d", "ngram": "n"}
_VARIANT = re.compile(r"\(\d+\)$")
_STR = StringDType()  # variable width: one long field does not widen every other
_MAX_NAME_BYTES = 200  # file names are at most 255 bytes; room for ".slf" and a temporary name


def _fields(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys, values and record index of every ``key=value`` field; records start at I= / J=."""
    text = re.sub(r"(?m)^#.*$", "", text)
    tokens = np.array(text.split(), dtype=_STR)
    keys, _, values = np.strings.partition(tokens, np.array("=", dtype=_STR))
    values = np.strings.strip(values, np.array('"', dtype=_STR))
    names, inverse = np.unique(keys, return_inverse=True)
    keys = np.array([_LONG.get(k, k) for k in names.tolist()], dtype=_STR)[inverse.reshape(-1)]
    record = np.cumsum((keys == "I") | (keys == "J"))
    return keys, values, record


def _column(keys: np.ndarray, values: np.ndarray, record: np.ndarray, rows: np.ndarray,
            key: str, default: str | None) -> np.ndarray:
    """(len(rows),) value of ``key`` in each record of ``rows`` (record ids, sorted)."""
    out = np.full(rows.shape[0], "" if default is None else default, dtype=object)
    have = np.zeros(rows.shape[0], bool)
    sel = np.nonzero(keys == key)[0]
    idx = np.searchsorted(rows, record[sel])
    ok = idx < rows.shape[0]
    ok[ok] = rows[idx[ok]] == record[sel[ok]]
    out[idx[ok]] = values[sel[ok]]
    have[idx[ok]] = True
    if default is None and not have.all():
        raise KeyError(key)
    return out


def _word_ids(words: np.ndarray, symbols: Vocab, oov: str, where: str) -> np.ndarray:
    """Word ids of SLF words (variants stripped, sentence markers and !NULL as epsilon)."""
    uniq, inverse = np.unique(words.astype(str), return_inverse=True)
    ids = np.zeros(uniq.shape[0], np.int64)
    for i, w in enumerate(uniq.tolist()):  # once per distinct word
        w = _VARIANT.sub("", w)
        if w in EPSILON_WORDS or w == "":
            continue
        if w not in symbols:
            if oov != "unk":
                raise InputError(f"{where}: word {w!r} is not in the symbol table")
            ids[i] = symbols.unk
        else:
            ids[i] = symbols.ids[w]
    return ids[inverse.reshape(-1)]


def _header_counts(header: dict[str, str], where: str, max_states: int, max_arcs: int
                   ) -> tuple[int, int]:
    """``N=`` and ``L=`` of the header, within the caps."""
    try:
        n_nodes, n_links = int(header["N"]), int(header["L"])
    except KeyError as e:
        raise InputError(f"{where}: the header lacks the field {e}") from None
    except ValueError as e:
        raise InputError(f"{where}: bad number in the header: {e}") from None
    if not 1 <= n_nodes <= max_states:
        raise InputError(f"{where}: N={n_nodes} nodes; expected 1..{max_states} (the states cap)")
    if not 0 <= n_links <= max_arcs:
        raise InputError(f"{where}: L={n_links} links; expected 0..{max_arcs} (the arcs cap)")
    return n_nodes, n_links


def _log_base(header: dict[str, str], where: str) -> float | None:
    """ln(base) to scale scores by, or None for ``base=0`` (linear scores)."""
    try:
        base = float(header.get("base", math.e))
    except ValueError as e:
        raise InputError(f"{where}: bad number in the header: {e}") from None
    if base == 0:
        return None
    if not (math.isfinite(base) and base > 0 and base != 1):
        raise InputError(f"{where}: base={base}; expected 0 (linear) or a positive base other "
                         "than 1")
    return math.log(base)


def parse_slf(text: str, symbols: Vocab, utt_id: str | None = None, oov: str = "error",
              name: str = "<slf>", max_states: int = MAX_STATES, max_arcs: int = MAX_ARCS
              ) -> Lattice:
    """Parse one SLF lattice.

    Args:
        text: the file content; symbols: words.txt; utt_id: overrides ``UTTERANCE=``.
        oov: ``"error"`` or ``"unk"`` for words missing from ``symbols``.
        name: the file name, for errors.
        max_states, max_arcs: caps on ``N=`` and ``L=`` (see :mod:`lmrescore.formats.limits`).
    Returns:
        a batch of one lattice.
    Raises:
        InputError: naming the file and the field, link or word.
    """
    keys, values, record = _fields(text)
    head = record == 0
    header = dict(zip(keys[head].tolist(), values[head].tolist()))
    utt = utt_id or header.get("U") or Path(name).name.split(".")[0]
    where = f"{name} (utterance {utt})"
    n_nodes, n_links = _header_counts(header, where, max_states, max_arcs)
    log_base = _log_base(header, where)
    first = np.nonzero(np.r_[True, record[1:] != record[:-1]])[0]
    starts = first[record[first] > 0]
    node_rows = record[starts[keys[starts] == "I"]]
    link_rows = record[starts[keys[starts] == "J"]]
    try:
        node_id = _column(keys, values, record, node_rows, "I", None).astype(np.int64)
        link_id = _column(keys, values, record, link_rows, "J", None)
        src = _column(keys, values, record, link_rows, "S", None).astype(np.int64)
        dst = _column(keys, values, record, link_rows, "E", None).astype(np.int64)
        am = _column(keys, values, record, link_rows, "a", "0").astype(np.float64)
        lm = (_column(keys, values, record, link_rows, "l", "0").astype(np.float64)
              + _column(keys, values, record, link_rows, "r", "0").astype(np.float64))
        times = _column(keys, values, record, node_rows, "t", "nan").astype(np.float64)
        start = int(header.get("start", 0))
        end = int(header.get("end", n_nodes - 1))
    except KeyError as e:
        raise InputError(f"{where}: a node or link lacks the field {e}") from None
    except (ValueError, OverflowError) as e:
        raise InputError(f"{where}: bad number: {e}") from None
    if node_rows.shape[0] != n_nodes or link_rows.shape[0] != n_links:
        raise InputError(f"{where}: header says N={n_nodes} L={n_links}, file has "
                         f"{node_rows.shape[0]} nodes and {link_rows.shape[0]} links")
    if n_nodes == 0 or (np.sort(node_id) != np.arange(n_nodes)).any():
        raise InputError(f"{where}: node ids are not 0..{n_nodes - 1}")
    bad = np.flatnonzero((src < 0) | (src >= n_nodes) | (dst < 0) | (dst >= n_nodes))
    if bad.size:
        raise InputError(f"{where}: link J={link_id[bad[0]]} (S={src[bad[0]]} E={dst[bad[0]]}) "
                         f"refers to a node outside 0..{n_nodes - 1}")
    if log_base is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            am, lm = np.log(am), np.log(lm)
    elif log_base != 1:
        am, lm = am * log_base, lm * log_base
    bad = np.flatnonzero(~(np.isfinite(am) & np.isfinite(lm)))
    if bad.size:
        raise InputError(f"{where}: link J={link_id[bad[0]]} has the score a={am[bad[0]]} "
                         f"l+r={lm[bad[0]]} (natural log); scores must be finite")
    node_word = np.full(n_nodes, "", dtype=object)
    node_word[node_id] = _column(keys, values, record, node_rows, "W", "")
    link_word = _column(keys, values, record, link_rows, "W", "")
    on_link = link_word != ""
    backward = header.get("dir") == "b" or "PocketSphinx" in text[:200]
    word = np.where(on_link, link_word, node_word[src] if backward else node_word[dst])
    label = _word_ids(word, symbols, oov, where)
    if not (0 <= start < n_nodes and 0 <= end < n_nodes):
        raise InputError(f"{where}: start={start} or end={end} is not a node")
    end_is_final = (not (src == end).any()) and not label[dst == end].any() and end != start
    # state order: start, the other nodes, end (if it is the final state) / new final state
    others = np.setdiff1d(np.arange(n_nodes), [start, end] if end_is_final else [start])
    order = np.concatenate([[start], others] + ([[end]] if end_is_final else []))
    state = np.empty(n_nodes, np.int64)
    state[order] = np.arange(n_nodes)
    num_states = n_nodes if end_is_final else n_nodes + 1
    a_src, a_dst = state[src], state[dst]
    if end_is_final:
        label = np.where(dst == end, FINAL_LABEL, label)
    else:
        a_src = np.append(a_src, state[end])
        a_dst = np.append(a_dst, n_nodes)
        label = np.append(label, FINAL_LABEL)
        am, lm = np.append(am, 0.0), np.append(lm, 0.0)
    arc_order = np.argsort(a_src, kind="stable")
    state_attrs = {}
    if not np.isnan(times).all():
        t = np.full(num_states, np.nan)
        t[state[node_id]] = times
        if not end_is_final:
            t[-1] = t[state[end]]
        state_attrs["times"] = torch.from_numpy(t.astype(np.float32))
    return Lattice.from_arcs(
        utt, num_states, torch.from_numpy(a_src[arc_order]), torch.from_numpy(a_dst[arc_order]),
        torch.from_numpy(label[arc_order]),
        {"am": torch.from_numpy(am[arc_order].astype(np.float32)),
         "lm": torch.from_numpy(lm[arc_order].astype(np.float32))},
        symbols=symbols, state_attrs=state_attrs)


def read_slf(path: str | Path, symbols: Vocab, utt_id: str | None = None, oov: str = "error",
             max_states: int = MAX_STATES, max_arcs: int = MAX_ARCS,
             max_bytes: int = MAX_SLF_BYTES) -> Lattice:
    """Read one SLF file (``.gz`` is decompressed); see :func:`parse_slf`.

    Args:
        max_bytes: a file larger than this (decompressed) is an error, found after reading at
            most ``max_bytes + 1`` bytes.
    """
    path = Path(path)
    text = read_text(path, max_bytes, gz=path.suffix == ".gz")
    return parse_slf(text, symbols, utt_id, oov, str(path), max_states, max_arcs)


def slf_file_name(utt_id: str) -> str:
    """The file name ``<utt_id>.slf`` of an utterance, or an error if the id cannot be one.

    The rule: an utterance id names a file inside the output folder only if it is 1 to 200
    bytes of UTF-8 and contains no ``/`` or ``\\``, no ``..``, no whitespace, no control
    character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) and no ``"``. So it cannot
    name a parent folder or an absolute path, cannot create folders, and reads back unchanged
    from the ``UTTERANCE=`` line. Other ids are never rewritten: the utterance fails.

    Raises:
        InputError: naming the utterance and the rule it breaks.
    """
    try:
        size = len(utt_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError(f"utterance {utt_id!r}: the id is not valid UTF-8; it cannot name an "
                         "SLF file") from None
    bad = [c for c in utt_id if c in '/\\"' or c.isspace() or unicodedata.category(c) == "Cc"]
    if bad:
        why = f"it contains {bad[0]!r}"
    elif ".." in utt_id:
        why = "it contains '..'"
    elif not 1 <= size <= _MAX_NAME_BYTES:
        why = f"it is {size} bytes long"
    else:
        return f"{utt_id}.slf"
    raise InputError(f"utterance {utt_id!r}: cannot name an SLF file: {why} (an id must be "
                     f"1-{_MAX_NAME_BYTES} bytes of UTF-8 without '/', '\\', '..', '\"', "
                     "whitespace or control characters)")


def _num(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).astype(str)


def format_slf(lat: Lattice) -> str:
    """One lattice (a batch of one) as SLF text, words on links.

    Returns:
        the SLF text; node ``I`` is local state ``I``, start 0, end the final state.
    """
    if lat.symbols is None:
        raise InputError(f"utterance {lat.utt_ids[0]}: writing SLF needs a symbol table")
    s0, s1 = int(lat.state_splits[0]), int(lat.state_splits[1])
    n = s1 - s0
    words = np.array(("!NULL",) + lat.symbols.words[1:], dtype=object)
    label = lat.label.numpy()
    word = words[np.where(label == FINAL_LABEL, 0, label)]
    am = lat.scores["am"].numpy() if "am" in lat.scores else np.zeros(label.shape[0], np.float32)
    lm = lat.scores["lm"].numpy() if "lm" in lat.scores else np.zeros(label.shape[0], np.float32)
    node = np.char.add("I=", np.arange(n).astype(str))
    if "times" in lat.state_attrs:
        node = np.char.add(np.char.add(node, "\tt="), _num(lat.state_attrs["times"].numpy()))
    link = np.char.add("J=", np.arange(label.shape[0]).astype(str))
    for key, col in (("S", (lat.src - s0).numpy().astype(str)),
                     ("E", (lat.dst - s0).numpy().astype(str)),
                     ("W", word.astype(str)), ("a", _num(am)), ("l", _num(lm))):
        link = np.char.add(np.char.add(link, f"\t{key}="), col)
    header = (f"VERSION=1.0\nUTTERANCE={lat.utt_ids[0]}\nstart=0\nend={n - 1}\n"
              f"N={n}\tL={label.shape[0]}\n")
    return header + "\n".join(node.tolist() + link.tolist()) + "\n"


def write_slf(path: str | Path, lat: Lattice, follow_links: bool = True) -> None:
    """Write one lattice as an SLF file, atomically; ``follow_links=False`` for a file named by
    its utterance inside an output folder (see :func:`lmrescore.atomic.atomic_open`)."""
    atomic_write_text(path, format_slf(lat), follow_links)
