# Sourced by every recipe's run.sh once it has declared its options and help_message:
#     stage=1; ...; config=conf/mini_x.yaml; tag=""; seed=1; help_message="..."
#     . utils/recipe_init.sh
# It sources path.sh, cmd.sh and db.sh, parses the options (utils/parse_options.sh), refuses
# stray arguments and a missing --config, and sets
#     expdir=exp/<tag>  (tag defaults to the config's name)
#     opts=(<config> --output_folder <expdir> --seed <seed>)  the arguments every stage takes
# and writes the resume script <expdir>/run.sh.
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
opts=("${config}" --output_folder "${expdir}" --seed "${seed}")
