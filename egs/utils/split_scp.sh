#!/usr/bin/env bash
# Split a Kaldi-style list (scp, text: one 'key ...' line per utterance) into N contiguous
# parts of near-equal size, so that concatenating the parts' outputs keeps the original order.
#
# Usage: split_scp.sh IN OUT.1 OUT.2 ... OUT.N

set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,5s/^# \{0,1\}//p' "$0" >&2; exit 1
fi
in=$1; shift
n=$#
total=$(wc -l < "$in")
if [ "$total" -lt "$n" ]; then
  echo "$0: $in has $total lines, fewer than the $n parts asked for" >&2; exit 1
fi
tmp=()
for out in "$@"; do
  mkdir -p "$(dirname "$out")"; tmp+=("$out.tmp"); : > "$out.tmp"
done
awk -v n="$n" -v total="$total" -v outs="${tmp[*]}" '
  BEGIN { split(outs, file, " ") }
  { print > file[int((NR - 1) * n / total) + 1] }' "$in"
for out in "$@"; do mv "$out.tmp" "$out"; done
