#!/usr/bin/env bash
# Sequential MNIST online: FPP (n = 10 one-step updates, or one 10-step window per step) vs
# 10-step truncated BPTT vs full BPTT (Nath et al., "Training Recurrent Neural Networks Online
# by Learning Explicit State Variables", ICLR 2020).
#
# Usage: ./run.sh --mnist-dir DIR [--stage N] [--stop-stage N] [--quick]
#   e.g. ./run.sh --mnist-dir /path/to/mnist
#   stage 0: check the data and link it as data/mnist (t10k only: first 8000 images train,
#            last 2000 test); the runs read data/mnist, so no command quotes a machine's path
#   stage 1: the four runs, exp/full/*.json (test accuracy every --eval-every steps)
#   stage 2: plot and RESULTS.md from those records (utils/fpp_report.py; --quick:
#            exp/quick/RESULTS.md), with local/why_fpp_differs.md copied in
# Defaults are the published settings (conf/seqmnist.yaml: LSTM, pixels per step, optimizer)
# over one pass of the training images; FPP n = 10 costs 10 updates per step (hours on a CPU).
# --quick: the small budget of conf/quick.conf (minutes, near chance level; for tests).
# A run whose record exists is skipped (records are written whole): a rerun continues.

set -euo pipefail
stage=0
stop_stage=2
quick=false
mnist_dir=                   # folder with the MNIST IDX files (stage 0)
updates=10                   # FPP n
truncation=10                # T-BPTT T, and FPP's window W
eval_every=4000              # steps between tests
test_images=0                # test images scored (0: all)
help_message=$(sed -n '2,16s/^# \{0,1\}//p' "$0")

cd "$(dirname "$0")"
. ./cmd.sh
. ./path.sh
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

conf=conf/seqmnist.yaml
mnist=data/mnist
run_opts=()                  # options of every run
budget="full: the settings of $conf (one pass over the training images, all test images)"
exp=exp/full
results=RESULTS.md
if $quick; then . conf/quick.conf; fi

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "$0: stage 0: data"
  [ -n "$mnist_dir" ] || { echo "$0: --mnist-dir is required for stage 0" >&2; exit 1; }
  local/prepare_data.sh "$mnist_dir" $mnist
fi

# run_once OUT OPTION ...: one run (all its seeds), unless its record exists (records are
# written whole): a rerun continues
run_once() {
  local out=$1; shift
  if [ -f $out ]; then echo "$0: $out exists, skipping"; return; fi
  local log=$(dirname $out)/log/$(basename $out .json).log
  $train_cmd $log lmrescore fpp seqmnist --config $conf --mnist-dir $mnist \
    --eval-every $eval_every --test-images $test_images "$@" "${run_opts[@]}" --out $out ||
    { echo "$0: run $out failed, see $log" >&2; exit 1; }
  grep "final accuracy per seed" $log
}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "$0: stage 1: FPP, T-BPTT and full BPTT runs"
  [ -e $mnist ] || { echo "$0: no $mnist: run stage 0" >&2; exit 1; }
  run_once $exp/fpp_n$updates.json --method fpp --updates $updates
  # FPP as the authors' code samples it: one window of T steps per step (T gradient computations)
  run_once $exp/fpp_n1_W$truncation.json --method fpp --updates 1 --window $truncation
  run_once $exp/tbptt_T$truncation.json --method tbptt --truncation $truncation
  # full BPTT: one update per image through all its 40 steps, scoring its labelled steps
  run_once $exp/full_bptt.json --method tbptt --truncation 40 --every 40
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "$0: stage 2: $results"
  [ -d $exp ] || { echo "$0: $exp missing: run stage 1 first" >&2; exit 1; }
  utils/fpp_report.py --kind seqmnist --exp-dir $exp --results $results --budget "$budget" \
    --notes local/why_fpp_differs.md
fi
