#!/usr/bin/env bash
# The first-pass trigram of local/make_lattices.sh (PocketSphinx's en-us.lm.bin) as an ARPA
# file, for `lmrescore score --old-lm` (interpolating it with the RNN LM, a positive scale, or
# taking it out of lattices that carry it: local/old_lm_systems.sh).
#
# Usage: local/make_first_pass_arpa.sh [--tools-dir DIR] OUT.arpa.gz
# PocketSphinx writes ARPA with its own writer (NGramModel.write). Release 5.1.1 crashes on
# its own en-us model (the header counts 2051547 bigrams, the trie holds 2051541:
# cmusphinx/pocketsphinx#502, fixed upstream after 5.1.1). If the installed release fails, its
# source is downloaded from PyPI, local/pocketsphinx-arpa-counts.patch (sections and counts as
# the trie holds them) applied, and it is built into DIR (needs cmake and a C compiler).

set -euo pipefail
tools_dir=exp/tools
help_message=$(sed -n '2,10s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -ne 1 ]; then echo "$help_message" >&2; exit 1; fi
out=$1

if [ -f "$out" ]; then echo "$0: $out exists, nothing to do"; exit 0; fi
mkdir -p "$(dirname "$out")"
# (read through NGramModel.readfile, whose LogMath nothing keeps alive, every probability came
# out as 0 in one run here; so a LogMath is kept, and the 1-grams are checked below)
write_arpa='
import os, sys, pocketsphinx
logmath = pocketsphinx.LogMath()
lm = pocketsphinx.NGramModel(pocketsphinx.Config(), logmath,
                             os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us.lm.bin"))
lm.write(sys.argv[1], pocketsphinx.NGramModel.str_to_type("arpa"))'
tmp=$out.tmp.arpa
if ! python3 -c "$write_arpa" "$tmp" 2>/dev/null || ! tail -n 1 "$tmp" | grep -q '^\\end\\$'; then
  echo "$0: the installed PocketSphinx cannot write its LM as ARPA; building a patched one"
  version=$(python3 -c 'from importlib.metadata import version; print(version("pocketsphinx"))')
  build=$tools_dir/pocketsphinx-$version
  if [ ! -f "$build/.done" ]; then
    rm -rf "$build" && mkdir -p "$build/src"
    python3 -m pip download -q --no-deps --no-binary :all: "pocketsphinx==$version" -d "$build"
    tar xzf "$build/pocketsphinx-$version.tar.gz" -C "$build/src" --strip-components 1
    patch -d "$build/src" -p1 < local/pocketsphinx-arpa-counts.patch
    python3 -m pip install -q --no-deps --target "$build/site" "$build/src"
    touch "$build/.done"
  fi
  PYTHONPATH=$build/site python3 -c "$write_arpa" "$tmp"
fi
if ! awk '/^\\1-grams:/ { on = 1; next } /^\\/ { on = 0 } on && NF > 1 && $1 != "-0.0000" { ok = 1 }
         END { exit !ok }' "$tmp"; then
  echo "$0: every 1-gram of $tmp has log-prob 0: not a usable LM" >&2; exit 1
fi
gzip -c "$tmp" > "$out.tmp"
rm "$tmp"
mv "$out.tmp" "$out"
echo "$0: wrote $out: $(zcat "$out" | sed -n 's/^ngram //p' | tr '\n' ' ')"
