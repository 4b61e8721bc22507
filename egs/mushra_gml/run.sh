#!/usr/bin/env bash
# egs/mushra_gml: the Generative Machine Listener (Jiang, Villemoes & Biswas): a network trained on
# individual MUSHRA scores predicts a score distribution for (reference, coded) stereo pairs.
#   ./run.sh                                      # all stages, mini tests with a SIMULATED panel
#   ./run.sh --stage 3 --stop-stage 3 --systems "gml gml_cutmix"
#   ./run.sh --config conf/paper_mushra_gml.yaml --ngpu 1
#   ./run.sh --config conf/tiny_mushra_gml.yaml   # seconds: the end-to-end test's config
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs (simulation's ffmpeg processes, ViSQOL array jobs)
ngpu=0           # GPUs for training (0: CPU; >1: DDP through torchrun or srun)
config=conf/mini_mushra_gml.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
systems="gml gml_cutmix nongml nongml_cutmix gml_gaussian"
help_message="Usage: $0 [options]
  --stage N        first stage (0: real listening-test data, 1: mini tests with a simulated
                   panel, 2: gammatone features, 3: training, 4: ViSQOL, 5: scoring) [${stage}]
  --stop-stage N   last stage                                     [${stop_stage}]
  --nj N           parallel jobs                                  [${nj}]
  --ngpu N         GPUs for training                              [${ngpu}]
  --config FILE    hyperpyyaml config                             [${config}]
  --tag NAME       experiment name (exp/NAME)                     [config name]
  --seed N         seed of the data stages (training: the config's seeds)   [${seed}]
  --systems LIST   systems stage 3 trains                         [${systems}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, log, stage_begin, launch, train_job

if stage_begin 0 "listening-test data (ODAQ / webMUSHRA / generic CSV from db.sh), BS.1534-3 screening"; then
    launch ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.mushra_gml.prepare \
        "${opts[@]}" "${db_opts[@]}"
fi

if stage_begin 1 "mini MUSHRA tests: excerpts, anchors, codecs, SIMULATED listener panel"; then
    launch ${train_cmd} "${expdir}/log/simulate.log" python -m speechlib.tasks.mushra_gml.simulate \
        "${opts[@]}" "${db_opts[@]}" --parallel_encodes "${nj}"
fi

if stage_begin 2 "gammatone features of L/R/M/S reference-coded pairs"; then
    launch ${train_cmd} "${expdir}/log/features.log" python -m speechlib.tasks.mushra_gml.features \
        "${opts[@]}" --device cpu
fi

if stage_begin 3 "training: ${systems}"; then
    for system in ${systems}; do
        train_job "${expdir}/log/train_${system}.log" python -m speechlib.tasks.mushra_gml.train \
            "${opts[@]}" --system "${system}"
    done
fi

if stage_begin 4 "ViSQOL v3 baseline, ${nj} jobs"; then
    launch ${decode_cmd} JOB=1:"${nj}" "${expdir}/log/visqol.JOB.log" python -m speechlib.tasks.mushra_gml.visqol \
        "${opts[@]}" --job JOB --nj "${nj}"
fi

if stage_begin 5 "scoring: Table I(a), Table I(b), Figures 1 and 2"; then
    launch ${decode_cmd} "${expdir}/log/score.log" python -m speechlib.tasks.mushra_gml.score "${opts[@]}" --device cpu
    python -m speechlib.results.collect .
    log "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
