#!/usr/bin/env bash
# egs/audio2image: WavBriVL (Fang et al.): audio aligned to a frozen image tower with MoCo queues,
# images generated from sound by VQGAN latent optimisation, and the 2AFC test; baseline Wav2CLIP.
#   ./run.sh                                    # every stage, mini corpus
#   ./run.sh --stage 4 --stop-stage 4 --tag try1
#   ./run.sh --config conf/tiny_audio2image.yaml --seeds "1 2"   # minutes: the end-to-end test
#   ./run.sh --config conf/paper_audio2image.yaml --ngpu 4       # VGG-Sound, pretrained weights (db.sh)
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # trainings of stages 2-3 run at once on CPU
ngpu=0           # GPUs for training (0: CPU; >1: DDP through torchrun or srun)
config=conf/mini_audio2image.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
seeds="1 2 3"    # training seeds of stages 2-4 (WavBriVL vs Wav2CLIP with CIs over seeds)
help_message="Usage: $0 [options]
  --stage N        first stage (0: data, 1: image tower, 2: WavBriVL, 3: Wav2CLIP,
                   4: retrieval/classification, 5: VQGAN + generation, 6: 2AFC)  [${stage}]
  --stop-stage N   last stage                                     [${stop_stage}]
  --nj N           trainings of stages 2-3 run at once on CPU     [${nj}]
  --ngpu N         GPUs for training                              [${ngpu}]
  --config FILE    hyperpyyaml config                             [${config}]
  --tag NAME       experiment name (exp/NAME)                     [config name]
  --seed N         seed of the image tower, generation and 2AFC   [${seed}]
  --seeds LIST     training seeds of the audio towers             [${seeds}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, log, stage_begin, launch, train_job

if stage_begin 0 "data: sound/picture pairs split by stamp (or VGG-Sound)"; then
    launch ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.audio2image.prepare \
        "${opts[@]}" "${db_opts[@]}"
fi

if stage_begin 1 "the frozen image tower (image-text pre-training, or BriVL's checkpoint)"; then
    train_job "${expdir}/log/pretrain.log" python -m speechlib.tasks.audio2image.pretrain "${opts[@]}"
fi

# Stages 2 (wavbrivl) and 3 (wav2clip) train 2 x |seeds| audio towers, one process each, through
# one pool of nj slots (CPU; one slot on GPUs): a slot freed by one training starts the next, so
# stage 2's odd last seed runs beside stage 3's first instead of leaving a core idle. They are
# timed as one stage; each training logs its own time as it ends.
train_audio() {  # train_audio SYSTEM SEED
    local started=${SECONDS}
    train_job "${expdir}/log/train_$1_seed$2.log" python -m speechlib.tasks.audio2image.train \
        "${config}" --output_folder "${expdir}" --seed "$2" --system "$1"
    log "trained $1 seed $2 [elapsed=$((SECONDS - started))s]"
}
slots=$([ "${ngpu}" -gt 0 ] && echo 1 || echo "${nj}")
audio_stages=()
for n in 2 3; do
    if [ "${stage}" -le "${n}" ] && [ "${stop_stage}" -ge "${n}" ]; then audio_stages+=("${n}"); fi
done
if [ "${#audio_stages[@]}" -gt 0 ] && stage_begin "${audio_stages[0]}" \
        "audio towers of stage(s) ${audio_stages[*]} (2: wavbrivl, 3: wav2clip), seeds ${seeds}, ${slots} at a time"; then
    for n in "${audio_stages[@]}"; do
        for s in ${seeds}; do
            in_slots "${slots}" train_audio "$([ "${n}" -eq 2 ] && echo wavbrivl || echo wav2clip)" "${s}"
        done
    done
    wait_slots
fi

if stage_begin 4 "retrieval and zero-shot classification, seeds ${seeds}"; then
    launch ${decode_cmd} "${expdir}/log/evaluate.log" python -m speechlib.tasks.audio2image.evaluate "${opts[@]}" \
        --seeds "${seeds}"
fi

if stage_begin 5 "VQGAN, then a picture for every held-out sound"; then
    train_job "${expdir}/log/vqgan.log" python -m speechlib.tasks.audio2image.vqgan "${opts[@]}"
    launch ${decode_cmd} "${expdir}/log/synthesize.log" python -m speechlib.tasks.audio2image.synthesize \
        "${opts[@]}" "${train_device[@]}"
fi

if stage_begin 6 "2AFC: automatic judges, the human test page, RESULTS.md"; then
    launch ${decode_cmd} "${expdir}/log/afc.log" python -m speechlib.tasks.audio2image.afc "${opts[@]}"
    python -m speechlib.results.collect .
    log "results: ${expdir}/RESULTS.md and RESULTS.md; human 2AFC page: ${expdir}/2afc/index.html"
fi
