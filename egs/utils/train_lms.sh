#!/usr/bin/env bash
# Train recurrent LMs, one `lmrescore train` job each, into EXP/<model>/ (best.pt, results.json).
#
# Usage: utils/train_lms.sh [options] CORPUS EXP MODEL ...
#   e.g. utils/train_lms.sh --model-dir ../../../models --train-opts "--set train.epochs=2" \
#          data/corpus exp ptb-lstm256-bptt ptb-lstm256-afp4 ptb-lstm256-fpp
# CORPUS is a corpus folder of local/prepare_data.sh (its .done marks it complete).
# The config of model NAME is MODEL_DIR/NAME.yaml; with --config-prefix P, the model's first
# dash-separated field is replaced by P (wt2-lstm256-afp8 -> P-lstm256-afp8.yaml). Without
# such a file, a model NAME-fpp is the NAME-bptt config trained with method fpp (online, from
# a stream).
# Options: --cmd (job launcher, see cmd.sh), --model-dir DIR, --config-prefix P,
#   --config-opts "--set KEY=VALUE ..." (every model), --train-opts (every model, after those).
# A trained model gets EXP/<model>/.done.train; a rerun skips it (an interrupted training
# resumes from its last.pt).

set -euo pipefail
cmd=run_local.sh
model_dir=../../../models
config_prefix=
config_opts=
train_opts=
help_message=$(sed -n '2,16s/^# \{0,1\}//p' "$0")
. utils/parse_options.sh
if [ $# -lt 3 ]; then echo "$help_message" >&2; exit 1; fi
corpus=$1; exp=$2
shift 2

[ -f "$corpus/.done" ] || { echo "$0: no corpus in $corpus: run data preparation first" >&2; exit 1; }
[ -d "$model_dir" ] || { echo "$0: no model configs in $model_dir (--model-dir)" >&2; exit 1; }

# model_config NAME: the config file and --set options of model NAME
model_config() {
  local name=$1
  [ -n "$config_prefix" ] && name=$config_prefix-${1#*-}
  if [ -f "$model_dir/$name.yaml" ]; then echo "$model_dir/$name.yaml"
  elif [[ $name == *-fpp ]] && [ -f "$model_dir/${name%-fpp}-bptt.yaml" ]; then
    echo "$model_dir/${name%-fpp}-bptt.yaml --set train.method=fpp --set train.batching=stream"
  else echo "$0: no config $model_dir/$name.yaml for model $1" >&2; return 1
  fi
}

for m in "$@"; do
  dir=$exp/$m
  if [ -f "$dir/.done.train" ]; then echo "$0: $dir is trained"; continue; fi
  config=$(model_config "$m")
  mkdir -p "$dir/log"
  echo "$0: training $dir (log: $dir/log/train.log)"
  $cmd "$dir/log/train.log" lmrescore train --config $config $config_opts \
    --corpus-dir "$corpus" --exp-dir "$dir" $train_opts ||
    { echo "$0: training $m failed, see $dir/log/train.log" >&2; exit 1; }
  touch "$dir/.done.train"
done
