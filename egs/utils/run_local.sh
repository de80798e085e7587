#!/usr/bin/env bash
# Run a command, or an array of jobs, as local processes; the interface of Kaldi's run.pl, so
# Kaldi's queue.pl (Grid Engine) or slurm.pl can replace it in cmd.sh unchanged.
#
# Usage: run_local.sh [--max-jobs-run N] [--QUEUE-OPTION VALUE ...] [JOB=1:N] LOG COMMAND ...
#   JOB=1:N runs N jobs; the word JOB in LOG and in COMMAND becomes the job index.
#   The command runs under bash, so a quoted pipe ('|') or redirection works. Each log starts
#   with the command and ends with "# Ended (code RC)". Queue options (--mem 4G,
#   --num-threads 2, --gpu 1, ...) are accepted and ignored. Exits 1 if any job failed.

set -u
max_jobs=${RUN_LOCAL_MAX_JOBS:-32}
while [ $# -gt 0 ] && [[ $1 == --* ]]; do
  [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
  [ "$1" = --max-jobs-run ] && max_jobs=$2
  shift 2
done
first=1; last=1; var=""
if [ $# -gt 0 ] && [[ $1 =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
fi
if [ $# -lt 2 ]; then
  sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 1
fi
log=$1; shift
if [ -n "$var" ] && [[ $log != *$var* ]]; then
  echo "$0: the log name $log must contain $var for a job array" >&2; exit 1
fi

cmd=""
for arg in "$@"; do
  case "$arg" in
    '|'|'||'|'&&'|';'|'>'|'>>'|'<'|'2>'|'2>&1') cmd+=" $arg" ;;
    *) cmd+=" $(printf '%q' "$arg")" ;;
  esac
done

run_job() {  # run_job INDEX: one job, logged
  local c=$cmd l=$log start rc
  if [ -n "$var" ]; then
    c=$(printf '%s' "$cmd" | sed "s/\b$var\b/$1/g")
    l=$(printf '%s' "$log" | sed "s/\b$var\b/$1/g")
  fi
  mkdir -p "$(dirname "$l")"
  start=$(date +%s)
  {
    echo "#$c"
    echo "# Started at $(date)"
    bash -c "$c"
    rc=$?
    echo "# Accounting: time=$(($(date +%s) - start)) threads=1"
    echo "# Ended (code $rc) at $(date)"
  } > "$l" 2>&1
  return $rc
}

pids=()
for ((j = first; j <= last; j++)); do
  while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do wait -n; done
  run_job "$j" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
if [ $failed -gt 0 ]; then
  echo "$0: $failed / $((last - first + 1)) failed, log is in $log" >&2
  exit 1
fi
exit 0
