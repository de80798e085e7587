#!/usr/bin/env bash
# Rescore dev and test lattices with one LM and one method, pick the LM weight and word
# insertion penalty on dev (Kaldi's score.sh sweep, `lmrescore tune`), and decode test with them.
#
# Usage: utils/rescore_tuned.sh [options] MODEL DEV TEST DIR [SCORE_OPTION ...]
#   e.g. utils/rescore_tuned.sh --nj 2 exp/afp8/best.pt data/dev data/test exp/afp8/score_fp_k8 \
#          --order 8 --beam 10 --prune-order 2
# DEV and TEST are lattice folders of local/make_lattices.sh (lat.scp, words.txt, text,
# hyp_first_pass). SCORE_OPTIONs go to `lmrescore score` (method, order, beams, ...).
# Options: --nj N, --cmd (job launcher, see cmd.sh), --tune-opts "--inv-acoustic-scale A:B --word-ins-penalty=..".
# Writes DIR/{dev,test}/ (rescored lat.JOB.ark, summary.JOB.json, log/), DIR/tune.json (the grid
# and its best point), DIR/hyp (test 1-best; a lattice that could not be rescored keeps its
# first-pass 1-best), DIR/wer.json, DIR/test_grid.json (the grid on test: to compare LMs at the
# same weights, utils/compare_at_weights.py); DIR/.done last.

set -euo pipefail
nj=2
cmd=run_local.sh
tune_opts="--inv-acoustic-scale 4:30 --word-ins-penalty=-2:6"
help_message=$(sed -n '2,15s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -lt 4 ]; then echo "$help_message" >&2; exit 1; fi
model=$1; dev=$2; test=$3; dir=$4
shift 4

if [ -f "$dir/.done" ]; then echo "$0: $dir is complete"; exit 0; fi
for set in dev test; do
  lats=${!set}
  [ -f "$lats/.done" ] || { echo "$0: no lattices in $lats: make them first" >&2; exit 1; }
  split=$lats/split$nj
  if [ ! -f "$split/.done.lat" ]; then
    utils/split_scp.sh "$lats/lat.scp" $(for j in $(seq "$nj"); do echo "$split/lat.$j.scp"; done)
    touch "$split/.done.lat"
  fi
  if [ ! -f "$dir/$set/.done" ]; then
    rm -rf "$dir/$set"
    $cmd JOB=1:"$nj" "$dir/$set/log/score.JOB.log" \
      lmrescore score --model "$model" --lattice "scp:$split/lat.JOB.scp" \
        --words "$lats/words.txt" --num-threads 1 "$@" \
        --write-lattice "ark:$dir/$set/lat.JOB.ark" --one-best "$dir/$set/hyp.JOB" \
        --summary "$dir/$set/summary.JOB.json" --max-failures 1
    touch "$dir/$set/.done"
  fi
done

lmrescore tune "ark:cat $dir/dev/lat.*.ark |" --words "$dev/words.txt" --ref "$dev/text" \
  $tune_opts --json "$dir/tune.json" > "$dir/dev/log/tune.log"
tail -n 1 "$dir/dev/log/tune.log"
read -r scale wip < <(python3 -c "import json, sys; t = json.load(open(sys.argv[1]));
print(repr(t['acoustic_scale']), t['word_ins_penalty'])" "$dir/tune.json")
lmrescore info "ark:cat $dir/test/lat.*.ark |" --words "$test/words.txt" --acoustic-scale "$scale" \
  --word-ins-penalty "$wip" --one-best "$dir/test/hyp.tuned" > "$dir/test/log/decode.log"
# in the order of the references; a lattice not rescored keeps its first-pass 1-best
awk 'FILENAME == ARGV[1] { r[$1] = $0; next } FILENAME == ARGV[2] { f[$1] = $0; next }
     { print ($1 in r) ? r[$1] : f[$1] }' \
  "$dir/test/hyp.tuned" "$test/hyp_first_pass" "$test/text" > "$dir/hyp.tmp"
mv "$dir/hyp.tmp" "$dir/hyp"
echo -n "$dir: test: "
utils/compute_wer.py --ref "$test/text" --hyp "$dir/hyp" --json "$dir/wer.json"
# the whole grid on test: only to compare models at the same weights (the WER above is the
# recipe's result, at the weights picked on dev)
lmrescore tune "ark:cat $dir/test/lat.*.ark |" --words "$test/words.txt" --ref "$test/text" \
  $tune_opts --json "$dir/test_grid.json" > "$dir/test/log/grid.log"
touch "$dir/.done"
