# How jobs run: "$train_cmd LOG COMMAND ..." runs COMMAND with its output in LOG.
# utils/run_local.sh runs it as a local process (the default); on a cluster, Kaldi's queue.pl or
# slurm.pl take the same arguments (see egs/ptb/s5/cmd.sh).
# An online run is one process on one core: torch gets one thread unless told otherwise.
export train_cmd="run_local.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
