#!/usr/bin/env bash
# Penn Treebank (Mikolov's preprocessed version): ptb.{train,valid,test}.txt into OUT_DIR.
#
# Usage: local/prepare_data.sh [--corpus-dir DIR] [--check-md5 true|false] OUT_DIR
#   --corpus-dir DIR: copy the three files from DIR (no network). Otherwise download
#     simple-examples.tgz from Mikolov's RNNLM page into OUT_DIR/../download and extract
#     data/ptb.*.txt.
#   --check-md5 false: skip the MD5 check against conf/md5sums (for a corpus of your own).
# Writes OUT_DIR/.done last.

set -euo pipefail
corpus_dir=
check_md5=true
url=http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz
help_message=$(sed -n '2,10s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
out=$1
files="ptb.train.txt ptb.valid.txt ptb.test.txt"

if [ -f "$out/.done" ]; then echo "$0: $out is complete, nothing to do"; exit 0; fi
tmp=$out.tmp
rm -rf "$tmp"; mkdir -p "$tmp"
if [ -n "$corpus_dir" ]; then
  for f in $files; do
    [ -f "$corpus_dir/$f" ] || { echo "$0: no $corpus_dir/$f" >&2; exit 1; }
    cp "$corpus_dir/$f" "$tmp/"
  done
else
  download=$(dirname "$out")/download
  mkdir -p "$download"
  if [ ! -f "$download/simple-examples.tgz" ]; then
    echo "$0: downloading $url"
    wget -q -O "$download/simple-examples.tgz.part" "$url"
    mv "$download/simple-examples.tgz.part" "$download/simple-examples.tgz"
  fi
  mkdir -p "$tmp/extract"
  tar -xzf "$download/simple-examples.tgz" -C "$tmp/extract" --wildcards '*data/ptb.*.txt'
  for f in $files; do mv "$(find "$tmp/extract" -path "*/data/$f")" "$tmp/"; done
  rm -rf "$tmp/extract"
fi
if $check_md5; then
  (cd "$tmp" && md5sum -c --quiet) < conf/md5sums || {
    echo "$0: MD5 check failed (see conf/md5sums); --check-md5 false to use it anyway" >&2
    exit 1; }
fi
rm -rf "$out"; mv "$tmp" "$out"
touch "$out/.done"
echo "$0: $(cat $(for f in $files; do echo "$out/$f"; done) | wc -l) lines in $out"
