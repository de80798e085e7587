"""Online learning research: FPP (fixed point propagation), T-BPTT, packed runs, FPP on the LM,
and the CycleWorld / sequential-MNIST tasks."""
