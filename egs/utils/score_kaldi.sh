#!/usr/bin/env bash
# Score a decode dir's lattices as Kaldi's local/score.sh (steps/score_kaldi.sh) does: the best
# path at every LM weight LMWT (= inverse acoustic scale) and word insertion penalty, its WER in
# <decode-dir>/wer_LMWT_WIP, the lowest in <decode-dir>/scoring_kaldi/best_wer, and that point's
# per-utterance errors in <decode-dir>/scoring_kaldi/wer_details/per_utt.
#
# Usage: utils/score_kaldi.sh [options] <data-dir> <lang-dir|words.txt> <decode-dir>
#   e.g. utils/score_kaldi.sh data/test data/lang_test exp/tri3/decode_test_afp8
# Options: --cmd CMD (default utils/run_local.sh), --min-lmwt 7, --max-lmwt 17,
#   --word-ins-penalty 0.0,0.5,1.0 (a comma list, as Kaldi's).

set -euo pipefail
cmd=run_local.sh
min_lmwt=7
max_lmwt=17
word_ins_penalty=0.0,0.5,1.0
help_message=$(sed -n '2,10s/^# \{0,1\}//p' "$0")

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

out=$dir/scoring_kaldi
mkdir -p "$out/log" "$out/penalty_tmp"
for wip in ${word_ins_penalty//,/ }; do
  $cmd LMWT="$min_lmwt":"$max_lmwt" "$out/log/best_path.LMWT.$wip.log" \
    lmrescore info "$lats" --words "$words" --inv-acoustic-scale LMWT \
      --word-ins-penalty "$wip" --one-best "$out/penalty_tmp/LMWT.$wip.txt"
  for lmwt in $(seq "$min_lmwt" "$max_lmwt"); do
    compute_wer.py --ref "$data/text" --hyp "$out/penalty_tmp/$lmwt.$wip.txt" \
      > "$dir/wer_${lmwt}_${wip}"
  done
done

best=$(for f in "$dir"/wer_*_*; do
         printf '%s %s\n' "$(sed -n 's/^%WER \([0-9.]*\) .*/\1/p' "$f")" "$f"
       done | sort -g -k1,1 | head -n 1 | cut -d' ' -f2)
head -n 1 "$best" | sed "s|\$| $best|" > "$out/best_wer"
point=${best##*/wer_}
mkdir -p "$out/wer_details"
compute_wer.py --ref "$data/text" --hyp "$out/penalty_tmp/${point%_*}.${point#*_}.txt" \
  --per-utt "$out/wer_details/per_utt" > /dev/null
cat "$out/best_wer"
