"""Training LMs: the resumable trainer (BPTT, AFP, FPP) and its learning curves."""
