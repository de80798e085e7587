#!/usr/bin/env bash
# Put a corpus's files into OUT_DIR: copied from --corpus-dir, or downloaded as one archive
# (.tgz or .zip) into OUT_DIR/../download and extracted; checked against conf/md5sums.
#
# Usage: utils/get_corpus.sh --url URL --files "F1 F2 ..." [--corpus-dir DIR]
#            [--check-md5 true|false] OUT_DIR
#   --url: the archive; each of --files is found by name anywhere inside it.
#   --corpus-dir DIR: copy the files from DIR (no network).
#   --check-md5 false: skip the MD5 check against conf/md5sums (for a corpus of your own).
# Writes OUT_DIR/.done last; a complete OUT_DIR is left as it is.

set -euo pipefail
url=
files=
corpus_dir=
check_md5=true
help_message=$(sed -n '2,10s/^# \{0,1\}//p' "$0")
. "$(dirname "$0")/parse_options.sh"
if [ $# -ne 1 ] || [ -z "$url" ] || [ -z "$files" ]; then echo "$help_message" >&2; exit 1; fi
out=$1

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
  archive=$download/$(basename "$url")
  mkdir -p "$download"
  if [ ! -f "$archive" ]; then
    echo "$0: downloading $url"
    wget -q -O "$archive.part" "$url"
    mv "$archive.part" "$archive"
  fi
  mkdir -p "$tmp/extract"
  case $archive in
    *.zip) unzip -q "$archive" -d "$tmp/extract" ;;
    *) tar -xzf "$archive" -C "$tmp/extract" ;;
  esac
  for f in $files; do
    found=$(find "$tmp/extract" -name "$f" -type f | head -n 1)
    [ -n "$found" ] || { echo "$0: $archive has no $f" >&2; exit 1; }
    mv "$found" "$tmp/"
  done
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
