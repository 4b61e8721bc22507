#!/usr/bin/env bash
# Write a resume script: `exp/<tag>/run.sh` re-runs the recipe with the same arguments.
# Usage: utils/make_resume_script.sh <out-script> <recipe-script> [args...]
# Extra arguments given to the resume script are appended (e.g. `exp/x/run.sh --stage 3`).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <out-script> <recipe-script> [args...]" >&2; exit 1; }
out=$1; script=$2; shift 2
recipe_dir=$(cd "$(dirname "${script}")" && pwd)
mkdir -p "$(dirname "${out}")"
tmp=$(mktemp "${out}.XXXXXX")
{
    echo "#!/usr/bin/env bash"
    echo "# Generated $(date '+%Y-%m-%d %H:%M:%S'): re-run the recipe with the same arguments."
    echo "# Arguments given to this script are appended, e.g. --stage 3."
    printf 'cd %q && exec ./%q' "${recipe_dir}" "$(basename "${script}")"
    for arg in "$@"; do printf ' %q' "${arg}"; done
    printf ' "$@"\n'
} > "${tmp}"
chmod +x "${tmp}"
mv "${tmp}" "${out}"
