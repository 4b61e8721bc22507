#!/usr/bin/env bash
# egs/voice_privacy: speaker adversarial perturbation, generation and removal (Guo et al.).
#   ./run.sh                                   # every stage on the mini corpus (mini config, 2 CPU cores)
#   ./run.sh --stage 2 --stop-stage 2 --tag try1
#   ./run.sh --config conf/paper_voice_privacy.yaml --ngpu 1   # LibriSpeech (db.sh), GPU
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs for the quality stage
ngpu=0           # GPUs for training (0: CPU; >1: DDP through torchrun or srun)
config=conf/mini_voice_privacy.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
help_message="Usage: $0 [options]
  --stage N        first stage (0: data, 1: speaker models, 2: joint training, 3: protect/restore/purify,
                   4: ASV (Table 1), 5: quality (Table 2), 6: RESULTS.md)   [${stage}]
  --stop-stage N   last stage                                     [${stop_stage}]
  --nj N           parallel jobs (stage 5)                        [${nj}]
  --ngpu N         GPUs for training                              [${ngpu}]
  --config FILE    hyperpyyaml config                             [${config}]
  --tag NAME       experiment name (exp/NAME)                     [config name]
  --seed N         seed for Python, NumPy and torch               [${seed}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, db_opts, log, stage_begin, launch, train_job
corpus=mini; [ -n "${LIBRISPEECH}" ] && corpus=librispeech
opts+=(--corpus "${corpus}")

if stage_begin 0 "data"; then
    launch ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.voice_privacy.prepare "${opts[@]}" "${db_opts[@]}"
fi

if stage_begin 1 "speaker models (white box ECAPA-TDNN, black box x-vector)"; then
    for role in white black; do
        train_job "${expdir}/log/train_speaker_${role}.log" \
            python -m speechlib.tasks.voice_privacy.train_speaker "${opts[@]}" "${db_opts[@]}" --role "${role}"
    done
fi

if stage_begin 2 "joint training of generator and removal module"; then
    train_job "${expdir}/log/train.log" python -m speechlib.tasks.voice_privacy.train "${opts[@]}"
fi

if stage_begin 3 "protect, restore, purify and the matched-noise control"; then
    launch ${decode_cmd} "${expdir}/log/protect_sets.log" python -m speechlib.tasks.voice_privacy.protect_sets "${opts[@]}"
fi

if stage_begin 4 "ASV evaluation, Table 1"; then
    launch ${decode_cmd} "${expdir}/log/asv.log" python -m speechlib.tasks.voice_privacy.asv "${opts[@]}"
fi

if stage_begin 5 "quality, WER and pitch, Table 2 (${nj} jobs)"; then
    for part in "${expdir}"/quality/part.*.jsonl; do  # parts of an earlier run with more jobs
        [ -e "${part}" ] || continue; n=${part##*/part.}; n=${n%.jsonl}; [ "${n}" -le "${nj}" ] || rm -f "${part}"
    done
    launch ${decode_cmd} JOB=1:"${nj}" "${expdir}/log/quality.JOB.log" \
        python -m speechlib.tasks.voice_privacy.quality "${opts[@]}" "${db_opts[@]}" --job JOB --nj "${nj}"
fi

if stage_begin 6 "RESULTS.md"; then
    launch ${decode_cmd} "${expdir}/log/report.log" python -m speechlib.tasks.voice_privacy.report "${opts[@]}"
    python -m speechlib.results.collect .
    log "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
