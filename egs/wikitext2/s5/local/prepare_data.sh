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
exec utils/get_corpus.sh --url https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip \
  --files "wiki.train.tokens wiki.valid.tokens wiki.test.tokens" "$@"
