"""Lattice rescoring with an LM: the weights record, the method registry (exact order-K,
Kaldi's n-gram approximation, n-best), the pipeline over a stream of lattices, tuning, WER."""
