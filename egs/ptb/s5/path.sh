# Put the recipe's utils/ and local/ first on PATH; lmrescore must be installed
# (pip install -e ../../.. from here). C locale for sort/awk, as in Kaldi.
export PATH=$PWD/utils:$PWD/local:$PATH
export LC_ALL=C
export PYTHONUNBUFFERED=1
if ! command -v lmrescore >/dev/null; then
  echo "path.sh: lmrescore not found: pip install -e <repository root>" >&2
  return 1
fi
