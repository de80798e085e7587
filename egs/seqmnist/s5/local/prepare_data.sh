#!/usr/bin/env bash
# Check that an MNIST folder holds at least the t10k IDX files (gzipped or not), and link it
# as the recipe's data folder, so that the runs (and the commands RESULTS.md quotes) name
# data/mnist, not a machine's path.
#
# Usage: local/prepare_data.sh MNIST_DIR DATA
#   e.g. local/prepare_data.sh /path/to/mnist data/mnist

set -euo pipefail
if [ $# -ne 2 ]; then sed -n '2,7s/^# \{0,1\}//p' "$0" >&2; exit 1; fi
dir=$1; data=$2
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ ! -f "$dir/$f" ] && [ ! -f "$dir/$f.gz" ]; then
    echo "$0: $dir/$f(.gz) missing; pass --mnist-dir <folder with the MNIST IDX files>" >&2
    exit 1
  fi
done
if [ -f "$dir/train-images-idx3-ubyte.gz" ] || [ -f "$dir/train-images-idx3-ubyte" ]; then
  echo "$0: $dir: full MNIST (60000 train / 10000 test)"
else
  echo "$0: $dir: t10k only: train on its first 8000 images, test on its last 2000"
fi
mkdir -p "$(dirname "$data")"
ln -sfn "$(cd "$dir" && pwd)" "$data"
