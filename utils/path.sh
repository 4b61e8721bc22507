# The environment every stage runs in; one copy, symlinked as egs/<recipe>/path.sh.
# MAIN_ROOT: the repository (this file is <root>/utils/path.sh; a test may point it elsewhere).
MAIN_ROOT=${MAIN_ROOT:-$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)}
if [ ! -f "${MAIN_ROOT}/tools/venv/bin/activate" ]; then
    echo "path.sh: error: ${MAIN_ROOT}/tools/venv is missing: run 'make -C ${MAIN_ROOT} setup'" >&2
    return 1
fi
# shellcheck disable=SC1091
. "${MAIN_ROOT}/tools/venv/bin/activate"
export PYTHONPATH=${MAIN_ROOT}${PYTHONPATH:+:${PYTHONPATH}}
# The one rule locating the mini corpus (speechlib.data.mini.default_root reads it).
export SPEECHLIB_MINI=${SPEECHLIB_MINI:-${MAIN_ROOT}/mini}
export LC_ALL=C
export OMP_NUM_THREADS=1
# String hashing is salted per process by default, so iterating a set of strings changes order
# from run to run: fixed, the same command gives the same order (README, "Same command, same table").
export PYTHONHASHSEED=0
export PYTHONUNBUFFERED=1
