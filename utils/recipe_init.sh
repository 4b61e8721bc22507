# Sourced by every recipe's run.sh once it has declared its options and help_message:
#     stage=1; stop_stage=10000; nj=2; ngpu=0; config=conf/mini_x.yaml; tag=""; seed=1; help_message="..."
#     . utils/recipe_init.sh
# It sources path.sh, cmd.sh and db.sh, parses the options (utils/parse_options.sh), refuses
# stray arguments and a missing --config, writes the resume script <expdir>/run.sh, and sets
#     expdir=exp/<tag>          (tag defaults to the config's name)
#     opts=(<config> --output_folder <expdir> --seed <seed>)   the arguments every stage takes
#     db_opts=(--librispeech <$LIBRISPEECH> ...)  one per db.sh variable, named in lower case:
#                               the rule "db.sh FOO_BAR -> config key foo_bar"
# and defines
#     log MESSAGE               ESPnet's log line: timestamp, file:line, message
#     stage_begin N TITLE       true when N is in [stage, stop_stage]; logs "Stage N: TITLE" and
#                               the elapsed time of the stage before; the total is logged at exit
#     launch LAUNCHER [opts] [JOB=1:N] LOG COMMAND...
#                               runs a launcher call and meanwhile shows the stage's progress
#                               lines (or jobs done/total for an array) on the terminal
#     wait_all PID...           waits for every background job; fails if any failed
#     in_slots N COMMAND...     runs COMMAND in the background once fewer than N of the commands
#                               started by in_slots run (a pool of N slots: CPU trainings)
#     wait_slots                waits for the pool's commands; fails if any of them failed, even
#                               one that ended before anyone waited for it
#     train_job LOG COMMAND...  a training: the launcher and processes chosen once from --ngpu
#                               (0: CPU; 1: one GPU; N > 1: torchrun, or srun across Slurm nodes,
#                               through speechlib.launch.distributed)
recipe_args=("$@")
. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh
if [ $# -gt 0 ]; then echo "$0: error: unexpected arguments: $*" >&2; exit 1; fi
[ -f "${config}" ] || { echo "$0: error: --config ${config}: no such file" >&2; exit 1; }
tag=${tag:-$(basename "${config}" .yaml)}
expdir=exp/${tag}
utils/make_resume_script.sh "${expdir}/run.sh" "$0" "${recipe_args[@]}"
# The command that reproduces this run, from the repository root: results record it.
__recipe_rel=$(realpath --relative-to="${MAIN_ROOT}" "$(pwd)")
[[ "${__recipe_rel}" == ../* ]] && __recipe_rel=egs/$(basename "$(pwd)")  # a copy elsewhere (tests)
RECIPE_COMMAND="cd ${__recipe_rel} && ./$(basename "$0")"
for __arg in "${recipe_args[@]}"; do RECIPE_COMMAND+=" $(printf '%q' "${__arg}")"; done
export RECIPE_COMMAND
opts=("${config}" --output_folder "${expdir}" --seed "${seed}")

db_opts=()
for __db_var in $(sed -n 's/^\([A-Z][A-Z0-9_]*\)=.*/\1/p' db.sh); do
    db_opts+=("--${__db_var,,}" "${!__db_var}")
done
unset __db_var

__log_at() {  # __log_at DEPTH MESSAGE: DEPTH 1 names the caller of the function calling us
    local d=$1; shift
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[d + 1]##*/}:${BASH_LINENO[d]}:${FUNCNAME[d + 1]:-main}) $*"
}
log() { __log_at 1 "$@"; }

__stage_now="" __stage_start=0
__stage_close() {
    if [ -n "${__stage_now}" ]; then
        __log_at 2 "Stage ${__stage_now} done [elapsed=$((SECONDS - __stage_start))s]"
        __stage_now=""
    fi
}
stage_begin() {  # stage_begin N TITLE
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] || return 1
    __stage_close
    __stage_now=$1 __stage_start=${SECONDS}
    __log_at 1 "Stage $1: $2"
}
__recipe_exit() {
    local code=$?
    [ -n "${__follower:-}" ] && kill "${__follower}" 2>/dev/null
    if [ "${code}" -eq 0 ]; then
        __stage_close
        log "Successfully finished. [elapsed=${SECONDS}s]"
    else
        log "Failed${__stage_now:+ in stage ${__stage_now}} with exit code ${code}. [elapsed=${SECONDS}s]"
    fi
}
trap __recipe_exit EXIT

__follow() {  # __follow MARKER LOG [JOBVAR NJOBS]: print new progress lines / jobs done
    set +e  # a grep finding nothing must not end the follower
    local marker=$1 log=$2 var=${3:-} njobs=${4:-} seen=0 shown=${SECONDS} done_jobs=-1 lines pattern=""
    [ -n "${var}" ] && pattern=${log//${var}/*}
    __follow_pass() {
        if [ -n "${var}" ]; then
            # shellcheck disable=SC2086
            lines=$(find ${pattern} -newer "${marker}" 2>/dev/null | xargs -r grep -l '^# Ended' 2>/dev/null | wc -l)
            if [ "${lines}" -ne "${done_jobs}" ]; then
                done_jobs=${lines}; shown=${SECONDS}
                echo "    $(date '+%H:%M:%S') jobs done: ${done_jobs}/${njobs}"
            fi
        elif [ -f "${log}" ] && [ "${log}" -nt "${marker}" ]; then
            lines=$(wc -l < "${log}")
            [ "${lines}" -lt "${seen}" ] && seen=0
            if [ "${lines}" -gt "${seen}" ]; then
                sed -n "$((seen + 1)),${lines}p" "${log}" \
                    | grep -E ' progress: |: [0-9]+/[0-9]+ [a-z]+s done, ' | sed 's/^/    /' && shown=${SECONDS}
                seen=${lines}
            fi
        fi
        if [ $((SECONDS - shown)) -ge 30 ]; then
            echo "    $(date '+%H:%M:%S') still running (log: ${log})"; shown=${SECONDS}
        fi
    }
    trap '__follow_pass; exit 0' TERM
    while true; do sleep 5 & wait $!; __follow_pass; done
}

launch() {  # launch LAUNCHER [launcher options] [JOB=1:N] LOG COMMAND...
    local args=("$@") i=1 var="" njobs="" marker code=0
    while [ "${i}" -lt "${#args[@]}" ]; do
        case "${args[i]}" in
            --*=*) i=$((i + 1)) ;;
            --*) i=$((i + 2)) ;;
            *) break ;;
        esac
    done
    if [[ "${args[i]:-}" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)(:([0-9]+))?$ ]]; then
        var=${BASH_REMATCH[1]}
        njobs=$(( ${BASH_REMATCH[4]:-${BASH_REMATCH[2]}} - BASH_REMATCH[2] + 1 ))
        i=$((i + 1))
    fi
    echo "    log: ${args[i]}"
    marker=$(mktemp)
    __follow "${marker}" "${args[i]}" "${var}" "${njobs}" &
    __follower=$!
    "$@" || code=$?
    kill "${__follower}" 2>/dev/null; wait "${__follower}" 2>/dev/null || true
    __follower=""
    rm -f "${marker}"
    return "${code}"
}

# --ngpu -> launcher and device, decided here once for every recipe.
if [ "${ngpu:-0}" -gt 0 ]; then
    train_launcher=(${cuda_cmd} --gpu "${ngpu}")
    train_device=()  # one GPU per process: SpeechBrain takes cuda:LOCAL_RANK
    [ "${ngpu}" -eq 1 ] && train_device=(--device cuda:0)
else
    train_launcher=(${train_cmd})
    train_device=(--device cpu)
fi
wait_all() {  # wait_all PID...: every job runs to its end; the status is the last failure's (0 if none)
    local pid code=0
    for pid in "$@"; do wait "${pid}" || code=$?; done
    return "${code}"
}
__slot_pids=() __slot_code=0
in_slots() {  # in_slots N COMMAND...
    local slots=$1 finished pid kept
    shift
    while [ "${#__slot_pids[@]}" -ge "${slots}" ]; do
        finished=""
        wait -n -p finished "${__slot_pids[@]}" || __slot_code=$?
        kept=()
        for pid in "${__slot_pids[@]}"; do [ "${pid}" = "${finished}" ] || kept+=("${pid}"); done
        __slot_pids=(${kept[@]+"${kept[@]}"})
    done
    "$@" &
    __slot_pids+=($!)
}
wait_slots() {  # the status of the pool's last failure (0 if none); the pool is empty afterwards
    local code=${__slot_code}
    wait_all ${__slot_pids[@]+"${__slot_pids[@]}"} || code=$?
    __slot_pids=() __slot_code=0
    return "${code}"
}
train_job() {  # train_job LOG python -m speechlib.tasks.<recipe>.<stage> ARGS...
    local log=$1; shift
    launch "${train_launcher[@]}" "${log}" python -m speechlib.launch.distributed --ngpu "${ngpu:-0}" -- \
        "$@" "${train_device[@]}"
}
