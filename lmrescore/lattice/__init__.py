"""Word lattices: the batched Lattice record, ragged helpers, the one derivation primitive, and
the algorithms over it (levels, best path, posteriors, pruning, determinization, n-best, oracle)."""
