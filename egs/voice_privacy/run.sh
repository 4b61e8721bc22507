#!/usr/bin/env bash
# egs/voice_privacy: speaker adversarial perturbation, generation and removal (Guo et al.).
#   ./run.sh                                   # every stage on the mini corpus (about 15 min, 2 CPU cores)
#   ./run.sh --stage 2 --stop-stage 2 --tag try1
#   ./run.sh --config conf/paper_voice_privacy.yaml --ngpu 1   # LibriSpeech (db.sh), GPU
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs for the quality stage
ngpu=0           # GPUs for training (0: CPU)
config=conf/mini_voice_privacy.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
help_message="Usage: $0 [options]
  --stage N        first stage (0: data, 1: speaker models, 2: joint training, 3: protect/restore/purify,
                   4: ASV (Table 1), 5: quality (Table 2), 6: RESULTS.md)   [${stage}]
  --stop-stage N   last stage                                     [${stop_stage}]
  --nj N           parallel jobs (stage 5)                        [${nj}]
  --ngpu N         GPUs for training (0 or 1)                     [${ngpu}]
  --config FILE    hyperpyyaml config                             [${config}]
  --tag NAME       experiment name (exp/NAME)                     [config name]
  --seed N         seed for Python, NumPy and torch               [${seed}]"

. utils/recipe_init.sh
corpus=mini; [ -n "${LIBRISPEECH}" ] && corpus=librispeech
opts+=(--corpus "${corpus}")
device=cpu; train_launch=${train_cmd}
if [ "${ngpu}" -gt 0 ]; then device=cuda:0; train_launch="${cuda_cmd} --gpu ${ngpu}"; fi

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    echo "stage 0: data (log: ${expdir}/log/prepare.log)"
    ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.voice_privacy.prepare "${opts[@]}" \
        --librispeech_path "${LIBRISPEECH}" --voxceleb_path "${VOXCELEB}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    for role in white black; do
        echo "stage 1: ${role}-box speaker model (log: ${expdir}/log/train_speaker_${role}.log)"
        ${train_launch} "${expdir}/log/train_speaker_${role}.log" \
            python -m speechlib.tasks.voice_privacy.train_speaker "${opts[@]}" --role "${role}" \
            --ecapa_pretrained_dir "${ECAPA_PRETRAINED_DIR}" --device "${device}"
    done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    echo "stage 2: joint training of generator and removal module (log: ${expdir}/log/train.log)"
    ${train_launch} "${expdir}/log/train.log" python -m speechlib.tasks.voice_privacy.train "${opts[@]}" --device "${device}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    echo "stage 3: protect, restore and purify the evaluation sets (log: ${expdir}/log/protect_sets.log)"
    ${decode_cmd} "${expdir}/log/protect_sets.log" python -m speechlib.tasks.voice_privacy.protect_sets "${opts[@]}"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    echo "stage 4: ASV evaluation, Table 1 (log: ${expdir}/log/asv.log)"
    ${decode_cmd} "${expdir}/log/asv.log" python -m speechlib.tasks.voice_privacy.asv "${opts[@]}"
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    echo "stage 5: quality, WER and pitch, Table 2 (${nj} jobs, logs: ${expdir}/log/quality.*.log)"
    for part in "${expdir}"/quality/part.*.jsonl; do  # parts of an earlier run with more jobs
        [ -e "${part}" ] || continue; n=${part##*/part.}; n=${n%.jsonl}; [ "${n}" -le "${nj}" ] || rm -f "${part}"
    done
    ${decode_cmd} JOB=1:"${nj}" "${expdir}/log/quality.JOB.log" \
        python -m speechlib.tasks.voice_privacy.quality "${opts[@]}" --job_id JOB --num_jobs "${nj}" \
        --whisper_dir "${WHISPER_DIR}"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    echo "stage 6: RESULTS.md (log: ${expdir}/log/report.log)"
    ${decode_cmd} "${expdir}/log/report.log" python -m speechlib.tasks.voice_privacy.report "${opts[@]}"
    python -m speechlib.results.collect .
    echo "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
