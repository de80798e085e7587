"""Size caps for one untrusted lattice, ARPA file or model order, checked on the counts a file
claims before anything they size is allocated: time and memory are bounded by the caps, not by
the input.

The byte caps are set from each reader's measured cost (``python3 bench/oversize.py
--parse-cost``, bench/RESULTS.md): peak memory is about a fixed multiple of the bytes parsed,
stated with each cap, so that the largest input a cap lets through parses in well under 2 GB.

Readers take them as ``max_states`` / ``max_arcs`` / ``max_bytes`` arguments; these are the
defaults. A lattice over a cap fails alone, with an error naming the cap.
"""

MAX_STATES = 10_000_000
"""States of one lattice (k2: per FSA, as its row splits or largest state id claim)."""

MAX_ARCS = 50_000_000
"""Arcs of one lattice (SLF: links, ``L=``)."""

MAX_SLF_BYTES = 32 << 20
"""Bytes of one SLF file after decompression: parsing one of tiny tokens peaks at about 33
times its bytes (about 1.1 GB at the cap)."""

MAX_ENTRY_BYTES = 8 << 20
"""Bytes of one Kaldi archive entry (key and value): a reader holds at most about this much of
an archive (plus a chunk); parsing a text or binary entry of tiny records peaks at about 90
times its bytes (about 0.75 GB at the cap)."""

MAX_BATCH_ITEMS = 5_000_000
"""States plus arcs of one batch of lattices: a batch is closed before a lattice that would pass
it (a lattice larger than this is a batch alone, bounded by its own caps), so per-lattice caps
bound a batch too."""

MAX_K2_BYTES = 4 << 30
"""Bytes of one k2 ``.pt`` file: ``torch.load`` reads a file whole before any FSA can be checked,
so the file's size is what bounds its cost (it is a batch of lattices, hence the larger cap)."""

MAX_FST_BYTES = 512 << 20
"""Bytes of one binary OpenFst FST read whole (a Kaldi ``G.fst``, the old LM of rescoring):
reading it into n-gram tables peaks at about 23 times its bytes (a 113 MiB G.fst of 3.8M
n-grams: 2.6 GB, ``bench/old_lm.py``), so the cap bounds it at about 12 GB."""

MAX_ARPA_BYTES = 1 << 30
"""Bytes of one ARPA file after decompression: it is read whole, and parsing takes several times
it in memory."""

MAX_ORDER = 256
"""A model's fixed-point order K (a checkpoint's ``model.order``): K sweeps per scoring call and
K-word histories in the expansion."""
