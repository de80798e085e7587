#!/usr/bin/env bash
# WikiText-2: train recurrent LMs (BPTT; AFP at orders K = 4, 8, 16; FPP) on the text
# normalised for ASR (local/normalize_text.py: lower case, one sentence per line, no
# punctuation), measure their perplexity, make real ASR lattices of WikiText-2 valid (dev) and
# test sentences (espeak-ng speech, PocketSphinx decoding), rescore them with each LM (exact
# order K; n-best and Kaldi's n-gram approximation as baselines), tune the LM weight and
# insertion penalty on dev, and write RESULTS.md from the measured outputs. The models are the
# PTB configs (models/ptb-lstm256-*.yaml) with data.corpus=wikitext-2 and a 20k-word vocabulary.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--corpus-dir DIR] [--nj N] [--quick]
#   e.g. ./run.sh --corpus-dir /path/to/wikitext-2          # full recipe, no download
#        ./run.sh --quick --corpus-dir /path/to/wikitext-2  # every stage on a small slice: 2000
#            training sentences, 1 epoch of 32-unit BPTT, AFP K=4 and FPP LMs, 5 lattices
# Other options (see the variables below): --models, --train-opts, --rescore-opts,
#   --num-utts, --num-dev-utts, --check-md5, --model-dir.
# Stages: 0 data (and normalisation), 1 training (builds each LM's vocabulary;
#   utils/train_lms.sh), 2 perplexity (utils/eval_lms.sh), 3 lattices, 4 rescoring and tuning
#   on dev (utils/rescore_lms.sh), 5 RESULTS.md (utils/make_results.py). Every finished unit of
#   work leaves a .done marker; a rerun skips it, so an interrupted run continues where it
#   stopped (training resumes from last.pt).

set -euo pipefail
stage=0
stop_stage=100
corpus_dir=            # folder with wiki.{train,valid,test}.tokens; empty: download them
check_md5=true         # false: accept a corpus whose MD5 sums differ from conf/md5sums
nj=2                   # parallel jobs for lattice making and rescoring
quick=false            # true: the small budget of conf/quick.conf (for tests)
model_dir=../../../models
models="wt2-lstm256-bptt wt2-lstm256-afp4 wt2-lstm256-afp8 wt2-lstm256-afp16 wt2-lstm256-fpp"
# WikiText-2 is larger than PTB and its output layer wider (data.max_vocab): 1 epoch per model,
# so that the recipe runs in hours on 2 CPU cores; RESULTS.md gives each model's training minutes.
train_opts="--set train.epochs=1"
num_utts=200           # test sentences spoken and decoded into lattices
num_dev_utts=300       # valid sentences, for tuning the LM weight and insertion penalty
# stage 4: options of utils/rescore_lms.sh, whose defaults are the systems (exact orders, n-best
# sizes, n-gram orders), beams and tuning grid of the full recipe; --config FILE for values
# with spaces (e.g. orders="2 4")
rescore_opts=
help_message=$(sed -n '2,20s/^# \{0,1\}//p' "$0")

. ./cmd.sh
. ./path.sh
command_line="$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then echo "$help_message" >&2; exit 1; fi

corpus=data/corpus     # the verified corpus
lm_text=data/lm        # the corpus normalised for ASR
data=data              # where this run's corpus slice and lattices go
exp=exp
results=RESULTS.md
if $quick; then . conf/quick.conf; fi
lats=$data/test        # lattices, references, words.txt
dev=$data/dev
corpus_train=$lm_text  # what the LMs are trained and evaluated on
$quick && corpus_train=$data/corpus

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "$0: stage 0: data preparation"
  local/prepare_data.sh --corpus-dir "$corpus_dir" --check-md5 $check_md5 $corpus
  if [ ! -f $lm_text/.done ]; then
    local/normalize_text.py $corpus $lm_text
    touch $lm_text/.done
  fi
  if $quick && [ ! -f $data/corpus/.done ]; then
    mkdir -p $data/corpus
    head -n 2000 $lm_text/wiki.train.tokens > $data/corpus/wiki.train.tokens
    for split in valid test; do
      head -n 300 $lm_text/wiki.$split.tokens > $data/corpus/wiki.$split.tokens
    done
    touch $data/corpus/.done
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "$0: stage 1: training $models"
  # model wt2-X: the config models/ptb-X.yaml on WikiText-2
  utils/train_lms.sh --cmd "$train_cmd" --model-dir $model_dir --config-prefix ptb \
    --config-opts "--set data.corpus=wikitext-2 --set data.max_vocab=20000" \
    --train-opts "$train_opts" $corpus_train $exp $models
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "$0: stage 2: perplexity"
  # (the validation perplexity is the trainer's, in results.json: it chose best.pt by it)
  utils/eval_lms.sh --cmd "$train_cmd" $corpus_train/wiki.test.tokens $exp $models
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "$0: stage 3: real ASR lattices of $num_dev_utts valid and $num_utts test sentences"
  # Normalised sentences of 5-15 words, every word in the PocketSphinx dictionary (no <unk>,
  # no digits), evenly spaced through the test text.
  [ -f $lm_text/.done ] || { echo "$0: no $lm_text: run stage 0" >&2; exit 1; }
  local/make_lattices.sh --nj $nj --cmd "$decode_cmd" --num-utts $num_dev_utts \
    --prefix wt2-valid $lm_text/wiki.valid.tokens $dev
  local/make_lattices.sh --nj $nj --cmd "$decode_cmd" --num-utts $num_utts --prefix wt2-test \
    $lm_text/wiki.test.tokens $lats
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  echo "$0: stage 4: rescoring dev and test lattices; weights tuned on dev"
  utils/rescore_lms.sh --nj $nj --cmd "$decode_cmd" $rescore_opts $dev $lats $exp $models
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  echo "$0: stage 5: $results"
  utils/make_results.py --exp-dir $exp --lattice-dir $lats --dev-dir $dev --models "$models" \
    --command "$command_line" --out $results
  cat $results
fi
