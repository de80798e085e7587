"""The rescoring job of ``lmrescore score`` as one call: check the outputs -> load the LMs ->
read and rescore batch after batch -> 1-best, n-best lists, lattices -> under torchrun, every
process's share merged by rank 0 in input order -> WER and summary -> exit status.

    from lmrescore.rescoring.job import JobOptions, LmFile, rescore_job
    done = rescore_job(JobOptions([LmFile("exp/afp8/best.pt")], "ark:lat.ark", "words.txt"))
    print(done.run.one_best)  # utt_id -> words of the rescored 1-best

Under torchrun each process rescores every world-th batch (lmrescore/rescoring/sharded.py) and
rank 0 writes the bytes one process writes.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from lmrescore.atomic import atomic_write_text
from lmrescore.distributed import Dist, world_size
from lmrescore.errors import InputError
from lmrescore.formats import input_format, read_lattice_batches, write_lattices
from lmrescore.formats.outputs import check_output, is_std
from lmrescore.formats.parts import write_part
from lmrescore.lattice.lattice import Lattice
from lmrescore.lm.arpa import NgramLM
from lmrescore.rescoring.combination import ScoredLM
from lmrescore.rescoring.lm_file import load_lm
from lmrescore.rescoring.metrics import read_text
from lmrescore.rescoring.pipeline import RunSummary, rescored_batches
from lmrescore.rescoring.rescorer import (DEFAULT_BEAM, DEFAULT_PRUNE_ORDER, LatticeRescorer,
                                          RescoreOptions)
from lmrescore.rescoring.sharded import Share, merge_shares
from lmrescore.vocab import Vocab


@dataclass
class LmFile:
    """An LM of the job, from its file (a checkpoint, an ARPA file or a G.fst:
    :func:`lmrescore.rescoring.lm_file.load_lm`).

    Attributes:
        path: the file.
        scale: its weight in the combined score (negative: taken out of the graph score).
        name: its score column in the rescored lattices (default: ``lm_<i>``, i its position).
        oov_cost: charge ``unk_penalty`` per lattice word outside its vocabulary (default: a
            checkpoint yes; an n-gram no, a word outside it scoring as its ``<unk>`` as in the
            first pass).
        source: how it was given, for error lines (default: the name).
    """

    path: str
    scale: float = 1.0
    name: str = ""
    oov_cost: bool | None = None
    source: str = ""


@dataclass
class JobOptions:
    """A rescoring job.

    Attributes:
        lms: the LMs, combined by their scales; the first one is scored by the method.
        lattice: Kaldi rspecifier, SLF directory / list / scp, or k2 ``.pt`` file.
        words: the lattices' words.txt.
        rescore: how each batch is rescored (``keep_attributes`` is set by ``write_lattice``);
            default: ``score``'s pruning (``beam`` DEFAULT_BEAM, ``prune_order``
            DEFAULT_PRUNE_ORDER), which real lattices need to stay within ``max_arcs``.
        format: the input's format (``auto``: k2 for ``.pt``, else kaldi).
        batch_size: lattices per batch (under torchrun, batch i goes to process i mod world).
        device: ``cpu`` or ``cuda`` (``cuda:<local rank>`` under torchrun).
        one_best, nbest_out, write_lattice, summary: outputs (None: not written; ``-``:
            stdout): 1-best lines, n-best lists (``rescore.num_paths`` each), rescored lattices
            (in ``out_format``, default the input's), the JSON summary.
        ref: reference text ``utt w1 w2 ...``: the WER goes into the summary.
        max_failures: the exit status is 1 when more than this fraction of lattices failed.
        shard_timeout: under torchrun, seconds a process that has done its share waits for
            the others.
    """

    lms: list[LmFile]
    lattice: str
    words: str | None
    rescore: RescoreOptions = field(default_factory=lambda: RescoreOptions(
        beam=DEFAULT_BEAM, prune_order=DEFAULT_PRUNE_ORDER))
    format: str = "auto"
    batch_size: int = 32
    device: str = "cpu"
    one_best: str | None = None
    nbest_out: str | None = None
    write_lattice: str | None = None
    out_format: str | None = None
    ref: str | None = None
    summary: str | None = None
    max_failures: float = 0.0
    shard_timeout: float = 6 * 3600


@dataclass
class JobSummary:
    """What the job did.

    Attributes:
        run: the job's totals and 1-best (None in a torchrun process other than rank 0).
        summary: what ``summary`` holds ({} outside rank 0).
        exit_status: 1 when more than ``max_failures`` of the lattices failed, else 0 (rank 0's,
            in every process).
    """

    run: RunSummary | None
    summary: dict[str, Any]
    exit_status: int


def rescore_job(options: JobOptions) -> JobSummary:
    """Run the job in one process, or this process's share of a torchrun job."""
    if world_size() == 1:
        return _run(options, None)
    if is_std(options.lattice):
        raise InputError("under torchrun every process reads the whole input: --lattice "
                         "cannot be stdin")
    job = Dist.from_env("cpu", timedelta(seconds=options.shard_timeout))
    if not job.is_main:  # one log, one progress bar and one "Done" line for the job
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return _run(options, job)
    finally:
        job.close()


def load_lms(lms: list[LmFile], symbols: Vocab, device: str, order: int | None = None
             ) -> list[ScoredLM]:
    """Each LM from its file, named ``lm_<i>`` unless it has a name (``order``: K, which a
    Hugging Face LM needs)."""
    out = []
    for i, f in enumerate(lms):
        model, units = load_lm(f.path, symbols, device, order)
        oov_cost = not isinstance(model, NgramLM) if f.oov_cost is None else f.oov_cost
        out.append(ScoredLM(f.name or f"lm_{i}", model, units, f.scale, oov_cost, f.source))
    return out


def _check_outputs(o: JobOptions) -> str:
    """Every output writable, before any work; stdout taken at most once. Returns the lattice
    output's format."""
    for option, path in [("--one-best", o.one_best), ("--nbest-out", o.nbest_out),
                         ("--summary", o.summary)]:
        check_output(path, option)
    out_format = o.out_format or input_format(o.lattice, o.format)
    check_output(o.write_lattice, "--write-lattice", out_format)
    if o.one_best == "-" and is_std(o.write_lattice):
        raise InputError("--write-lattice and --one-best both write to stdout: give "
                         "--one-best a file (or /dev/null)")
    if not o.words:
        raise InputError("--words is needed to map lattice labels to words")
    return out_format


def _run(o: JobOptions, job: Dist | None) -> JobSummary:
    """Rescore in one process (``job`` None) or this process's share of a torchrun job."""
    tic = time.time()
    out_format = _check_outputs(o)
    device = o.device if job is None else job.device(o.device)
    symbols = Vocab.load(o.words)
    options = replace(o.rescore, keep_attributes=o.write_lattice is not None)
    rescorer = LatticeRescorer.combining(load_lms(o.lms, symbols, device, options.order),
                                         symbols, options)
    batches = read_lattice_batches(o.lattice, o.format, symbols, o.batch_size, "unk")
    run = RunSummary()
    share = (0, 1) if job is None else (job.rank, job.world)
    done: list[tuple[int, list[str]]] = []  # (input index, utterances) of each rescored batch
    nbest: dict[str, str] = {}

    def rescored_lattices() -> Iterator[Lattice]:
        """Each rescored batch's lattices, its n-best lists kept on the way."""
        for i, result in rescored_batches(rescorer, batches, run, share[0] == 0, share):
            if result.lattice is None:
                continue
            done.append((i, result.lattice.utt_ids))
            if o.nbest_out:
                for u, paths in zip(result.lattice.utt_ids,
                                    rescorer.nbest_lists(result, options.num_paths)):
                    nbest[u] = "".join(f"{u}-{k} {' '.join(symbols.decode(w))}\n"
                                       for k, w in enumerate(paths, 1))
            yield result.lattice

    part = None
    if o.write_lattice and job is not None:  # this process's part, joined by rank 0
        part = write_part(o.write_lattice, out_format, rescored_lattices(), job.rank)
        run.failed += part.failed
    elif o.write_lattice:  # written batch by batch as they are rescored: memory stays flat
        _, write_failed = write_lattices(o.write_lattice, rescored_lattices(), out_format)
        run.failed += write_failed  # e.g. an utterance id that cannot be an SLF file name
    else:
        deque(rescored_lattices(), maxlen=0)
    if job is not None:
        merged = merge_shares(job, Share(run, done, nbest, part), o.write_lattice, out_format)
        if merged is None:  # not rank 0: its share is with rank 0, which writes and decides
            return JobSummary(None, {}, job.broadcast(None))
        run, nbest = merged
    if o.one_best is not None:
        atomic_write_text(o.one_best, "".join(f"{u} {' '.join(w)}\n"
                                              for u, w in run.one_best.items()))
    if o.nbest_out:
        atomic_write_text(o.nbest_out, "".join(nbest.values()))
    summary = _summary(o, rescorer, run, time.time() - tic, job)
    if o.summary:
        atomic_write_text(o.summary, json.dumps(summary, indent=1) + "\n")
    code = 1 if len(run.failed) > o.max_failures * max(1, run.lattices) else 0
    return JobSummary(run, summary, code if job is None else job.broadcast(code))


def _summary(o: JobOptions, rescorer: LatticeRescorer, run: RunSummary, seconds: float,
             job: Dist | None) -> dict[str, Any]:
    """The run summary: settings, each LM (its column: its file; ``<column>_scale``), totals,
    WER against ``o.ref``."""
    r = rescorer.options
    summary = {"method": r.method, "order": rescorer.order,
               **{k: getattr(r, k) for k in rescorer.method.summary},
               "first_pass_scale": r.first_pass_scale,
               **{k: v for f, lm in zip(o.lms, rescorer.lms.lms)
                  for k, v in ((lm.name, f.path), (f"{lm.name}_scale", lm.scale))},
               **run.to_dict(), "unk_penalty": rescorer.unk_penalty,
               "acoustic_scale": r.weights.acoustic_scale, "seconds": seconds,
               **({} if job is None else {"processes": job.world})}
    if o.ref:
        refs = read_text(o.ref)
        errors, scored = run.word_errors(refs)
        summary.update(wer=errors.wer, wer_detail=str(errors), wer_utterances=scored,
                       ref_utterances=len(refs))
    return summary

