#!/usr/bin/env bash
# egs/toy: the template recipe. Tell the colour of synthetic noise from its mean log-mel.
#   ./run.sh                        # all stages
#   ./run.sh --stage 2 --stop-stage 2 --tag try1
set -euo pipefail

stage=1          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs for array stages
ngpu=0           # GPUs for training (0: CPU; >1: torchrun DDP)
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

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, resume script

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    echo "stage 1: prepare data (log: ${expdir}/log/prepare.log)"
    ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.toy.prepare "${opts[@]}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    echo "stage 2: train (log: ${expdir}/log/train.log)"
    if [ "${ngpu}" -gt 0 ]; then
        ${cuda_cmd} --gpu "${ngpu}" "${expdir}/log/train.log" \
            python -m speechlib.launch.distributed --ngpu "${ngpu}" -- \
            python -m speechlib.tasks.toy.train "${opts[@]}"
    else
        ${train_cmd} "${expdir}/log/train.log" python -m speechlib.tasks.toy.train "${opts[@]}" --device cpu
    fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    echo "stage 3: score (log: ${expdir}/log/score.log)"
    ${decode_cmd} "${expdir}/log/score.log" python -m speechlib.tasks.toy.score "${opts[@]}" --device cpu
    python -m speechlib.results.collect .
    echo "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
