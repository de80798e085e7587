"""Split batches into single lattices and assemble single lattices into batches; write a stream of
batches one lattice at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from lmrescore.errors import Failure, InputError
from lmrescore.formats.limits import MAX_BATCH_ITEMS
from lmrescore.lattice.lattice import Lattice

log = logging.getLogger(__name__)


def unbatch(lat: Lattice) -> Iterator[Lattice]:
    """Each lattice of a batch as a batch of one.

    Args:
        lat: a batch of L lattices.
    Returns:
        an iterator of L batches of one (``lat.select([i])``), local state ids starting at 0.
    """
    if lat.num_lattices == 1 and int(lat.state_splits[0]) == 0:
        yield lat
        return
    for i in range(lat.num_lattices):
        yield lat.select([i])


def join(lattices: list[Lattice]) -> Lattice:
    """One batch of the lattices of several batches, keeping the scores and attributes all have."""
    return lattices[0] if len(lattices) == 1 else Lattice.cat(_common(lattices))


def _common(lattices: list[Lattice]) -> list[Lattice]:
    """Drop the scores and attributes that not every lattice has, so they can be concatenated."""
    def keep(field: str) -> set[str]:
        return set.intersection(*(set(getattr(x, field)) for x in lattices))
    names = {f: keep(f) for f in ("scores", "arc_attrs", "state_attrs", "ragged_arc_attrs")}
    return [replace(x, **{f: {k: v for k, v in getattr(x, f).items() if k in names[f]}
                          for f in names}) for x in lattices]


def size(lat: Lattice) -> int:
    """What a batch's cost grows with: its states plus arcs."""
    return lat.num_states + lat.num_arcs


def batches(items: Iterable[tuple[str, Lattice | InputError]], batch_size: int = 100,
            max_items: int = MAX_BATCH_ITEMS
            ) -> Iterator[tuple[Lattice | None, list[tuple[str, InputError]]]]:
    """Group ``(utt_id, lattice or error)`` items into batches.

    Args:
        items: e.g. from :func:`lmrescore.formats.read_lattices`.
        batch_size: lattices per batch.
        max_items: a batch is closed before a lattice that would take its states plus arcs
            past this (:data:`~lmrescore.formats.limits.MAX_BATCH_ITEMS`).
    Returns:
        an iterator of (a batch of up to ``batch_size`` lattices or None, the errors met while
        collecting it).
    """
    good: list[Lattice] = []
    bad: list[tuple[str, InputError]] = []
    held = 0
    for utt, value in items:
        if isinstance(value, InputError):
            bad.append((utt, value))
            continue
        if good and held + size(value) > max_items:
            yield join(good), bad
            good, bad, held = [], [], 0
        good.append(value)
        held += size(value)
        if len(good) == batch_size:
            yield join(good), bad
            good, bad, held = [], [], 0
    if good or bad:
        yield (join(good) if good else None), bad


@dataclass
class ReadStats:
    """How many lattices were read and how many of them failed."""

    total: int = 0
    failed: int = 0

    def too_many(self, max_failures: float) -> bool:
        """Whether the share of failures passes ``max_failures`` (a fraction)."""
        return self.failed > max_failures * self.total


def skip_bad(items: Iterable[tuple[str, Lattice | InputError]], stats: ReadStats
             ) -> Iterator[Lattice]:
    """The good lattices of ``items``; each error is logged and counted in ``stats``."""
    for utt, value in items:
        stats.total += 1
        if isinstance(value, InputError):
            stats.failed += 1
            log.warning("skipping %s: %s", utt, value)
        else:
            yield value


def skip_bad_batches(items: Iterable[tuple[Lattice | None, list[tuple[str, InputError]]]],
                     stats: ReadStats) -> Iterator[Lattice]:
    """The batches of ``items`` (e.g. from ``read_lattice_batches``); errors logged and counted."""
    for lat, errors in items:
        stats.total += len(errors) + (lat.num_lattices if lat is not None else 0)
        stats.failed += len(errors)
        for utt, e in errors:
            log.warning("skipping %s: %s", utt, e)
        if lat is not None:
            yield lat


def write_each(lattices: Iterable[Lattice], write_one: Callable[[Lattice], None]
               ) -> tuple[int, list[Failure]]:
    """``write_one`` each lattice (a batch of one) of the batches; one whose write raises an
    ``InputError`` is logged and returned, and the others are written."""
    count, failures = 0, []
    for batch in lattices:
        for lat in unbatch(batch):
            try:
                write_one(lat)
            except InputError as e:
                log.warning("not writing %s: %s", lat.utt_ids[0], e)
                failures.append(Failure(lat.utt_ids[0], str(e)))
                continue
            count += 1
    return count, failures
