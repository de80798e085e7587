#!/usr/bin/env bash
# Rescore a Kaldi decode dir with an lmrescore model, as Kaldi's scripts/rnnlm/lmrescore_pruned.sh
# does with an RNNLM: reads <in-decode-dir>/lat.*.gz and num_jobs, rescores each job's archive
# (exact order-K by default) through $cmd, writes <out-decode-dir>/lat.*.gz and num_jobs, then
# scores the result as Kaldi's local/score.sh (utils/score_kaldi.sh) unless --skip-scoring.
#
# Usage: utils/lmrescore_decode_dir.sh [options] <model> <data-dir> <lang-dir|words.txt> \
#            <in-decode-dir> <out-decode-dir>
#   e.g. utils/lmrescore_decode_dir.sh exp/afp8/best.pt data/test data/lang_test \
#            exp/tri3/decode_test exp/tri3/decode_test_afp8
# Options: --cmd CMD (default: $decode_cmd or utils/run_local.sh), --score-opts "..." (passed
#   to lmrescore score, e.g. "--beam 10 --prune-order 2 --acoustic-scale 0.1"), --skip-scoring
#   true, --scoring-opts "..." (passed to utils/score_kaldi.sh). Rerun after a kill: finished
#   jobs are kept, the others run again.

set -euo pipefail
cmd=${decode_cmd:-run_local.sh}
score_opts=""
scoring_opts=""
skip_scoring=false
help_message=$(sed -n '2,14s/^# \{0,1\}//p' "$0")

utils=$(cd "$(dirname "$0")" && pwd)
PATH=$utils:$PATH
. "$utils/parse_options.sh"
if [ $# -ne 5 ]; then echo "$help_message" >&2; exit 1; fi
model=$1; data=$2; lang=$3; indir=$4; dir=$5

if [ -d "$model" ]; then
  echo "$0: <model> $model is a folder; for Kaldi's argument order, <old-lang-dir> <model>" \
       "<data-dir> <in-decode-dir> <out-decode-dir>, use utils/lmrescore_lat.sh" >&2
  exit 1
fi
words=$lang
[ -d "$lang" ] && words=$lang/words.txt
for f in "$model" "$words" "$indir/num_jobs"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
nj=$(cat "$indir/num_jobs")
for n in $(seq "$nj"); do
  [ -f "$indir/lat.$n.gz" ] || { echo "$0: no such file $indir/lat.$n.gz (num_jobs is $nj)" >&2; exit 1; }
done

# A job is done once its summary exists (score writes it last, after its lattices and 1-best):
# a rerun after a kill runs only the jobs that had not finished.
mkdir -p "$dir/log"
todo=$(for n in $(seq "$nj"); do [ -f "$dir/summary.$n.json" ] || echo "$n"; done)
for n in $todo; do
  $cmd "$dir/log/rescore.$n.log" \
    lmrescore score --model "$model" --words "$words" --num-threads 1 $score_opts \
      --lattice "ark:gunzip -c $indir/lat.$n.gz |" \
      --write-lattice "ark:| gzip -c > $dir/lat.$n.gz" \
      --one-best "$dir/hyp.$n" --summary "$dir/summary.$n.json" &
done
failed=0
for pid in $(jobs -p); do wait "$pid" || failed=$((failed + 1)); done
[ $failed -eq 0 ] || { echo "$0: $failed job(s) failed, see $dir/log/rescore.*.log" >&2; exit 1; }
echo "$nj" > "$dir/num_jobs"
echo "$0: rescored $(echo $todo | wc -w) of $nj jobs into $dir ($nj done)"

if ! $skip_scoring; then
  [ -f "$data/text" ] || { echo "$0: no $data/text to score against (or --skip-scoring true)" >&2; exit 1; }
  "$utils/score_kaldi.sh" --cmd "$cmd" $scoring_opts "$data" "$words" "$dir"
fi
