#!/usr/bin/env bash
# Kaldi's rescoring arithmetic on lattices that carry an LM score: the dev and test lattices get
# the decoder's own trigram as their graph score (`lmrescore score --model ARPA`: pruned to an
# acoustic beam of 12, expanded to the trigram's histories), as a Kaldi decoder's lattices carry
# G's, and one model rescores them four ways, each tuned on dev (utils/rescore_tuned.sh): the
# first pass alone (no rescoring), the trigram kept beside the RNN LM (no --old-lm), the trigram
# taken out with w = 1 (replaced: --old-lm) and w = 0.5 (interpolated: --lm-scale 0.5 --old-lm,
# Kaldi's default weight); the four compared by a paired bootstrap (utils/compare_systems.py).
#
# Usage: local/old_lm_systems.sh [--nj N] [--cmd CMD] ARPA DEV TEST EXP MODEL
#   e.g. local/old_lm_systems.sh data/lang/first_pass.arpa.gz data/dev data/test exp \
#          ptb-lstm256-afp8
# Writes DEV_lm/ and TEST_lm/ (lattice folders), EXP/MODEL/score_oldlm_{first_pass,keep,w1,w0.5}/
# (tune.json, wer.json, hyp, dev_hyp), EXP/MODEL/oldlm_systems.md (the table) and
# EXP/MODEL/oldlm_compare.{dev,test}.txt (the bootstrap); a step is skipped when its .done is
# there.

set -euo pipefail
nj=2
cmd=run_local.sh
help_message=$(sed -n '2,15s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -ne 5 ]; then echo "$help_message" >&2; exit 1; fi
arpa=$1; dev=$2; test=$3; exp=$4; model=$5
tune_opts="--inv-acoustic-scale 4:30 --word-ins-penalty=-2:6"
dir=$exp/$model
[ -f "$dir/.done.train" ] || [ -f "$dir/best.pt" ] || { echo "$0: no $dir/best.pt" >&2; exit 1; }

for lats in "$dev" "$test"; do
  out=${lats}_lm
  [ -f "$out/.done" ] && continue
  mkdir -p "$out"
  cp "$lats/text" "$lats/words.txt" "$lats/hyp_first_pass" "$out/"
  lmrescore score --model "$arpa" --lattice "scp:$lats/lat.scp" --words "$lats/words.txt" \
    --first-pass-scale 0 --unk-penalty 0 --beam 12 --prune-order 0 --acoustic-scale 0.1 \
    --num-threads 1 --one-best /dev/null --write-lattice "ark,scp:$out/lat.ark,$out/lat.scp"
  touch "$out/.done"
done

# decode_at SYS WORDS LATTICES OUT: the 1-best of LATTICES at SYS's dev-tuned weights
decode_at() {
  [ -f "$4" ] && return
  read -r scale wip < <(python3 -c "import json, sys; t = json.load(open(sys.argv[1]));
print(repr(t['acoustic_scale']), t['word_ins_penalty'])" "$1/tune.json")
  lmrescore info "$3" --words "$2" --acoustic-scale "$scale" --word-ins-penalty "$wip" \
    --one-best "$4" > /dev/null
}

sys=$dir/score_oldlm_first_pass
if [ ! -f "$sys/.done" ]; then
  mkdir -p "$sys"
  lmrescore tune "scp:${dev}_lm/lat.scp" --words "$dev/words.txt" --ref "$dev/text" \
    $tune_opts --json "$sys/tune.json" > "$sys/tune.log"
  decode_at "$sys" "$test/words.txt" "scp:${test}_lm/lat.scp" "$sys/hyp"
  utils/compute_wer.py --ref "$test/text" --hyp "$sys/hyp" --json "$sys/wer.json"
  touch "$sys/.done"
fi
decode_at "$sys" "$dev/words.txt" "scp:${dev}_lm/lat.scp" "$sys/dev_hyp"
for system in keep w1 w0.5; do
  case $system in
    keep) opts="" ;;
    w1) opts="--old-lm $arpa" ;;
    w0.5) opts="--lm-scale 0.5 --old-lm $arpa" ;;
  esac
  sys=$dir/score_oldlm_$system
  utils/rescore_tuned.sh --nj $nj --cmd "$cmd" --tune-opts "$tune_opts" "$dir/best.pt" \
    "${dev}_lm" "${test}_lm" "$sys" $opts
  decode_at "$sys" "$dev/words.txt" "ark:cat $sys/dev/lat.*.ark |" "$sys/dev_hyp"
done
for set in dev test; do
  ref=$dev/text; hyp=dev_hyp
  [ $set = test ] && { ref=$test/text; hyp=hyp; }
  utils/compare_systems.py --ref "$ref" --names "first_pass keep w1 w0.5" \
    $(for s in first_pass keep w1 w0.5; do echo --hyp "$dir/score_oldlm_$s/$hyp"; done) \
    > "$dir/oldlm_compare.$set.txt"
done

python3 - "$dir" "$arpa" > "$dir/oldlm_systems.md" <<'EOF'
import json, sys
dir, arpa = sys.argv[1:]
rows = {"first_pass": "first pass: acoustic + trigram, no rescoring",
        "keep": "trigram kept, RNN LM added (no --old-lm)",
        "w1": f"trigram taken out, w = 1 (--old-lm {arpa})",
        "w0.5": f"trigram taken out, w = 0.5 (--lm-scale 0.5 --old-lm {arpa})"}
print("| system | dev WER (tuned) | LMWT | WIP | test WER |\n|---|---|---|---|---|")
for name, what in rows.items():
    tune = json.load(open(f"{dir}/score_oldlm_{name}/tune.json"))
    wer = json.load(open(f"{dir}/score_oldlm_{name}/wer.json"))
    print(f"| {what} | {tune['wer']:.2f} | {tune['lmwt']:g} | {tune['word_ins_penalty']:g} "
          f"| {wer['wer']:.2f} |")
EOF
cat "$dir/oldlm_systems.md"
grep -h "better\|tie" "$dir/oldlm_compare.dev.txt"
