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
  --ngpu N         GPUs for pre-training (N > 1: DDP via torchrun/srun) [${ngpu}]
  --config FILE    hyperpyyaml config                               [${config}]
  --tag NAME       experiment name (exp/NAME)                       [config name]
  --seed N         seed for Python, NumPy and torch                 [${seed}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, db_opts, log, stage_begin, launch, train_job
opts+=(--data_folder "data/${tag}" --nj "${nj}")
# the heads and embeddings of stage 5 are not a DDP training: one device for the array's jobs
if [ "${ngpu}" -gt 0 ]; then array_device=(--device cuda:0); else array_device=(--device cpu); fi

pretrain_group() {  # $1: group (pase | control | masked | plus); DDP under --ngpu N > 1 (train_job)
    local jobs=${nj} j pids=()
    [ "${ngpu}" -gt 0 ] && jobs=1  # one job holds all the GPUs
    for j in $(seq 1 "${jobs}"); do
        train_job "${expdir}/log/pretrain_${1}.${j}.log" python -m speechlib.tasks.mos_pretrain.pretrain \
            "${opts[@]}" --group "${1}" --job "${j}" --nj "${jobs}" &
        pids+=($!)
    done
    wait_all "${pids[@]}"
}

if stage_begin 0 "data: pre-training speech, noise, mini MOS sets (DistillMOS labels)"; then
    launch ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.mos_pretrain.prepare "${opts[@]}" "${db_opts[@]}"
fi

if stage_begin 1 "noise-label census of the pre-training draws, linear-probe sets"; then
    launch ${train_cmd} "${expdir}/log/noisy.log" python -m speechlib.tasks.mos_pretrain.noisy "${opts[@]}"
fi

if stage_begin 2 "pre-train PASE, with and without the noise workers (Table I), and the controls"; then
    pretrain_group pase
    pretrain_group control
fi

if stage_begin 3 "pre-train the masked encoder, with and without the noise workers"; then
    pretrain_group masked
fi

if stage_begin 4 "PASE+ baseline; DNSMOS reference (runs beside stage 5)"; then
    pretrain_group plus
    # DNSMOS needs only the test sets: it runs in the background while stage 5 trains the heads
    launch ${decode_cmd} "${expdir}/log/dnsmos.log" python -m speechlib.tasks.mos_pretrain.dnsmos "${opts[@]}" &
    dnsmos_pid=$!
fi

if stage_begin 5 "downstream MOS heads on the frozen encoders, linear probes"; then
    launch ${train_cmd} JOB=1:"${nj}" "${expdir}/log/downstream.JOB.log" \
        python -m speechlib.tasks.mos_pretrain.downstream "${opts[@]}" "${db_opts[@]}" --job JOB "${array_device[@]}"
fi

if [ -n "${dnsmos_pid:-}" ]; then
    wait "${dnsmos_pid}" || { log "DNSMOS failed: see ${expdir}/log/dnsmos.log" >&2; exit 1; }
fi

if stage_begin 6 "scoring: tables with CIs, bootstrap, probes, figure"; then
    launch ${decode_cmd} "${expdir}/log/score.log" python -m speechlib.tasks.mos_pretrain.score "${opts[@]}"
    python -m speechlib.results.collect .
    log "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
