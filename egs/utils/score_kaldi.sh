#!/usr/bin/env bash
# Score a decode dir's lattices as Kaldi's steps/score_kaldi.sh does, into the same files: the
# best path at every LM weight LMWT (= inverse acoustic scale) and word insertion penalty WIP in
# <decode-dir>/scoring_kaldi/penalty_WIP/LMWT.txt (one read of the lattices: lmrescore tune
# --hyp-dir), compute-wer's report in <decode-dir>/wer_LMWT_WIP, the lowest in
# scoring_kaldi/best_wer, the reference in scoring_kaldi/test_filt.txt, and the best point's
# scoring_kaldi/wer_details/{lmwt,wip,per_utt,per_spk,ops} (per_spk from <data-dir>/utt2spk).
# Executable local/wer_hyp_filter, local/wer_ref_filter or local/wer_output_filter (both) filter
# hypotheses / references, as in Kaldi.
#
# Usage: utils/score_kaldi.sh [options] <data-dir> <lang-dir|words.txt> <decode-dir>
#   e.g. utils/score_kaldi.sh data/test data/lang_test exp/tri3/decode_test_afp8
# Options: --cmd CMD (default utils/run_local.sh), --stage 0|1 (1: only best_wer and
#   wer_details, from the wer_* files), --min-lmwt 7, --max-lmwt 17,
#   --word-ins-penalty 0.0,0.5,1.0 (a comma list, as Kaldi's).

set -euo pipefail
cmd=run_local.sh
stage=0
min_lmwt=7
max_lmwt=17
word_ins_penalty=0.0,0.5,1.0
help_message=$(sed -n '2,15s/^# \{0,1\}//p' "$0")

echo "$0 $*"
utils=$(cd "$(dirname "$0")" && pwd)
PATH=$utils:$PATH
. "$utils/parse_options.sh"
if [ $# -ne 3 ]; then echo "$help_message" >&2; exit 1; fi
data=$1; lang=$2; dir=$3

words=$lang
[ -d "$lang" ] && words=$lang/words.txt
for f in "$data/text" "$words" "$dir/num_jobs"; do
  [ -f "$f" ] || { echo "$0: no such file $f" >&2; exit 1; }
done
nj=$(cat "$dir/num_jobs")
lats="ark:gunzip -c $(seq -f "$dir/lat.%g.gz" -s ' ' "$nj") |"

ref_filter=cat
[ -x local/wer_output_filter ] && ref_filter=local/wer_output_filter
[ -x local/wer_ref_filter ] && ref_filter=local/wer_ref_filter
hyp_filter=cat
[ -x local/wer_output_filter ] && hyp_filter=local/wer_output_filter
[ -x local/wer_hyp_filter ] && hyp_filter=local/wer_hyp_filter
echo "$0: scoring with word insertion penalty=$word_ins_penalty"

out=$dir/scoring_kaldi
mkdir -p "$out/log"
$ref_filter < "$data/text" > "$out/test_filt.txt"
lmwts=$(seq -s, "$min_lmwt" "$max_lmwt")
if [ "$stage" -le 0 ]; then
  $cmd "$out/log/best_path.log" \
    lmrescore tune "$lats" --words "$words" --ref "$out/test_filt.txt" \
      --inv-acoustic-scale "$lmwts" --word-ins-penalty "$word_ins_penalty" \
      --max-failures 1 --hyp-dir "$out"
  if [ "$hyp_filter" != cat ]; then
    for wip in ${word_ins_penalty//,/ }; do
      for lmwt in ${lmwts//,/ }; do
        f=$out/penalty_$wip/$lmwt.txt
        $hyp_filter < "$f" > "$f.filt" && mv "$f.filt" "$f"
      done
    done
  fi
fi
utt2spk=()
[ -f "$data/utt2spk" ] && utt2spk=(--utt2spk "$data/utt2spk")
$cmd "$out/log/score.log" \
  score_kaldi_dir.py --stage "$stage" --lmwt "$lmwts" --wip "$word_ins_penalty" \
    "${utt2spk[@]}" "$dir"
rm -f "$dir"/wer_{?,??}  # Kaldi's old per-LMWT wer files, as steps/score_kaldi.sh does
cat "$out/best_wer"
