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
exec utils/get_corpus.sh --url http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz \
  --files "ptb.train.txt ptb.valid.txt ptb.test.txt" "$@"
