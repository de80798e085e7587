# Only sets the environment: the repository's lmrescore on PYTHONPATH, C locale, one thread per run.
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
