# Sourced by run.sh: the environment every stage runs in.
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ ! -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
    echo "path.sh: error: ${MAIN_ROOT}/tools/venv is missing: run 'make -C ${MAIN_ROOT} setup'" >&2
    return 1
fi
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/venv/bin/activate"
export PYTHONPATH=${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}
export LC_ALL=C
export OMP_NUM_THREADS=1
export PYTHONUNBUFFERED=1
