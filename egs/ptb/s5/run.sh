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
# Other options (see the variables below): --models, --train-opts, --rescore-opts,
#   --num-utts, --num-dev-utts, --check-md5, --model-dir, --first-pass-arpa, --old-lm-model.
# Stages: 0 data, 1 training (builds each LM's vocabulary; utils/train_lms.sh), 2 perplexity
#   (utils/eval_lms.sh), 3 lattices, 4 rescoring and tuning on dev (utils/rescore_lms.sh),
#   5 RESULTS.md (utils/make_results.py). Every finished unit of work leaves a .done marker;
#   a rerun skips it, so an interrupted run continues where it stopped (training resumes from
#   last.pt).

set -euo pipefail
stage=0
stop_stage=100
corpus_dir=            # folder with ptb.{train,valid,test}.txt; empty: download them
check_md5=true         # false: accept a corpus whose MD5 sums differ from conf/md5sums
nj=2                   # parallel jobs for lattice making and rescoring
quick=false            # true: the small budget of conf/quick.conf (for tests)
model_dir=../../../models
# (ptb-lstm256-afp16 is one more, left out to keep the recipe within its time budget)
models="ptb-lstm256-bptt ptb-lstm256-afp4 ptb-lstm256-afp8 ptb-lstm256-fpp"
# 2 epochs per model (the configs' own budget is 8), so that the recipe runs in hours on 2 CPU
# cores; RESULTS.md gives each model's training minutes.
train_opts="--set train.epochs=2"
num_utts=200           # test sentences spoken and decoded into lattices
num_dev_utts=300       # valid sentences, for tuning the LM weight and insertion penalty
# stage 4: options of utils/rescore_lms.sh, whose defaults are the systems (exact orders, n-best
# sizes, n-gram orders), beams and tuning grid of the full recipe; --config FILE for values
# with spaces (e.g. orders="2 4")
rescore_opts=
# true: one more system per model, the RNN LM interpolated with the decoder's own trigram
# (local/make_first_pass_arpa.sh; with PocketSphinx 5.1.1 it builds a patched PocketSphinx,
# which needs cmake and a C compiler)
first_pass_arpa=true
old_lm_model=ptb-lstm256-afp8  # with first_pass_arpa: rescores lattices that carry the trigram
help_message=$(sed -n '2,18s/^# \{0,1\}//p' "$0")

. ./cmd.sh
. ./path.sh
command_line="$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

corpus=data/corpus     # the verified corpus
data=data              # where this run's corpus slice and lattices go
exp=exp
results=RESULTS.md
if $quick; then . conf/quick.conf; fi
lats=$data/test        # lattices, references, words.txt
dev=$data/dev
corpus_train=$corpus   # what the LMs are trained and evaluated on
$quick && corpus_train=$data/corpus

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
  utils/train_lms.sh --cmd "$train_cmd" --model-dir $model_dir --train-opts "$train_opts" \
    $corpus_train $exp $models
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "$0: stage 2: perplexity"
  # (the validation perplexity is the trainer's, in results.json: it chose best.pt by it)
  utils/eval_lms.sh --cmd "$train_cmd" $corpus_train/ptb.test.txt $exp $models
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "$0: stage 3: real ASR lattices of $num_dev_utts valid and $num_utts test sentences"
  # Sentences of 5-15 words, every word in the PocketSphinx dictionary (no <unk>, no N),
  # evenly spaced through the file.
  local/make_lattices.sh --nj $nj --cmd "$decode_cmd" --num-utts $num_dev_utts \
    --prefix ptb-valid $corpus/ptb.valid.txt $dev
  local/make_lattices.sh --nj $nj --cmd "$decode_cmd" --num-utts $num_utts --prefix ptb-test \
    $corpus/ptb.test.txt $lats
  if $first_pass_arpa; then local/make_first_pass_arpa.sh $data/lang/first_pass.arpa.gz; fi
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  echo "$0: stage 4: rescoring dev and test lattices; weights tuned on dev"
  arpa_opts=
  if $first_pass_arpa; then arpa_opts="--arpa $data/lang/first_pass.arpa.gz"; fi
  utils/rescore_lms.sh --nj $nj --cmd "$decode_cmd" $arpa_opts $rescore_opts $dev $lats $exp \
    $models
  if $first_pass_arpa && [[ " $models " == *" $old_lm_model "* ]]; then
    # Kaldi's arithmetic on lattices that carry the trigram: kept, taken out (w = 1, 0.5)
    local/old_lm_systems.sh --nj $nj --cmd "$decode_cmd" $data/lang/first_pass.arpa.gz $dev \
      $lats $exp $old_lm_model
  fi
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  echo "$0: stage 5: $results"
  utils/make_results.py --exp-dir $exp --lattice-dir $lats --dev-dir $dev --models "$models" \
    --command "$command_line" --out $results
  cat $results
fi
