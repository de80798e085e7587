#!/usr/bin/env bash
# Check that an MNIST folder holds at least the t10k IDX files (gzipped or not).
# Usage: local/check_mnist.sh <mnist-dir>
set -euo pipefail
dir=$1
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
