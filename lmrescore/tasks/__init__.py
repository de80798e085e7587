"""Online prediction tasks for comparing FPP with truncated BPTT: CycleWorld, sequential MNIST."""
