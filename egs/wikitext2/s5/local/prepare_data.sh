#!/usr/bin/env bash
# WikiText-2 (v1, tokenised): wiki.{train,valid,test}.tokens into OUT_DIR.
#
# Usage: local/prepare_data.sh [--corpus-dir DIR] [--check-md5 true|false] OUT_DIR
#   --corpus-dir DIR: copy the three files from DIR (no network). Otherwise download
#     wikitext-2-v1.zip (Salesforce/MetaMind) into OUT_DIR/../download and extract
#     wikitext-2/wiki.*.tokens.
#   --check-md5 false: skip the MD5 check against conf/md5sums (for a corpus of your own).
# Writes OUT_DIR/.done last.

set -euo pipefail
corpus_dir=
check_md5=true
url=https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip
help_message=$(sed -n '2,10s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
out=$1
files="wiki.train.tokens wiki.valid.tokens wiki.test.tokens"

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
  if [ ! -f "$download/wikitext-2-v1.zip" ]; then
    echo "$0: downloading $url"
    wget -q -O "$download/wikitext-2-v1.zip.part" "$url"
    mv "$download/wikitext-2-v1.zip.part" "$download/wikitext-2-v1.zip"
  fi
  mkdir -p "$tmp/extract"
  unzip -q "$download/wikitext-2-v1.zip" 'wikitext-2/wiki.*.tokens' -d "$tmp/extract"
  for f in $files; do mv "$tmp/extract/wikitext-2/$f" "$tmp/"; done
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
