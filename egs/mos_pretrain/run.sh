#!/usr/bin/env bash
# egs/mos_pretrain: noise-aware encoder pre-training for MOS prediction (Sultana & Williamson 2024).
#   ./run.sh                                   # all stages on the mini corpus
#   ./run.sh --stage 5 --stop-stage 6 --tag try1
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs for the pre-training and downstream arrays
ngpu=0           # GPUs for training (0: CPU)
config=conf/mini_mos_pretrain.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
help_message="Usage: $0 [options]
  --stage N        first stage (0 data, 1 label census and probe sets, 2 PASE and controls, 3 masked encoder,
                   4 PASE+ and DNSMOS, 5 downstream MOS, 6 scoring)  [${stage}]
  --stop-stage N   last stage                                       [${stop_stage}]
  --nj N           parallel jobs                                    [${nj}]
  --ngpu N         GPUs for training (0 or 1)                       [${ngpu}]
  --config FILE    hyperpyyaml config                               [${config}]
  --tag NAME       experiment name (exp/NAME)                       [config name]
  --seed N         seed for Python, NumPy and torch                 [${seed}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, resume script
opts+=(--data_folder "data/${tag}" --nj "${nj}")
corpora=(--mini_root "${MINI}" --librispeech "${LIBRISPEECH}" --fsdkaggle2018 "${FSDKAGGLE2018}"
         --pnl "${PNL}" --noisex92 "${NOISEX92}" --vcc2018 "${VCC2018}" --nisqa "${NISQA}")
externals=(--wav2vec2_dir "${WAV2VEC2_DIR}" --hubert_dir "${HUBERT_DIR}" --dasheng_dir "${DASHENG_DIR}")
if [ "${ngpu}" -gt 0 ]; then device=(--device cuda:0); train_launch="${cuda_cmd}"; else device=(--device cpu); train_launch="${train_cmd}"; fi

pretrain_group() {  # $1: group (pase | masked | plus)
    echo "  ${1}: ${nj} job(s) (logs: ${expdir}/log/pretrain_${1}.*.log)"
    ${train_launch} JOB=1:"${nj}" "${expdir}/log/pretrain_${1}.JOB.log" \
        python -m speechlib.tasks.mos_pretrain.pretrain "${opts[@]}" --group "${1}" --job JOB "${device[@]}"
}

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    echo "stage 0: data (log: ${expdir}/log/prepare.log)"
    ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.mos_pretrain.prepare "${opts[@]}" "${corpora[@]}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    echo "stage 1: noisy pre-training set (log: ${expdir}/log/noisy.log)"
    ${train_cmd} "${expdir}/log/noisy.log" python -m speechlib.tasks.mos_pretrain.noisy "${opts[@]}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    echo "stage 2: pre-train PASE, with and without the noise workers (Table I), and the controls"
    pretrain_group pase
    pretrain_group control
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    echo "stage 3: pre-train the masked encoder, with and without the noise workers"
    pretrain_group masked
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    echo "stage 4: PASE+ baseline; DNSMOS reference (log: ${expdir}/log/dnsmos.log, runs beside stage 5)"
    pretrain_group plus
    # DNSMOS needs only the test sets: it runs in the background while stage 5 trains the heads
    ${decode_cmd} "${expdir}/log/dnsmos.log" python -m speechlib.tasks.mos_pretrain.dnsmos "${opts[@]}" &
    dnsmos_pid=$!
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    echo "stage 5: downstream MOS heads on the frozen encoders (logs: ${expdir}/log/downstream.*.log)"
    ${train_cmd} JOB=1:"${nj}" "${expdir}/log/downstream.JOB.log" \
        python -m speechlib.tasks.mos_pretrain.downstream "${opts[@]}" "${externals[@]}" --job JOB "${device[@]}"
fi

if [ -n "${dnsmos_pid:-}" ]; then
    wait "${dnsmos_pid}" || { echo "DNSMOS failed: see ${expdir}/log/dnsmos.log" >&2; exit 1; }
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    echo "stage 6: scoring, tables and figure (log: ${expdir}/log/score.log)"
    ${decode_cmd} "${expdir}/log/score.log" python -m speechlib.tasks.mos_pretrain.score "${opts[@]}"
    python -m speechlib.results.collect .
    echo "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
