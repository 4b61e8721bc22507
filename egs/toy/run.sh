#!/usr/bin/env bash
# egs/toy: the template recipe. Tell the colour of synthetic noise from its mean log-mel.
#   ./run.sh                        # all stages
#   ./run.sh --stage 2 --stop-stage 2 --tag try1
#   ./run.sh --config conf/tiny_toy.yaml   # seconds: the end-to-end test's config
set -euo pipefail

stage=1          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs for array stages
ngpu=0           # GPUs for training (0: CPU; >1: DDP through torchrun or srun)
config=conf/mini_toy.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
help_message="Usage: $0 [options]
  --stage N        first stage (1: prepare, 2: train, 3: score)  [${stage}]
  --stop-stage N   last stage                                     [${stop_stage}]
  --nj N           parallel jobs                                  [${nj}]
  --ngpu N         GPUs for training                              [${ngpu}]
  --config FILE    hyperpyyaml config                             [${config}]
  --tag NAME       experiment name (exp/NAME)                     [config name]
  --seed N         seed for Python, NumPy and torch               [${seed}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, log, stage_begin, launch, train_job

if stage_begin 1 "prepare data"; then
    launch ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.toy.prepare "${opts[@]}" "${db_opts[@]}"
fi

if stage_begin 2 "train"; then
    train_job "${expdir}/log/train.log" python -m speechlib.tasks.toy.train "${opts[@]}"
fi

if stage_begin 3 "score"; then
    launch ${decode_cmd} "${expdir}/log/score.log" python -m speechlib.tasks.toy.score "${opts[@]}" --device cpu
    python -m speechlib.results.collect .
    log "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
