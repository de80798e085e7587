# How jobs run: "$cmd JOB=1:N LOG COMMAND ..." runs N jobs, the word JOB replaced by 1..N.
# utils/run_local.sh runs them as local processes (the default).
#
# On a cluster, use Kaldi's launchers (kaldi/egs/wsj/s5/utils/{queue.pl,slurm.pl}, copied into
# utils/), which take the same arguments:
#   Grid Engine:  export train_cmd="queue.pl --mem 8G" decode_cmd="queue.pl --mem 4G"
#   Slurm:        export train_cmd="slurm.pl --mem 8G --gpu 1" decode_cmd="slurm.pl --mem 4G"
# A single job can also go to Slurm by hand: sbatch --wait -o LOG --wrap "COMMAND".
# With a GPU, add --device cuda to the recipe's --train-opts and --score-opts.
export train_cmd="run_local.sh"
export decode_cmd="run_local.sh"
