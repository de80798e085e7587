"""Untrusted inputs, issue #27: each failure reproduced, then fixed; the bad item fails alone,
named with its file and position, and the others' results are unchanged.

Memory bombs run in a child process under ``RLIMIT_AS`` (2 GiB), so a regression fails the test
instead of exhausting the machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from formats_testing import random_lattice

from lmrescore.errors import InputError
from lmrescore.formats import write_lattices
from lmrescore.lattice.lattice import Lattice

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent


def _plain(lat: Lattice) -> Lattice:
    """A copy without transition ids (SLF does not keep them)."""
    return Lattice(lat.src, lat.dst, lat.label, lat.scores, lat.state_splits, lat.arc_splits,
                   lat.utt_ids, lat.symbols)


def run_capped(code: str, limit: int = 2 << 30, timeout: float = 120
               ) -> subprocess.CompletedProcess:
    """Run ``code`` in a child Python whose address space is capped at ``limit`` bytes."""
    prelude = ("import resource\n"
               f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


# --- 1. writes through a link planted in an SLF output folder ------------------------------

def test_slf_output_never_follows_a_planted_link_or_replaces_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / "link.slf").symlink_to(victim)
    (out / "dangling.slf").symlink_to(tmp_path / "outside.slf")
    (out / "folder.slf").mkdir()
    os.mkfifo(out / "fifo.slf")
    (out / "old.slf").write_text("old")
    (out / f".tmpname.slf.{os.getpid()}.tmp").symlink_to(victim)  # our temporary file's name
    ids = ["link", "dangling", "folder", "fifo", "old", "tmpname", "new"]
    lats = [_plain(random_lattice(i, u, 4, 5)) for i, u in enumerate(ids)]
    written, failures = write_lattices(str(out), lats, "slf")
    assert written == 3
    assert [f.utt_id for f in failures] == ids[:4]
    for f, what in zip(failures, ["symbolic link", "symbolic link", "folder", "not a regular"]):
        assert f"{out / f.utt_id}.slf" in f.message and what in f.message
    assert victim.read_text() == "keep" and not (tmp_path / "outside.slf").exists()
    assert (out / "link.slf").is_symlink() and (out / "folder.slf").is_dir()
    for utt in ("old", "tmpname", "new"):
        assert (out / f"{utt}.slf").read_text().startswith("VERSION=1.0\nUTTERANCE=")


def test_convert_counts_a_planted_link_as_failed(tmp_path: Path) -> None:
    from lmrescore.cli import main

    lats = [random_lattice(1, "ok", 4, 5), random_lattice(2, "evil", 4, 5)]
    write_lattices(str(tmp_path / "l.pt"), lats, "k2")
    (tmp_path / "slf").mkdir()
    (tmp_path / "slf" / "evil.slf").symlink_to(tmp_path / "outside")
    args = ["convert", str(tmp_path / "l.pt"), str(tmp_path / "slf"), "--in-format", "k2",
            "--out-format", "slf", "--words", str(FIXTURES / "words.txt")]
    assert main(args) == 1
    assert main(args + ["--max-failures", "0.5"]) == 0
    assert (tmp_path / "slf" / "ok.slf").is_file() and not (tmp_path / "outside").exists()


def test_a_link_given_as_the_output_itself_is_still_written_through(tmp_path: Path) -> None:
    from lmrescore.atomic import atomic_write_text

    target = tmp_path / "real.txt"
    target.write_text("old")
    (tmp_path / "link.txt").symlink_to(target)
    atomic_write_text(tmp_path / "link.txt", "new")
    assert target.read_text() == "new" and (tmp_path / "link.txt").is_symlink()
    atomic_write_text("/dev/null", "x")


# --- 2. silently wrong: non-finite ARPA numbers, undecodable ARPA bytes, info ---------------

@pytest.mark.parametrize("old, new, line", [
    ("-0.7\ta\t-0.3", "nan\ta\t-0.3", 9), ("-0.7\ta\t-0.3", "inf\ta\t-0.3", 9),
    ("-0.7\ta\t-0.3", "-0.7\ta\tnan", 9), ("-0.7\ta\t-0.3", "-0.7\ta\t-inf", 9),
    ("-0.3\t<s> a", "NaN\t<s> a", 12), ("-0.4\ta </s>", "+Infinity\ta </s>", 13)])
def test_arpa_numbers_must_be_finite(tmp_path: Path, old: str, new: str, line: int) -> None:
    from test_arpa import SMALL

    from lmrescore.lm.arpa import read_arpa

    path = tmp_path / "lm.arpa"
    path.write_text(SMALL.replace(old, new))
    with pytest.raises(InputError, match=rf"lm.arpa:{line}: .*not finite"):
        read_arpa(path)


def test_arpa_minus_inf_log_prob_is_srilm_minus_99(tmp_path: Path) -> None:
    from test_arpa import SMALL

    from lmrescore.lm.arpa import read_arpa

    path = tmp_path / "lm.arpa"
    path.write_text(SMALL.replace("-99\t<s>", "-inf\t<s>"))
    assert read_arpa(path).tables[0].prob.tolist() == [-1.0, -99.0, -0.5, -0.7]


def test_arpa_bad_byte_and_byte_cap_are_one_error_line(tmp_path: Path) -> None:
    from test_arpa import SMALL

    from lmrescore.lm.arpa import read_arpa

    path = tmp_path / "lm.arpa"
    path.write_bytes(SMALL.replace("\ta\t", "\ta\xff\t").encode("latin-1"))
    with pytest.raises(InputError, match=r"lm.arpa:9: not UTF-8"):
        read_arpa(path)
    path.write_text(SMALL)
    with pytest.raises(InputError, match=r"lm.arpa: more than 100 bytes"):
        read_arpa(path, max_bytes=100)


def test_score_with_a_nan_arpa_is_one_error_line(tmp_path: Path, capsys) -> None:
    from test_arpa import SMALL
    from test_untrusted_readers import score_args_with_an_id

    from lmrescore.cli import main

    (tmp_path / "lm.arpa").write_text(SMALL.replace("-0.7\ta\t-0.3", "nan\ta\t-0.3"))
    args = score_args_with_an_id(tmp_path, 0, "u0") + ["--old-lm", str(tmp_path / "lm.arpa")]
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lm.arpa:9:" in err[0] and "not finite" in err[0]


def _info_lattices() -> list[Lattice]:
    """good1, a NaN cost, a cycle, no path to the final state, good2 (words of the fixtures)."""
    sc = lambda *am: {"am": list(am), "lm": [0.0] * len(am)}  # noqa: E731
    return [Lattice.from_arcs("good1", 3, [0, 1], [1, 2], [3, -1], sc(-1.0, 0.0)),
            Lattice.from_arcs("nan", 3, [0, 0, 1], [1, 1, 2], [3, 4, -1],
                              sc(float("nan"), -1.0, 0.0)),
            Lattice.from_arcs("cycle", 3, [0, 1, 1], [1, 1, 2], [3, 4, -1], sc(-1.0, -1.0, 0.0)),
            Lattice.from_arcs("nopath", 3, [0, 1], [1, 1], [3, 4], sc(-1.0, -1.0)),
            Lattice.from_arcs("good2", 3, [0, 0, 1], [1, 1, 2], [5, 6, -1], sc(-2.0, -1.0, 0.0))]


def test_info_fails_a_nan_cyclic_or_pathless_lattice_alone(tmp_path: Path, capsys) -> None:
    from lmrescore.cli import main

    write_lattices(f"ark:{tmp_path / 'lat.ark'}", _info_lattices(), "kaldi")
    args = ["info", f"ark:{tmp_path / 'lat.ark'}", "--words", str(FIXTURES / "words.txt"),
            "--one-best", str(tmp_path / "hyp"), "--json"]
    capsys.readouterr()
    assert main(args) == 1
    record = __import__("json").loads(capsys.readouterr().out)
    assert (record["lattices"], record["failed"]) == (2, 3)
    hyp = (tmp_path / "hyp").read_text().splitlines()
    assert [line.split()[0] for line in hyp] == ["good1", "good2"]
    assert main(args + ["--max-failures", "0.6"]) == 0
    alone = _info_lattices()[::4]
    write_lattices(f"ark:{tmp_path / 'good.ark'}", alone, "kaldi")
    assert main(["info", f"ark:{tmp_path / 'good.ark'}", "--words", str(FIXTURES / "words.txt"),
                 "--one-best", str(tmp_path / "hyp_alone")]) == 0
    assert (tmp_path / "hyp_alone").read_text().splitlines() == hyp


# --- 3. Kaldi text lattices: state ids are renumbered, not allocated by value --------------

def _text_archive(big_state: int) -> str:
    good = "{u}\n0\t1\t3\t1,2,\n1\t2\t4\t0.5,0,\n2\t0,0,\n\n"
    big = f"big\n0\t{big_state}\t3\t1,2,\n{big_state}\t0,0,\n\n"
    return good.format(u="good1") + big + good.format(u="good2")


def test_kaldi_text_state_id_near_2_31_is_renumbered_not_allocated(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(_text_archive(2**31 - 2))
    (tmp_path / "b.txt").write_text(_text_archive(2))
    code = f"""
        from formats_testing import assert_same
        from lmrescore.formats import read_lattices
        big = dict(read_lattices("ark,t:{tmp_path / 'a.txt'}", "kaldi"))
        small = dict(read_lattices("ark,t:{tmp_path / 'b.txt'}", "kaldi"))
        assert list(big) == ["good1", "big", "good2"], big
        for utt in big:
            assert_same(big[utt], small[utt])
        print("ok")
    """
    result = run_capped(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_kaldi_text_states_over_the_cap_fail_that_lattice() -> None:
    from lmrescore.formats.kaldi_text import parse_text

    block = b"0\t1\t3\n1\t7\t4\n7\t9\t5\n9\n"
    assert parse_text(block, "u", 5, None, max_states=4).num_states == 5  # 4 + the final state
    with pytest.raises(InputError, match=r"utterance u \(line 5\): 4 states; at most 3"):
        parse_text(block, "u", 5, None, max_states=3)


# --- 4. checkpoints and configs --------------------------------------------------------------

def _edited_checkpoint(tmp_path: Path, edit) -> Path:
    """The tiny test model's checkpoint with ``edit(payload)`` applied, saved as bad.pt."""
    import torch
    from test_cli_score import make_model

    make_model(tmp_path / "lm.pt")
    payload = torch.load(tmp_path / "lm.pt", weights_only=True)
    edit(payload)
    torch.save(payload, tmp_path / "bad.pt")
    return tmp_path / "bad.pt"


def _set(path: str, value):
    def edit(payload: dict) -> None:
        *keys, last = path.split(".")
        d = payload
        for k in keys:
            d = d[k]
        d[last] = value
    return edit


def _drop(key: str):
    return lambda payload: payload.pop(key)


def _reshape(payload: dict) -> None:
    name = next(iter(payload["model"]))
    payload["model"][name] = payload["model"][name][:-1]


CHECKPOINT_CASES = {
    "hidden 1e6": (_set("config.model.hidden_dim", 10**6), r"shape"),
    "100,000 layers": (_set("config.model.num_layers", 100_000), r"100000 layers"),
    "order 1e9": (_set("config.model.order", 10**9), r"order"),
    "no weights": (_drop("model"), r"lacks 'model'"),
    "no config": (_drop("config"), r"lacks 'config'"),
    "wrong shape": (_reshape, r"shape"),
    "extra weight": (_set("model.extra", __import__("torch").zeros(2)), r"extra"),
    "vocab a string": (_set("vocab", "abc"), r"vocabulary is not a list of words"),
    "vocab of ints": (_set("vocab", list(range(20))), r"vocabulary is not a list of words"),
    "duplicate words": (lambda p: p["vocab"].__setitem__(5, p["vocab"][6]), r"twice"),
    "bad sentencepiece": (lambda p: p.update(units="sentencepiece", sp_model=b"\x00junk"),
                          r"sentencepiece"),
    "config a list": (_set("config", [1, 2]), r"expected a mapping"),
    "hidden a string": (_set("config.model.hidden_dim", "8"), r"hidden_dim.*int"),
}


BOMBS = ("hidden 1e6", "100,000 layers", "order 1e9")  # in a child under RLIMIT_AS, timed


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_a_bad_checkpoint_is_one_input_error_naming_the_file(tmp_path: Path, case: str) -> None:
    from lmrescore.lm.checkpoint import load_model

    edit, message = CHECKPOINT_CASES[case]
    path = _edited_checkpoint(tmp_path, edit)
    if case not in BOMBS:
        with pytest.raises(InputError, match=re.escape(str(path)) + ".*" + message):
            load_model(path)
        return
    code = f"""
        import time
        from lmrescore.errors import InputError
        from lmrescore.lm.checkpoint import load_model
        start = time.perf_counter()
        try:
            load_model({str(path)!r})
        except InputError as e:
            print(f"{{time.perf_counter() - start:.1f}}", e)
    """
    result = run_capped(code, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    seconds, message_out = result.stdout.split(" ", 1)
    assert str(path) in message_out and re.search(message, message_out), message_out
    assert float(seconds) < 10


def test_eval_with_a_bad_checkpoint_is_one_error_line(tmp_path: Path, capsys) -> None:
    from lmrescore.cli import main

    path = _edited_checkpoint(tmp_path, _set("config.model.num_layers", 100_000))
    (tmp_path / "t.txt").write_text("a b\n")
    capsys.readouterr()
    assert main(["eval", "--model", str(path), "--text", str(tmp_path / "t.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0]


YAML_CASES = {
    "syntax": ("train: {batch_size: 3\n", r"not valid YAML"),
    "tag": ("train: !!python/object:os.system {}\n", r"not valid YAML"),
    "batch_size 0": ("train:\n  batch_size: 0\n", r"batch_size must be >= 1"),
    "string for a number": ("train:\n  lr: fast\n", r"lr.*float.*'fast'"),
    "list for a string": ("data:\n  corpus: [a, b]\n", r"corpus.*str"),
    "alias bomb": ("data:\n  corpus:\n    - &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"    - &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
        r"alias"),
}


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_a_bad_config_is_one_input_error_naming_the_file(tmp_path: Path, case: str) -> None:
    from lmrescore.lm.config import ExperimentConfig

    text, message = YAML_CASES[case]
    (tmp_path / "c.yaml").write_text(text)
    if case != "alias bomb":
        with pytest.raises(InputError, match="c.yaml.*" + message):
            ExperimentConfig.load(tmp_path / "c.yaml")
        return
    code = f"""
        from lmrescore.errors import InputError
        from lmrescore.lm.config import ExperimentConfig
        try:
            ExperimentConfig.load({str(tmp_path / 'c.yaml')!r})
        except InputError as e:
            print(e)
    """
    result = run_capped(code, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "c.yaml" in result.stdout and re.search(message, result.stdout), result.stdout


# --- 5. corpora: one line of 200 MB is not one sentence of 42M tokens ------------------------

def test_a_sentence_over_max_sentence_tokens_is_refused_with_file_and_line(tmp_path: Path) -> None:
    from lmrescore.lm.data import iter_sentences

    path = tmp_path / "c.txt"
    path.write_text("a b\n" + "x " * 6 + "\nc d e\n")
    assert len(list(iter_sentences(path, max_tokens=6))) == 3
    with pytest.raises(InputError, match=r"c.txt:2: 6 tokens, more than "
                                         r"data.max_sentence_tokens=5"):
        list(iter_sentences(path, max_tokens=5))
    path.write_text("a b\n" + "x" * 500)
    with pytest.raises(InputError, match=r"c.txt:2: a line longer than 320 bytes"):
        list(iter_sentences(path, max_tokens=5))


def test_a_200_mb_line_fails_fast_in_eval_and_train(tmp_path: Path) -> None:
    from test_cli_score import make_model

    make_model(tmp_path / "lm.pt")
    with open(tmp_path / "big.txt", "wb") as f:
        f.write(b"a b\n")
        for _ in range(100):
            f.write(b"ab " * 700_000)  # 210 MB, 70M tokens, no newline
    (tmp_path / "small.txt").write_text("a b\n")
    (tmp_path / "c.yaml").write_text("model: {hidden_dim: 8}\ntrain: {epochs: 1}\n")
    code = f"""
        from lmrescore.cli import main
        print(main(["--log-level", "ERROR", "eval", "--model", {str(tmp_path / 'lm.pt')!r},
                    "--text", {str(tmp_path / 'big.txt')!r}]))
        print(main(["--log-level", "ERROR", "train", "--exp-dir", {str(tmp_path / 'exp')!r},
                    "--config", {str(tmp_path / 'c.yaml')!r},
                    "--train", {str(tmp_path / 'big.txt')!r},
                    "--valid", {str(tmp_path / 'small.txt')!r}]))
    """
    result = run_capped(code, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "1"], result.stdout
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 2 and all("big.txt:2: a line longer than" in e for e in errors), errors


# --- 6. Kaldi archives: a bad entry never takes the next ones with it ------------------------

def _read_both(path: Path, text: bool) -> tuple[list, list]:
    """(utt, lattice or error) of ``path`` read entry by entry, and by the batched reader."""
    from lmrescore.formats.archive import read_kaldi, read_kaldi_batches

    spec = f"ark{',t' if text else ''}:{path}"
    batched = []
    for lat, errors in read_kaldi_batches(spec, batch_size=3):
        batched += errors + ([(u, lat.select([i])) for i, u in enumerate(lat.utt_ids)]
                             if lat is not None else [])
    return list(read_kaldi(spec)), batched


def _archive(tmp_path: Path, n: int, text: bool) -> tuple[bytes, list[Lattice]]:
    lats = [random_lattice(i, f"u{i}", 5, 8) for i in range(n)]
    path = tmp_path / "clean.ark"
    write_lattices(f"ark{',t' if text else ''}:{path}", lats, "kaldi")
    return path.read_bytes(), lats


def _assert_alone(items: list, lats: list[Lattice], bad: set[str], path: Path) -> None:
    """Every lattice not in ``bad`` is read as written; ``bad`` ones fail, named with the file."""
    from formats_testing import assert_same

    got = {u: v for u, v in items if u not in bad}
    for lat in lats:
        if lat.utt_ids[0] not in bad:
            assert_same(got.pop(lat.utt_ids[0]), lat)
    assert not got, got
    errors = [(u, v) for u, v in items if u in bad]
    assert [u for u, _ in errors] == sorted(bad), items
    assert all(isinstance(v, InputError) and str(path) in str(v) and "offset" in str(v)
               for _, v in errors), errors


@pytest.mark.parametrize("text", [False, True])
def test_a_newline_after_a_binary_key_fails_that_entry_alone(tmp_path: Path, text: bool) -> None:
    data, lats = _archive(tmp_path, 5, False)
    if text:  # a text archive missing the empty line between u1 and u2
        data, lats = _archive(tmp_path, 5, True)
        at = data.index(b"\n\nu2 \n")
        data = data[:at + 1] + data[at + 2:]
    else:
        at = data.index(b"u1 ") + 2
        data = data[:at] + b"\n" + data[at + 1:]
    (tmp_path / "bad.ark").write_bytes(data)
    for items in _read_both(tmp_path / "bad.ark", text):
        _assert_alone(items, lats, {"u1"}, tmp_path / "bad.ark")


@pytest.mark.parametrize("text", [False, True])
def test_random_bytes_inserted_in_one_entry_never_lose_another(tmp_path: Path,
                                                               text: bool) -> None:
    import numpy as np

    data, lats = _archive(tmp_path, 40, text)
    starts = [data.index(b"u%d " % i) for i in range(40)] + [len(data)]
    rng = np.random.default_rng(27)
    for i in range(40):
        at = int(rng.integers(starts[i] + 1, starts[i + 1] - 1))
        junk = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        if i % 4 == 0:
            junk = b"\n" + junk
        path = tmp_path / f"bad{i}.ark"
        path.write_bytes(data[:at] + junk + data[at:])
        for items in _read_both(path, text):
            others = [(u, v) for u, v in items if u != f"u{i}" and u in {f"u{j}" for j in
                                                                          range(40)}]
            rest = len(items) - len(others)
            assert rest >= 1, (i, items)  # entry i: a lattice (maybe renamed) or its errors
            _assert_alone(others, lats[:i] + lats[i + 1:], set(), path)


def test_non_utf8_keys_fail_each_entry_alone_never_merged(tmp_path: Path) -> None:
    data, lats = _archive(tmp_path, 5, False)
    data = data.replace(b"u1 ", b"\xff1 ").replace(b"u2 ", b"\xfe1 ")
    (tmp_path / "bad.ark").write_bytes(data)
    for items in _read_both(tmp_path / "bad.ark", False):
        assert [u for u, _ in items] == ["u0", "\\xff1", "\\xfe1", "u3", "u4"] or \
            sorted(u for u, _ in items) == sorted(["u0", "\\xff1", "\\xfe1", "u3", "u4"]), items
        bad = [v for u, v in items if u.startswith("\\x")]
        assert all(isinstance(v, InputError) and "not UTF-8" in str(v) for v in bad), bad
        _assert_alone([(u, v) for u, v in items if not u.startswith("\\x")],
                      [lats[0], lats[3], lats[4]], set(), tmp_path / "bad.ark")


# --- 7. --max-arcs is checked before a level of the expansion is allocated ---------------------

def test_max_arcs_fails_a_wide_lattice_before_its_next_level_is_allocated() -> None:
    code = """
        import torch
        from lmrescore.lattice.lattice import Lattice
        from lmrescore.rescoring.expand import TokenTable, expand

        def wide(utt, widths):  # one level of parallel words per width, then the final arc
            src = torch.cat([torch.full((w,), i) for i, w in enumerate(widths)]
                            + [torch.tensor([len(widths)])])
            label = torch.cat([torch.arange(1, w + 1) for w in widths] + [torch.tensor([-1])])
            return Lattice.from_arcs(utt, len(widths) + 2, src, src + 1, label,
                                     {"am": torch.zeros(src.shape[0])})

        table = TokenTable(torch.arange(3001), torch.arange(3002))
        bomb, good = wide("bomb", [400, 400, 3000]), wide("good", [3, 4, 5])
        both = expand(Lattice.cat([good, bomb, good]), table, 2, 0, max_arcs=1_000_000)
        alone = expand(good, table, 2, 0, max_arcs=1_000_000)
        assert list(both.failed) == [1] and "--max-arcs 1000000" in both.failed[1], both.failed
        assert both.kept == [0, 2]
        n = alone.lattice.num_arcs
        assert both.lattice.num_arcs == 2 * n
        assert torch.equal(both.history[: alone.history.shape[0]], alone.history)
        print("ok")
    """
    result = run_capped(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


# --- 8. a batch is bounded by its states plus arcs, not only by its number of lattices ---------

@pytest.mark.parametrize("text", [False, True])
def test_a_batch_is_closed_before_it_passes_max_items(tmp_path: Path, text: bool) -> None:
    from formats_testing import assert_same

    from lmrescore.formats.archive import iter_archive_batches
    from lmrescore.formats.batch import batches, size

    data, lats = _archive(tmp_path, 12, text)
    cap = 2 * size(lats[0])
    for got in (list(iter_archive_batches(data, max_items=cap)),
                list(batches(((lat.utt_ids[0], lat) for lat in lats), max_items=cap))):
        assert all(size(b) <= cap or b.num_lattices == 1 for b, _ in got)
        read = [b.select([i]) for b, _ in got for i in range(b.num_lattices)]
        assert len(got) > 4 and len(read) == 12
        for a, b in zip(read, lats):
            assert_same(a, b)
