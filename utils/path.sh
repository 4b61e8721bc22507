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
# Float results depend on the vector unit the kernels pick: oneDNN (convolutions), MKL (matmul)
# and ATen (element-wise, reductions) take AVX-512 paths where the CPU has them and AVX2 ones
# elsewhere, and last-digit differences grow through training (50 Adam steps of a small conv net
# end at another loss with oneDNN on AVX-512 than on AVX2). Pinned to AVX2, every x86-64 machine
# with AVX2 computes the same numbers; on the AVX-512 EPYC here it cost no measurable CPU time.
# SPEECHLIB_NATIVE_ISA=1 lets the kernels use the widest unit (numbers may then move).
if [ "${SPEECHLIB_NATIVE_ISA:-0}" != 1 ]; then
    export ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2
fi
