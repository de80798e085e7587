#!/usr/bin/env bash
# Perplexity of trained LMs on a text: `lmrescore eval --exact --batching sentence --json`
# (fresh state per sentence, as in rescoring), at each model's order K and with the exact
# recurrence.
#
# Usage: utils/eval_lms.sh [options] TEXT EXP MODEL ...
#   e.g. utils/eval_lms.sh data/corpus/ptb.test.txt exp ptb-lstm256-bptt ptb-lstm256-afp4
# EXP/<model>/ holds a model of utils/train_lms.sh (best.pt, .done.train).
# Options: --cmd (job launcher, see cmd.sh), --name NAME (default: test).
# Writes EXP/<model>/ppl_NAME.jsonl (one JSON object per order: text, order [null: exact
# recurrence], batching, ppl, words, tokens), log/eval_NAME.log; .done.eval_NAME last. Prints
# one line per perplexity.

set -euo pipefail
cmd=run_local.sh
name=test
help_message=$(sed -n '2,13s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -lt 3 ]; then echo "$help_message" >&2; exit 1; fi
text=$1; exp=$2
shift 2

[ -f "$text" ] || { echo "$0: no text $text: run data preparation first" >&2; exit 1; }
for m in "$@"; do
  [ -f "$exp/$m/.done.train" ] || { echo "$0: $exp/$m is not trained: train it first" >&2; exit 1; }
done

for m in "$@"; do
  dir=$exp/$m
  if [ ! -f "$dir/.done.eval_$name" ]; then
    $cmd "$dir/log/eval_$name.log" lmrescore eval --model "$dir/best.pt" --text "$text" \
      --exact --batching sentence --json '>' "$dir/ppl_$name.jsonl"
    touch "$dir/.done.eval_$name"
  fi
  python3 -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    how = "exact recurrence" if r["order"] is None else "order K=%d" % r["order"]
    print("%s: %s, %s batching: ppl %.2f" % (r["text"], how, r["batching"], r["ppl"]))' \
    "$dir/ppl_$name.jsonl"
done
