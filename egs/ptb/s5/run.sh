#!/usr/bin/env bash
# PTB: train recurrent LMs (BPTT; AFP at orders K = 4, 8; FPP), measure their perplexity,
# make real ASR lattices of PTB valid (dev) and test sentences (espeak-ng speech, PocketSphinx
# decoding), rescore them with each LM (exact order K; n-best and Kaldi's n-gram approximation
# as baselines), tune the LM weight and insertion penalty on dev, and write RESULTS.md from the
# measured outputs.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--corpus-dir DIR] [--nj N] [--quick]
#   e.g. ./run.sh --corpus-dir /path/to/ptb          # full recipe, no download
#        ./run.sh --quick --corpus-dir /path/to/ptb  # every stage on a small slice: 2000
#            training sentences, 1 epoch of 32-unit BPTT, AFP K=4 and FPP LMs, 5 lattices
# Other options (see the variables below): --models, --bptt-orders, --train-opts,
#   --num-utts, --num-dev-utts, --orders, --nbest-sizes, --ngram-orders, --score-opts,
#   --tune-opts, --check-md5, --model-dir.
# Stages: 0 data, 1 training (builds each LM's vocabulary), 2 perplexity, 3 lattices,
#   4 rescoring and tuning on dev, 5 RESULTS.md. Every finished unit of work leaves a .done marker; a rerun skips
#   it, so an interrupted run continues where it stopped (training resumes from last.pt).

set -euo pipefail
stage=0
stop_stage=100
corpus_dir=            # folder with ptb.{train,valid,test}.txt; empty: download them
check_md5=true         # false: accept a corpus whose MD5 sums differ from conf/md5sums
nj=2                   # parallel jobs for lattice making and rescoring
quick=false            # true: small slice, tiny models, 5 lattices (for tests)
model_dir=../../../models
# (ptb-lstm256-afp16 is one more: ~13 min of training and ~6 of rescoring on top of the budget)
models="ptb-lstm256-bptt ptb-lstm256-afp4 ptb-lstm256-afp8 ptb-lstm256-fpp"
orders="2 4 8"         # every model is rescored exactly at these K (and at its own K)
nbest_sizes="100 1000" # baseline: the N best paths scored as sentences
ngram_orders="4"       # baseline: Kaldi's pruned rescoring, states merged by the last n-1 words
# The 2-hour budget on 2 CPU cores: 2 epochs per model (the configs' own budget is 8). Measured
# per epoch on 2 idle cores: BPTT 3.9 min, AFP K=4 3.8, K=8 4.9, K=16 6.4, FPP 16.
train_opts="--set train.epochs=2"
num_utts=200           # test sentences spoken and decoded into lattices
num_dev_utts=300       # valid sentences, for tuning the LM weight and insertion penalty
# The lattices have no LM score: the RNN LM supplies it. An acoustic-only beam loses the good
# paths (oracle WER 8.6% -> 19.7% at --beam 4), so: a wide acoustic beam (10: oracle 9.2%, ~340
# arcs), then the coarse pass: exact order-2 scores, pruned to --prune-beam 5 on them, before the
# order-K expansion. Every method rescores the same pruned lattices.
score_opts="--acoustic-scale 0.1 --beam 10 --prune-order 2 --prune-beam 5"
tune_opts="--lmwt 4:30 --word-ins-penalty=-2:6"
help_message=$(sed -n '2,14s/^# \{0,1\}//p' "$0")

. ./cmd.sh
. ./path.sh
command_line="$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

corpus=data/corpus     # the verified corpus
data=data              # where this run's corpus slice and lattices go
exp=exp
results=RESULTS.md
if $quick; then
  data=data/quick; exp=exp/quick; results=$exp/RESULTS.md
  train_opts="--set train.epochs=1 --set model.hidden_dim=32 --set train.save_every=0"
  models="ptb-lstm256-bptt ptb-lstm256-afp4 ptb-lstm256-fpp"  # one of each method
  orders=4; nbest_sizes=10; ngram_orders=3
  num_utts=5; num_dev_utts=5
fi
lats=$data/test        # lattices, references, words.txt
dev=$data/dev
corpus_train=$corpus   # what the LMs are trained and evaluated on
$quick && corpus_train=$data/corpus

# The config of a model: models/NAME.yaml; without one, FPP is the BPTT model's config trained
# with method fpp (which learns online from a stream).
model_config() {
  if [ -f "$model_dir/$1.yaml" ]; then echo "$model_dir/$1.yaml"
  elif [[ $1 == *-fpp ]]; then
    echo "$model_dir/${1%-fpp}-bptt.yaml --set train.method=fpp --set train.batching=stream"
  else echo "$0: no config $model_dir/$1.yaml" >&2; return 1
  fi
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "$0: stage 0: data preparation"
  local/prepare_data.sh --corpus-dir "$corpus_dir" --check-md5 $check_md5 $corpus
  if $quick && [ ! -f $data/corpus/.done ]; then
    mkdir -p $data/corpus
    head -n 2000 $corpus/ptb.train.txt > $data/corpus/ptb.train.txt
    for split in valid test; do head -n 300 $corpus/ptb.$split.txt > $data/corpus/ptb.$split.txt; done
    touch $data/corpus/.done
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "$0: stage 1: training $models"
  [ -f $corpus_train/.done ] || { echo "$0: no $corpus_train: run stage 0" >&2; exit 1; }
  for m in $models; do
    dir=$exp/$m
    if [ -f $dir/.done.train ]; then echo "$0: $dir is trained"; continue; fi
    config=$(model_config $m)
    mkdir -p $dir/log
    echo "$0: training $dir (log: $dir/log/train.log)"
    if ! $train_cmd $dir/log/train.log lmrescore train --config $config \
         --corpus-dir $corpus_train --exp-dir $dir $train_opts; then
      if [[ $m == *-fpp ]] && grep -q "method must be one of" $dir/log/train.log; then
        echo "$0: skipping $m: lmrescore train does not know method fpp yet" \
          "($(grep -o "method must be one of[^']*'[a-z]*'" $dir/log/train.log))"
        echo "lmrescore train rejects method fpp" > $dir/SKIPPED
        continue
      fi
      echo "$0: training $m failed, see $dir/log/train.log" >&2; exit 1
    fi
    rm -f $dir/SKIPPED
    touch $dir/.done.train
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "$0: stage 2: perplexity"
  for m in $models; do
    dir=$exp/$m
    if [ -f $dir/SKIPPED ]; then echo "$0: $m was skipped: $(cat $dir/SKIPPED)"; continue; fi
    [ -f $dir/.done.train ] || { echo "$0: $dir is not trained: run stage 1" >&2; exit 1; }
    # (the validation perplexity is the trainer's, in results.json: it chose best.pt by it)
    [ -f $dir/.done.eval ] && continue
    $train_cmd $dir/log/eval_test.log \
      lmrescore eval --model $dir/best.pt --text $corpus_train/ptb.test.txt --exact \
        --batching sentence
    grep ' ppl ' $dir/log/eval_test.log
    touch $dir/.done.eval
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "$0: stage 3: real ASR lattices of $num_dev_utts valid and $num_utts test sentences"
  # Sentences of 5-15 words, every word in the PocketSphinx dictionary (no <unk>, no N),
  # evenly spaced through the file.
  local/make_lattices.sh --nj $nj --cmd "$decode_cmd" --num-utts $num_dev_utts \
    --prefix ptb-valid $corpus/ptb.valid.txt $dev
  local/make_lattices.sh --nj $nj --cmd "$decode_cmd" --num-utts $num_utts --prefix ptb-test \
    $corpus/ptb.test.txt $lats
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  echo "$0: stage 4: rescoring dev and test lattices; weights tuned on dev"
  for m in $models; do
    dir=$exp/$m
    if [ -f $dir/SKIPPED ]; then echo "$0: $m was skipped: $(cat $dir/SKIPPED)"; continue; fi
    [ -f $dir/.done.train ] || { echo "$0: $dir is not trained: run stage 1" >&2; exit 1; }
    own=$(sed -n 's/^ *"order": \([0-9]*\),*$/\1/p' $dir/results.json)
    systems=$(for k in $(echo $orders $own | tr ' ' '\n' | sort -nu); do echo fp_k$k; done
              for n in $nbest_sizes; do echo nbest$n; done
              for n in $ngram_orders; do echo ngram$n; done)
    for system in $systems; do
      case $system in
        fp_k*) opts="--order ${system#fp_k}" ;;
        nbest*) opts="--method nbest --num-paths ${system#nbest}" ;;
        ngram*) opts="--method ngram-approx --max-ngram-order ${system#ngram}" ;;
      esac
      utils/rescore_tuned.sh --nj $nj --cmd "$decode_cmd" --tune-opts "$tune_opts" \
        $dir/best.pt $dev $lats $dir/score_$system $opts $score_opts
    done
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  echo "$0: stage 5: $results"
  utils/make_results.py --exp-dir $exp --lattice-dir $lats --dev-dir $dev --models "$models" \
    --command "$command_line" --out $results
  cat $results
fi
