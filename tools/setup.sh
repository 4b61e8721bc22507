#!/usr/bin/env bash
# One-step set-up, idempotent: Debian packages (as root), tools/venv with the pinned Python
# packages, and speechlib installed in it (editable). A second run with nothing changed is a
# no-op: the stamp records a hash of everything that decides what gets installed.
#   tools/setup.sh [--force]
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
venv=${root}/tools/venv
stamp=${root}/tools/.setup.stamp
python=${PYTHON:-python3}
force=false
[ "${1:-}" = --force ] && force=true

mapfile -t debian_packages < <(grep -v '^\s*#' "${root}/tools/debian_packages.txt" | awk 'NF')
fingerprint=$(cat "${root}/setup.py" "${root}/tools/debian_packages.txt" "$0" | sha256sum | cut -c1-16)

missing=()
for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" || missing+=("${package}")
done

if ! ${force} && [ ${#missing[@]} -eq 0 ] && [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${fingerprint}" ] \
        && "${venv}/bin/python" -c "import speechlib, torch, speechbrain" 2>/dev/null; then
    exit 0  # up to date
fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup.sh: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup.sh: warning: missing Debian packages: ${missing[*]}" >&2
        echo "setup.sh: install them with: sudo apt-get install ${missing[*]}" >&2
        echo "setup.sh: (tests and recipes that need them will fail or skip with this reason)" >&2
    fi
fi

"${python}" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "setup.sh: error: ${python} is older than Python 3.10" >&2; exit 1; }
if [ ! -x "${venv}/bin/python" ]; then
    echo "setup.sh: creating ${venv}"
    "${python}" -m venv "${venv}"
fi
echo "setup.sh: installing the pinned Python packages into ${venv} (torch, torchaudio, speechbrain, ...)"
"${venv}/bin/python" -m pip install -q --upgrade pip
"${venv}/bin/python" -m pip install -q -e "${root}[test]"
"${venv}/bin/python" -c "import torch, torchaudio, speechbrain; print('setup.sh: torch', torch.__version__, 'torchaudio', torchaudio.__version__, 'speechbrain', speechbrain.__version__)"
echo "${fingerprint}" > "${stamp}"
echo "setup.sh: done"
