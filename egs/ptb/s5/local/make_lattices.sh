#!/usr/bin/env bash
# Real ASR lattices of corpus test sentences: espeak-ng speech decoded by PocketSphinx.
#
# Usage: local/make_lattices.sh [options] CORPUS_TEXT DIR
#   e.g. local/make_lattices.sh --nj 2 --num-utts 200 --prefix ptb-test \
#          data/corpus/ptb.test.txt data/test
# Options: --nj N (parallel decoding jobs), --cmd (job launcher, see cmd.sh), --num-utts,
#   --prefix (utterance ids <prefix>-<line>), --min-words / --max-words, --voice, --pad, --snr
#   (see local/make_lattices.py).
# Writes to DIR: text (references), slf/<utt>.slf (PocketSphinx lattices), lat.ark + lat.scp
# (the same lattices as a Kaldi CompactLattice archive), words.txt, hyp_first_pass (the
# decoder's 1-best), wer_first_pass.json, info.json (`lmrescore info --json`: lattice sizes,
# acoustic-only 1-best and oracle errors); .done last.

set -euo pipefail
nj=2
cmd=run_local.sh
num_utts=200
prefix=test
min_words=5
max_words=15
voice=en-us+klatt2
pad=0.3
snr=36
help_message=$(sed -n '2,15s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
src=$1
dir=$2

if [ -f "$dir/.done" ]; then echo "$0: $dir is complete, nothing to do"; exit 0; fi
[ -f "$src" ] || { echo "$0: no $src: run the data preparation stage first" >&2; exit 1; }
command -v espeak-ng >/dev/null || {
  echo "$0: espeak-ng not found: apt-get install -y espeak-ng" >&2; exit 1; }
python3 -c "import pocketsphinx" 2>/dev/null || {
  echo "$0: pocketsphinx not found: pip install pocketsphinx" >&2; exit 1; }

mkdir -p "$dir/log"
local/make_lattices.py select --text "$src" --num-utts "$num_utts" --prefix "$prefix" \
  --min-words "$min_words" --max-words "$max_words" > "$dir/text.tmp"
mv "$dir/text.tmp" "$dir/text"

split=$dir/split$nj
utils/split_scp.sh "$dir/text" $(for j in $(seq "$nj"); do echo "$split/text.$j"; done)
echo "$0: speaking and decoding $num_utts sentences in $nj jobs; logs in $dir/log"
$cmd JOB=1:"$nj" "$dir/log/decode.JOB.log" \
  local/make_lattices.py decode --text "$split/text.JOB" --slf-dir "$dir/slf" \
    --hyp "$split/hyp.JOB" --voice "$voice" --pad "$pad" --snr "$snr"
for j in $(seq "$nj"); do cat "$split/hyp.$j"; done > "$dir/hyp_first_pass"

local/make_lattices.py words --slf-dir "$dir/slf" --text "$dir/text" --out "$dir/words.txt"
awk '{ print $1, "slf/" $1 ".slf" }' "$dir/text" > "$dir/slf.scp"  # paths relative to the scp
lmrescore convert "$dir/slf.scp" "ark,scp:$dir/lat.ark,$dir/lat.scp" --in-format slf \
  --out-format kaldi --words "$dir/words.txt"

echo "$0: first pass (PocketSphinx 1-best with its trigram LM):"
utils/compute_wer.py --ref "$dir/text" --hyp "$dir/hyp_first_pass" \
  --json "$dir/wer_first_pass.json"
lmrescore info "scp:$dir/lat.scp" --words "$dir/words.txt" --ref "$dir/text" --json \
  > "$dir/info.json"
cat "$dir/info.json"
touch "$dir/.done"
