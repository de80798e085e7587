#!/usr/bin/env bash
# Sequential MNIST online: FPP (n = 10 one-step updates, or one 10-step window per step) vs
# 10-step truncated BPTT vs full BPTT (Nath et al., "Training Recurrent Neural Networks Online
# by Learning Explicit State Variables", ICLR 2020).
#
# Usage: ./run.sh --mnist-dir DIR [--stage N] [--stop-stage N] [--quick true]
#   stage 0: check the data (t10k only: first 8000 images train, last 2000 test)
#   stage 1: the four runs, exp/full/*.json (test accuracy every --eval-every steps)
#   stage 2: plot and RESULTS.md from those records (--quick: exp/quick/RESULTS.md)
# Defaults are the published settings (conf/seqmnist.yaml: LSTM 128, 20 pixels/step, Adam 1e-3)
# over one pass of the training images; FPP n = 10 costs 10 updates per step (hours on a CPU).
# --quick true: 1000 steps (25 images), 2 seeds, 500 test images: minutes, near chance level.
# A run whose record exists is skipped (records are written whole): a rerun continues.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

stage=0
stop_stage=2
quick=false
mnist_dir=
updates=10
truncation=10
eval_every=4000
test_images=0

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --quick) quick=$2; shift 2 ;;
    --mnist-dir) mnist_dir=$2; shift 2 ;;
    --updates) updates=$2; shift 2 ;;
    --truncation) truncation=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -n "$mnist_dir" ] || { echo "$0: --mnist-dir is required" >&2; exit 1; }

conf=conf/seqmnist.yaml
extra=()
budget="full: the settings of $conf (one pass over the training images, 3 seeds, all test images)"
exp=exp/full
results=RESULTS.md
if [ "$quick" = true ]; then  # the two budgets never mix records; RESULTS.md is the full one's
  exp=exp/quick; results=$exp/RESULTS.md
  extra=(--steps 1000 --runs 2)
  eval_every=250; test_images=500
  budget="quick (--quick true): 1000 steps (25 training images), 2 seeds, tested on the first 500 test images every 250 steps"
fi
common=(--config $conf --mnist-dir "$mnist_dir" --eval-every $eval_every --test-images $test_images)

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  local/check_mnist.sh "$mnist_dir"
fi

run_once() {
  local out=$1; shift
  if [ -f $out ]; then echo "$0: $out exists, skipping"; return; fi
  lmrescore fpp seqmnist "${common[@]}" "$@" "${extra[@]}" --out $out
}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  run_once $exp/fpp_n$updates.json --method fpp --updates $updates
  # FPP as the authors' code samples it: one window of T steps per step (T gradient computations)
  run_once $exp/fpp_n1_W$truncation.json --method fpp --updates 1 --window $truncation
  run_once $exp/tbptt_T$truncation.json --method tbptt --truncation $truncation
  # full BPTT: one update per image through all its 40 steps, scoring its labelled steps
  run_once $exp/full_bptt.json --method tbptt --truncation 40 --every 40
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  [ -d $exp ] || { echo "$0: $exp missing: run stage 1 first" >&2; exit 1; }
  lmrescore fpp report --kind seqmnist --exp-dir $exp --results $results --budget "$budget" \
    --notes local/why_fpp_differs.md
fi
