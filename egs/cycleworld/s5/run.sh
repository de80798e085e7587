#!/usr/bin/env bash
# FPP vs truncated BPTT on p-CycleWorld (Nath et al., "Training Recurrent Neural Networks Online
# by Learning Explicit State Variables", ICLR 2020), and FPP's buffer-size x n sensitivity.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--quick] [--period 6]
#                 [--optimizer adagrad|rmsprop] [--lr LR] [--updates "1 2 4 8"]
#                 [--truncations "1 2 ... 8"] [--sens-buffers "10 ... 10000"]
#                 [--sens-updates "1 2 4"]   (an empty --sens-buffers skips the sensitivity runs)
#   stage 1: FPP with n updates/step and T-BPTT with truncation T (one gradient computation per
#            sampled transition / per back-propagated step), exp/p$period/compare/*.json
#   stage 2: FPP sensitivity: buffer size N x n, exp/p$period/sensitivity/*.json
#   stage 3: plots and RESULTS.md (--quick: exp/p${period}_quick/RESULTS.md) from those
#            records (utils/fpp_report.py), with local/why_tbptt.md (why T-BPTT with T < p
#            still learns here) copied in
# CycleWorld is generated on the fly: there is no data to prepare.
# A run whose record exists is skipped, so an interrupted recipe continues where it stopped.
# --optimizer / --lr override conf/cycleworld.yaml (Adagrad 0.1, ours); the authors' code uses
# RMSProp (lr 0.01 in their CycleWorld scripts).
# The defaults are the published settings (conf/cycleworld.yaml); --quick runs a small budget
# (conf/quick.conf: fewer steps, seeds and settings) that finishes in minutes on one CPU core.

set -euo pipefail
stage=1
stop_stage=3
quick=false
period=6                      # p
updates="1 2 4 8"             # FPP n
truncations="1 2 3 4 5 6 7 8" # T-BPTT T
sens_buffers="10 100 1000 10000"
sens_updates="1 2 4"
optimizer=
lr=
help_message=$(sed -n '2,20s/^# \{0,1\}//p' "$0")

cd "$(dirname "$0")"
. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

conf=conf/cycleworld.yaml
run_opts=()                   # options of every run
budget="full: the settings of $conf"
exp=exp/p$period
results=RESULTS.md
if $quick; then . conf/quick.conf; fi
budget="$budget, FPP n in {$updates}, T-BPTT T in {$truncations}"
if [ -n "$sens_buffers" ]; then
  budget="$budget, sensitivity N in {$sens_buffers} x n in {$sens_updates}"
else
  budget="$budget, no sensitivity runs"
fi
if [ -n "$optimizer" ]; then run_opts+=(--optimizer $optimizer); budget="$budget, --optimizer $optimizer"; fi
if [ -n "$lr" ]; then run_opts+=(--lr $lr); budget="$budget, --lr $lr"; fi

# run_once OUT OPTION ...: one run (all its seeds), unless its record exists (records are
# written whole): a rerun continues
run_once() {
  local out=$1; shift
  if [ -f $out ]; then echo "$0: $out exists, skipping"; return; fi
  local log=$(dirname $out)/log/$(basename $out .json).log
  $train_cmd $log lmrescore fpp cycleworld --config $conf --period $period "$@" "${run_opts[@]}" \
    --out $out || { echo "$0: run $out failed, see $log" >&2; exit 1; }
  grep "final accuracy per seed" $log
}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "$0: stage 1: FPP n in {$updates}, T-BPTT T in {$truncations}"
  for n in $updates; do
    run_once $exp/compare/fpp_n$n.json --method fpp --updates $n
  done
  for T in $truncations; do
    run_once $exp/compare/tbptt_T$T.json --method tbptt --truncation $T
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "$0: stage 2: FPP sensitivity, N in {$sens_buffers} x n in {$sens_updates}"
  for N in $sens_buffers; do
    for n in $sens_updates; do
      run_once $exp/sensitivity/fpp_n${n}_N$N.json --method fpp --updates $n --buffer $N
    done
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "$0: stage 3: $results"
  [ -d $exp/compare ] || { echo "$0: $exp/compare missing: run stage 1 first" >&2; exit 1; }
  utils/fpp_report.py --kind cycleworld --exp-dir $exp --results $results --budget "$budget" \
    --notes local/why_tbptt.md
fi
