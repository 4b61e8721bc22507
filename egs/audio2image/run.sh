#!/usr/bin/env bash
# egs/audio2image: WavBriVL (Fang et al.): audio aligned to a frozen image tower with MoCo queues,
# images generated from sound by VQGAN latent optimisation, and the 2AFC test; baseline Wav2CLIP.
#   ./run.sh                                    # all stages, mini corpus (~15 min on 2 cores)
#   ./run.sh --stage 4 --stop-stage 4 --tag try1
#   ./run.sh --config conf/paper_audio2image.yaml --ngpu 4
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs (training seeds run side by side on CPU)
ngpu=0           # GPUs for training (0: CPU; >1: torchrun DDP)
config=conf/mini_audio2image.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
seeds="1 2 3"    # training seeds of stages 2-4 (WavBriVL vs Wav2CLIP with CIs over seeds)
help_message="Usage: $0 [options]
  --stage N        first stage (0: data, 1: image tower, 2: WavBriVL, 3: Wav2CLIP,
                   4: retrieval/classification, 5: VQGAN + generation, 6: 2AFC)  [${stage}]
  --stop-stage N   last stage                                     [${stop_stage}]
  --nj N           parallel jobs                                  [${nj}]
  --ngpu N         GPUs for training                              [${ngpu}]
  --config FILE    hyperpyyaml config                             [${config}]
  --tag NAME       experiment name (exp/NAME)                     [config name]
  --seed N         seed of the image tower, generation and 2AFC   [${seed}]
  --seeds \"1 2 3\"  training seeds of the audio towers             [${seeds}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, resume script
opts+=(--corpus_root "${MINI}")
if [ "${ngpu}" -gt 0 ]; then device=cuda:0; else device=cpu; fi

trainer() {  # trainer <log> <module> <args...>: one training, DDP over --ngpu GPUs when asked
    local logfile=$1 module=$2; shift 2
    if [ "${ngpu}" -gt 0 ]; then
        ${cuda_cmd} --gpu "${ngpu}" "${logfile}" python -m speechlib.launch.distributed --ngpu "${ngpu}" -- \
            python -m "${module}" "$@"
    else
        ${train_cmd} "${logfile}" python -m "${module}" "$@" --device cpu
    fi
}

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    echo "stage 0: data (log: ${expdir}/log/prepare.log)"
    vgg=()
    [ -n "${VGGSOUND_CSV}" ] && vgg=(--vggsound_csv "${VGGSOUND_CSV}" --vggsound_videos "${VGGSOUND_VIDEOS}")
    ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.audio2image.prepare "${opts[@]}" "${vgg[@]}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    echo "stage 1: the frozen image tower (log: ${expdir}/log/pretrain.log)"
    trainer "${expdir}/log/pretrain.log" speechlib.tasks.audio2image.pretrain "${opts[@]}"
fi

for n in 2 3; do
    if [ "${stage}" -le "${n}" ] && [ "${stop_stage}" -ge "${n}" ]; then
        system=$([ "${n}" -eq 2 ] && echo wavbrivl || echo wav2clip)
        echo "stage ${n}: ${system}, seeds ${seeds} (logs: ${expdir}/log/train_${system}_seed*.log)"
        pids=()
        for s in ${seeds}; do
            trainer "${expdir}/log/train_${system}_seed${s}.log" speechlib.tasks.audio2image.train \
                "${opts[@]}" --seed "${s}" --system "${system}" &
            pids+=($!)
            if [ "${ngpu}" -gt 0 ] || [ "${#pids[@]}" -ge "${nj}" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
        done
        for pid in "${pids[@]}"; do wait "${pid}"; done
    fi
done

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    echo "stage 4: retrieval and zero-shot classification (log: ${expdir}/log/evaluate.log)"
    ${decode_cmd} "${expdir}/log/evaluate.log" python -m speechlib.tasks.audio2image.evaluate "${opts[@]}" \
        --seeds "${seeds}"
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    echo "stage 5: VQGAN and generation (logs: ${expdir}/log/vqgan.log, synthesize.log)"
    trainer "${expdir}/log/vqgan.log" speechlib.tasks.audio2image.vqgan "${opts[@]}"
    ${decode_cmd} "${expdir}/log/synthesize.log" python -m speechlib.tasks.audio2image.synthesize "${opts[@]}" \
        --device "${device}"
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    echo "stage 6: 2AFC test, automatic judges and the web page (log: ${expdir}/log/afc.log)"
    ${decode_cmd} "${expdir}/log/afc.log" python -m speechlib.tasks.audio2image.afc "${opts[@]}"
    python -m speechlib.results.collect .
    echo "results: ${expdir}/RESULTS.md and RESULTS.md; human 2AFC page: ${expdir}/2afc/index.html"
fi
