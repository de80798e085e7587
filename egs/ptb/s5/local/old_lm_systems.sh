#!/usr/bin/env bash
# Kaldi's rescoring arithmetic on lattices that carry an LM score: the dev and test lattices get
# the decoder's own trigram as their graph score (local/add_lm_score.py), as a Kaldi decoder's
# lattices carry G's, and one model rescores them four ways, each tuned on dev
# (utils/rescore_tuned.sh): the first pass alone (no rescoring), the trigram kept beside the
# RNN LM (no --old-lm), the trigram taken out with w = 1 (replaced: --old-lm) and w = 0.5
# (interpolated: --lm-scale 0.5 --old-lm, Kaldi's default weight).
#
# Usage: local/old_lm_systems.sh [--nj N] [--cmd CMD] ARPA DEV TEST EXP MODEL
#   e.g. local/old_lm_systems.sh data/lang/first_pass.arpa.gz data/dev data/test exp \
#          ptb-lstm256-afp8
# Writes DEV_lm/ and TEST_lm/ (lattice folders), EXP/MODEL/score_oldlm_{first_pass,keep,w1,w0.5}/
# (tune.json, wer.json, hyp) and EXP/MODEL/oldlm_systems.md (the table, with the commands);
# each step is skipped when its .done is there.

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
  local/add_lm_score.py --arpa "$arpa" --lattice "scp:$lats/lat.scp" --words "$lats/words.txt" \
    --out "ark,scp:$out/lat.ark,$out/lat.scp"
  touch "$out/.done"
done

sys=$dir/score_oldlm_first_pass
if [ ! -f "$sys/.done" ]; then
  mkdir -p "$sys"
  lmrescore tune "scp:${dev}_lm/lat.scp" --words "$dev/words.txt" --ref "$dev/text" \
    $tune_opts --json "$sys/tune.json" > "$sys/tune.log"
  read -r scale wip < <(python3 -c "import json, sys; t = json.load(open(sys.argv[1]));
print(repr(t['acoustic_scale']), t['word_ins_penalty'])" "$sys/tune.json")
  lmrescore info "scp:${test}_lm/lat.scp" --words "$test/words.txt" --acoustic-scale "$scale" \
    --word-ins-penalty "$wip" --one-best "$sys/hyp" > /dev/null
  utils/compute_wer.py --ref "$test/text" --hyp "$sys/hyp" --json "$sys/wer.json"
  touch "$sys/.done"
fi
for system in keep w1 w0.5; do
  case $system in
    keep) opts="" ;;
    w1) opts="--old-lm $arpa" ;;
    w0.5) opts="--lm-scale 0.5 --old-lm $arpa" ;;
  esac
  utils/rescore_tuned.sh --nj $nj --cmd "$cmd" --tune-opts "$tune_opts" "$dir/best.pt" \
    "${dev}_lm" "${test}_lm" "$dir/score_oldlm_$system" $opts
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
