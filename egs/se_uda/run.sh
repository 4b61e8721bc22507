#!/usr/bin/env bash
# egs/se_uda: unsupervised domain adaptation for speech enhancement across a large domain gap
# (Frenkel, Goldberger & Chazan): source LibriSpeech + WHAM!, target non-English DNS.
#   ./run.sh                                   # all stages, mini corpus
#   ./run.sh --stage 4 --stop-stage 6 --tag try1
#   ./run.sh --config conf/paper_se_uda.yaml --ngpu 1
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel jobs for array stages (scoring)
ngpu=0           # GPUs for training (0: CPU)
config=conf/mini_se_uda.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1
help_message="Usage: $0 [options]
  --stage N        first stage (0: data, 1: mixing, 2: source model, 3: domain classifier,
                   4: DANN, 5: RemixIT and DANN+RemixIT, 6: SRST, 7: target model, 8: scoring)
                                                                  [${stage}]
  --stop-stage N   last stage                                     [${stop_stage}]
  --nj N           parallel scoring jobs                          [${nj}]
  --ngpu N         GPUs for training (0 or 1)                     [${ngpu}]
  --config FILE    hyperpyyaml config                             [${config}]
  --tag NAME       experiment name (exp/NAME)                     [config name]
  --seed N         seed for Python, NumPy and torch               [${seed}]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, resume script
if [ "${ngpu}" -gt 0 ]; then
    device=cuda:0; train=(${cuda_cmd} --gpu "${ngpu}")
else
    device=cpu; train=(${train_cmd})
fi

train_system() {  # train_system <system>: one training of stages 2-7
    echo "  training $1 (log: ${expdir}/log/train_$1.log)"
    "${train[@]}" "${expdir}/log/train_$1.log" \
        python -m speechlib.tasks.se_uda.train "${opts[@]}" --system "$1" --device "${device}"
}

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    echo "stage 0: data (log: ${expdir}/log/prepare.log)"
    ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.se_uda.prepare "${opts[@]}" \
        --librispeech "${LIBRISPEECH}" --wham "${WHAM}" --dns "${DNS}"
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    echo "stage 1: mixing (log: ${expdir}/log/mix.log)"
    ${train_cmd} "${expdir}/log/mix.log" python -m speechlib.tasks.se_uda.mix "${opts[@]}"
fi

# Stages 2-7: the trainings, in dependency order (each needs the models of the stages before it).
stage_title=([2]="source model" [3]="domain classifier on the frozen source encoder" [4]="DANN"
    [5]="RemixIT (from the source model) and DANN+RemixIT (from the DANN model)"
    [6]="SRST with random and with target-like source samples"
    [7]="target model (oracle: trained with target clean speech)")
stage_systems=([2]="source" [3]="classifier" [4]="dann" [5]="remixit dann_remixit"
    [6]="srst_random srst_similar" [7]="target")
for n in 2 3 4 5 6 7; do
    if [ "${stage}" -le "${n}" ] && [ "${stop_stage}" -ge "${n}" ]; then
        echo "stage ${n}: ${stage_title[${n}]}"
        for system in ${stage_systems[${n}]}; do train_system "${system}"; done
    fi
done

if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    echo "stage 8: scoring, ${nj} jobs (logs: ${expdir}/log/score.*.log)"
    data=$(python -m speechlib.tasks.se_uda.score "${opts[@]}" --print_test_sets)
    for dir in ${data}; do utils/split_data.sh --per-utt "${dir}" "${nj}" >/dev/null; done
    ${decode_cmd} JOB=1:"${nj}" "${expdir}/log/score.JOB.log" \
        python -m speechlib.tasks.se_uda.score "${opts[@]}" --job JOB --nj "${nj}" --device cpu
    ${decode_cmd} "${expdir}/log/report.log" python -m speechlib.tasks.se_uda.report "${opts[@]}" --nj "${nj}"
    python -m speechlib.results.collect .
    echo "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
