#!/usr/bin/env bash
# FPP vs truncated BPTT on p-CycleWorld (Nath et al., "Training Recurrent Neural Networks Online
# by Learning Explicit State Variables", ICLR 2020), and FPP's buffer-size x n sensitivity.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--quick true] [--period 6]
#                 [--optimizer adagrad|rmsprop] [--lr LR] [--updates "1 2 4 8"]
#                 [--truncations "1 2 ... 8"] [--sens-buffers "10 ... 10000"]
#                 [--sens-updates "1 2 4"]   (an empty --sens-buffers skips the sensitivity runs)
#   stage 1: FPP with n updates/step and T-BPTT with truncation T (one gradient computation per
#            sampled transition / per back-propagated step), exp/p$period/compare/*.json
#   stage 2: FPP sensitivity: buffer size N x n, exp/p$period/sensitivity/*.json
#   stage 3: plots and RESULTS.md (--quick: exp/p${period}_quick/RESULTS.md) from those
#            records, with local/why_tbptt.md (why T-BPTT with T < p still learns here) copied in
# A run whose record exists is skipped, so an interrupted recipe continues where it stopped.
# --optimizer / --lr override conf/cycleworld.yaml (Adagrad 0.1, ours); the authors' code uses
# RMSProp (lr 0.01 in their CycleWorld scripts).
# The defaults are the published settings (300k steps, 5 seeds); --quick true runs a small
# budget (30k steps, 3 seeds, fewer settings) that finishes in minutes on one CPU core.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

stage=1
stop_stage=3
quick=false
period=6
updates="1 2 4 8"            # FPP n
truncations="1 2 3 4 5 6 7 8" # T-BPTT T
sens_buffers="10 100 1000 10000"
sens_updates="1 2 4"
optimizer=
lr=

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --quick) quick=$2; shift 2 ;;
    --period) period=$2; shift 2 ;;
    --updates) updates=$2; shift 2 ;;
    --truncations) truncations=$2; shift 2 ;;
    --sens-buffers) sens_buffers=$2; shift 2 ;;
    --sens-updates) sens_updates=$2; shift 2 ;;
    --optimizer) optimizer=$2; shift 2 ;;
    --lr) lr=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done

conf=conf/cycleworld.yaml
extra=()
budget="full: the settings of $conf (300000 steps, 5 seeds)"
exp=exp/p$period
results=RESULTS.md
if [ "$quick" = true ]; then  # the two budgets never mix records; RESULTS.md is the full one's
  exp=exp/p${period}_quick; results=$exp/RESULTS.md
  extra=(--steps 30000 --runs 3)
  updates="1 2"; truncations="1 3 6"; sens_buffers="10 100 1000"; sens_updates="1"
  budget="quick (--quick true): 30000 steps, 3 seeds"
fi
budget="$budget, FPP n in {$updates}, T-BPTT T in {$truncations}"
if [ -n "$sens_buffers" ]; then
  budget="$budget, sensitivity N in {$sens_buffers} x n in {$sens_updates}"
else
  budget="$budget, no sensitivity runs"
fi
if [ -n "$optimizer" ]; then extra+=(--optimizer $optimizer); budget="$budget, --optimizer $optimizer"; fi
if [ -n "$lr" ]; then extra+=(--lr $lr); budget="$budget, --lr $lr"; fi

# One run, unless its record exists (records are written whole): a rerun continues.
run_once() {
  local out=$1; shift
  if [ -f $out ]; then echo "$0: $out exists, skipping"; return; fi
  lmrescore fpp cycleworld --config $conf --period $period "$@" "${extra[@]}" --out $out
}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for n in $updates; do
    run_once $exp/compare/fpp_n$n.json --method fpp --updates $n
  done
  for T in $truncations; do
    run_once $exp/compare/tbptt_T$T.json --method tbptt --truncation $T
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for N in $sens_buffers; do
    for n in $sens_updates; do
      run_once $exp/sensitivity/fpp_n${n}_N$N.json --method fpp --updates $n --buffer $N
    done
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  [ -d $exp/compare ] || { echo "$0: $exp/compare missing: run stage 1 first" >&2; exit 1; }
  lmrescore fpp report --kind cycleworld --exp-dir $exp --results $results --budget "$budget" \
    --notes local/why_tbptt.md
fi
