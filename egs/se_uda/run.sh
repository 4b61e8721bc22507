#!/usr/bin/env bash
# egs/se_uda: unsupervised domain adaptation for speech enhancement across a large domain gap
# (Frenkel, Goldberger & Chazan): source LibriSpeech + WHAM!, target non-English DNS.
#   ./run.sh                                   # all stages, mini corpus (about 15 min on 2 cores)
#   ./run.sh --stage 4 --stop-stage 6 --tag try1
#   ./run.sh --config conf/small_se_uda.yaml   # every system with 3 seeds (the config's `seeds`)
#   ./run.sh --config conf/paper_se_uda.yaml --ngpu 1
set -euo pipefail

stage=0          # first stage to run
stop_stage=10000 # last stage to run
nj=2             # parallel scoring jobs on CPU (with --ngpu > 0: one job on the GPU)
ngpu=0           # GPUs for training (0: CPU; >1: DDP through speechlib.launch.distributed)
config=conf/mini_se_uda.yaml
tag=""           # exp/<tag>; default: the config's name
seed=1           # seed of stages 0-1 (the fixed sets use the config's test_seed)
seeds=""         # seeds of stages 2-8; default: the config's `seeds: [..]` line
help_message="Usage: $0 [options]
  --stage N        first stage (0: data, 1: fixed validation/test sets, 2: source and
                   oracle target models, 3: domain classifier, 4: DANN, 5: RemixIT and
                   DANN+RemixIT, 6: SRST, 7: scoring, 8: report)             [${stage}]
  --stop-stage N   last stage                                                 [${stop_stage}]
  --nj N           parallel CPU scoring jobs                                  [${nj}]
  --ngpu N         GPUs for training and scoring                              [${ngpu}]
  --config FILE    hyperpyyaml config                                         [${config}]
  --tag NAME       experiment name (exp/NAME)                                 [config name]
  --seed N         seed of stages 0-1                                         [${seed}]
  --seeds \"1 2 3\"  training seeds (exp/NAME/seed<N> each)                     [config's seeds]"

. utils/recipe_init.sh  # options, path/cmd/db, expdir, opts, db_opts, log, stage_begin, launch, train_job
seeds=${seeds:-$(sed -n 's/^seeds: *\[\(.*\)\].*/\1/p' "${config}" | tr ',' ' ')}
[ -n "${seeds// /}" ] || { echo "$0: error: no seeds (--seeds or a 'seeds: [..]' line in ${config})" >&2; exit 1; }

if stage_begin 0 "data: source, target and English speech and noise lists, leakage check"; then
    launch ${train_cmd} "${expdir}/log/prepare.log" python -m speechlib.tasks.se_uda.prepare "${opts[@]}" "${db_opts[@]}"
fi

if stage_begin 1 "fixed validation and test mixtures (own generators, manifest hashes)"; then
    launch ${train_cmd} "${expdir}/log/mix.log" python -m speechlib.tasks.se_uda.mix "${opts[@]}"
fi

# Stages 2-6: the trainings, in dependency order; the systems of one stage do not depend on each
# other and train at the same time (two processes: one per core, or both on the GPU).
train_systems() {  # train_systems SEED SYSTEM...
    local s=$1 pids=() system
    shift
    for system in "$@"; do
        train_job "${expdir}/seed${s}/log/train_${system}.log" python -m speechlib.tasks.se_uda.train \
            "${config}" --output_folder "${expdir}/seed${s}" --seed "${s}" --system "${system}" &
        pids+=($!)
    done
    wait_all "${pids[@]}"
}
stage_title=([2]="source model and oracle target model (trained with target clean speech)"
    [3]="domain classifier on the frozen source encoder" [4]="DANN"
    [5]="RemixIT (from the source model) and DANN+RemixIT (from the DANN model)"
    [6]="SRST: post-DANN domain scores, then SRST with random and with target-like source samples")
stage_systems=([2]="source target" [3]="classifier" [4]="dann" [5]="remixit dann_remixit"
    [6]="srst_random srst_similar")
for n in 2 3 4 5 6; do
    if stage_begin "${n}" "${stage_title[${n}]} (seeds: ${seeds})"; then
        for s in ${seeds}; do
            [ "${n}" -eq 6 ] && train_systems "${s}" srst_scores
            # shellcheck disable=SC2086
            train_systems "${s}" ${stage_systems[${n}]}
        done
    fi
done

# Scoring jobs: one on the GPU, else --nj, but never more than the smallest test set has utterances
# (every job scores its part of every set; a small corpus can hold a single DNS English test file).
# The test dirs are asked of the config once (a Python start costs seconds of CPU).
if [ "${stop_stage}" -ge 7 ]; then
    test_dirs=$(python -m speechlib.tasks.se_uda.score "${opts[@]}" --print_test_sets)
fi
scoring_jobs() {
    local jobs=${nj} dir size
    [ "${ngpu}" -gt 0 ] && jobs=1
    for dir in ${test_dirs}; do
        size=$(wc -l < "${dir}/wav.scp")
        [ "${size}" -lt "${jobs}" ] && jobs=${size}
    done
    echo "${jobs}"
}

if stage_begin 7 "scoring every system on every test set"; then
    score_jobs=$(scoring_jobs)
    if [ "${ngpu}" -gt 0 ]; then score_device=cuda:0; else score_device=cpu; fi
    for dir in ${test_dirs}; do utils/split_data.sh --per-utt "${dir}" "${score_jobs}" >/dev/null; done
    for s in ${seeds}; do
        launch ${decode_cmd} JOB=1:"${score_jobs}" "${expdir}/seed${s}/log/score.JOB.log" \
            python -m speechlib.tasks.se_uda.score "${config}" --output_folder "${expdir}/seed${s}" --seed "${s}" \
            --job JOB --nj "${score_jobs}" --device "${score_device}"
    done
fi

if stage_begin 8 "report: tables with CIs, paired bootstrap, figures"; then
    launch ${decode_cmd} "${expdir}/log/report.log" python -m speechlib.tasks.se_uda.report "${opts[@]}" \
        --nj "$(scoring_jobs)" --seeds "${seeds}"
    python -m speechlib.results.collect .
    log "results: ${expdir}/RESULTS.md and RESULTS.md"
fi
