#!/usr/bin/env bash
# Rescore dev and test lattices with each trained LM and each system (exact order K; the
# n-best and n-gram-approximation baselines), the weights tuned on dev (utils/rescore_tuned.sh).
#
# Usage: utils/rescore_lms.sh [options] DEV TEST EXP MODEL ...
#   e.g. utils/rescore_lms.sh --orders "2 4" --nbest-sizes 100 --ngram-orders 4 \
#          data/dev data/test exp ptb-lstm256-bptt ptb-lstm256-afp4
# DEV and TEST are lattice folders of local/make_lattices.sh; EXP/<model>/ holds a model of
# utils/train_lms.sh (best.pt, results.json, .done.train).
# Options: --nj N, --cmd (job launcher, see cmd.sh), --orders "K ..." (every model is rescored
#   exactly at these K and at its own K), --nbest-sizes "N ...", --ngram-orders "n ...",
#   --score-opts (to every `lmrescore score`), --tune-opts (to `lmrescore tune`), --arpa FILE
#   (the first-pass n-gram: one more system per model, at its own K, the RNN LM plus
#   --arpa-scale times the n-gram's log-prob); the defaults are the settings of the full recipes
#   (egs/ptb/s5, egs/wikitext2/s5).
# Writes EXP/<model>/score_<system>/ (system: fp_k<K>, nbest<N>, ngram<n>, fp_arpa_k<K>), each
# complete when its .done is there; a rerun redoes only what is not.

set -euo pipefail
nj=2
cmd=run_local.sh
orders="2 4 8"          # every model is rescored exactly at these K (and at its own K)
nbest_sizes="100 1000"  # baseline: the N best paths scored as sentences
ngram_orders="4"        # baseline: Kaldi's pruned rescoring, states merged by the last n-1 words
# The lattices of local/make_lattices.sh have no LM score: the RNN LM supplies it. A narrow
# acoustic-only beam loses the good paths (the oracle WER rises as --beam narrows), so: a wide
# acoustic beam, then the coarse pass: exact order-2 scores, pruned to --prune-beam 5 on them,
# before the order-K expansion. Every system rescores the same pruned lattices.
score_opts="--acoustic-scale 0.1 --beam 10 --prune-order 2 --prune-beam 5"
tune_opts="--inv-acoustic-scale 4:30 --word-ins-penalty=-2:6"
arpa=                   # first-pass n-gram (ARPA, e.g. of local/make_first_pass_arpa.sh)
arpa_scale=0.5          # its weight beside the RNN LM's
help_message=$(sed -n '2,18s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -lt 4 ]; then echo "$help_message" >&2; exit 1; fi
dev=$1; test=$2; exp=$3
shift 3

for lats in "$dev" "$test"; do
  [ -f "$lats/.done" ] || { echo "$0: no lattices in $lats: make them first" >&2; exit 1; }
done
for m in "$@"; do
  [ -f "$exp/$m/.done.train" ] || { echo "$0: $exp/$m is not trained: train it first" >&2; exit 1; }
done

for m in "$@"; do
  dir=$exp/$m
  own=$(python3 -c 'import json, sys; k = json.load(open(sys.argv[1]))["order"]
print("" if k is None else k)' "$dir/results.json")
  systems=$(for k in $(echo $orders $own | tr ' ' '\n' | sort -nu); do echo fp_k$k; done
            for n in $nbest_sizes; do echo nbest$n; done
            for n in $ngram_orders; do echo ngram$n; done
            if [ -n "$arpa" ] && [ -n "$own" ]; then echo fp_arpa_k$own; fi)
  for system in $systems; do
    case $system in
      fp_k*) opts="--order ${system#fp_k}" ;;
      fp_arpa_k*) opts="--order ${system#fp_arpa_k} --old-lm $arpa --old-lm-scale $arpa_scale" ;;
      nbest*) opts="--method nbest --num-paths ${system#nbest}" ;;
      ngram*) opts="--method ngram-approx --max-ngram-order ${system#ngram}" ;;
    esac
    utils/rescore_tuned.sh --nj $nj --cmd "$cmd" --tune-opts "$tune_opts" \
      "$dir/best.pt" "$dev" "$test" "$dir/score_$system" $opts $score_opts
  done
done
