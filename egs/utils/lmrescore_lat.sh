#!/usr/bin/env bash
# Rescore a Kaldi decode dir with an lmrescore model, with the interface of Kaldi's
# scripts/rnnlm/lmrescore_pruned.sh: the old LM is taken out of the graph score and the new one
# put in, new graph score = graph score - w x old LM + w x new LM (w = --weight), exactly at the
# model's order K; then scored by utils/score_kaldi.sh (Kaldi's scoring dir) unless
# --skip-scoring true. The old LM is <old-lang-dir>/G.fst (as Kaldi's script takes it), or
# --old-lm FILE (an ARPA, e.g. the one G.fst was made from; a G.carpa is not supported).
#
# Usage: utils/lmrescore_lat.sh [options] <old-lang-dir> <model> <data-dir> \
#            <in-decode-dir> <out-decode-dir>
#   e.g. utils/lmrescore_lat.sh --weight 0.5 data/lang_test_tgsmall exp/afp8/best.pt \
#            data/test exp/tri3/decode_tgsmall_test exp/tri3/decode_tgsmall_test_afp8
# Options: --weight 0.5 (in [0, 1], Kaldi's default), --acwt 0.1 (or --inv-acwt 10, as
#   Kaldi's script; the acoustic scale of the pruning beams), --max-ngram-order N (Kaldi's
#   n-gram approximation, --method ngram-approx, instead of exact rescoring), --old-lm FILE,
#   --cmd CMD (default: $decode_cmd or utils/run_local.sh), --score-opts "..." (more options of
#   lmrescore score, e.g. "--beam 8 --prune-order 2"), --skip-scoring true, --scoring-opts
#   "..." (passed to utils/score_kaldi.sh, e.g. "--min-lmwt 8 --max-lmwt 15"). Rerun after a
#   kill: finished jobs are kept.

set -euo pipefail
cmd=${decode_cmd:-run_local.sh}
weight=0.5
acwt=0.1
inv_acwt=
max_ngram_order=
old_lm=
score_opts=""
scoring_opts=""
skip_scoring=false
help_message=$(sed -n '2,21s/^# \{0,1\}//p' "$0")

utils=$(cd "$(dirname "$0")" && pwd)
PATH=$utils:$PATH
. "$utils/parse_options.sh"
if [ $# -ne 5 ]; then echo "$help_message" >&2; exit 1; fi
oldlang=$1; model=$2; data=$3; indir=$4; dir=$5

if [ ! -d "$oldlang" ]; then
  echo "$0: <old-lang-dir> $oldlang is not a folder (the arguments are <old-lang-dir> <model>" \
       "<data-dir> <in-decode-dir> <out-decode-dir>, as Kaldi's lmrescore_pruned.sh)" >&2
  exit 1
fi
if [ -z "$old_lm" ]; then
  old_lm=$oldlang/G.fst
  if [ ! -f "$old_lm" ]; then
    echo "$0: no $old_lm: give the old LM as --old-lm FILE (an ARPA or a G.fst;" \
         "a G.carpa is not supported: give the ARPA it was built from)" >&2
    exit 1
  fi
fi
if ! awk -v w="$weight" 'BEGIN { exit !(w + 0 == w && w >= 0 && w <= 1) }'; then
  echo "$0: --weight must be in [0, 1], got $weight" >&2; exit 1
fi
[ -n "$inv_acwt" ] && acwt=$(awk -v x="$inv_acwt" 'BEGIN { print 1 / x }')
method_opts=
[ -n "$max_ngram_order" ] &&
  method_opts="--method ngram-approx --max-ngram-order $max_ngram_order"

skip=
$skip_scoring && skip="--skip-scoring true"
exec "$utils/lmrescore_decode_dir.sh" --cmd "$cmd" $skip --scoring-opts "$scoring_opts" \
  --score-opts "--lm-scale $weight --old-lm $old_lm --acoustic-scale $acwt $method_opts $score_opts" \
  "$model" "$data" "$oldlang" "$indir" "$dir"
