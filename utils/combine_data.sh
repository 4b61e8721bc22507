#!/usr/bin/env bash
# Kaldi's combine_data.sh for this repository. The rules live in speechlib/data/datadir.py;
# this wrapper only finds the repository and its Python. Usage: utils/combine_data.sh --help
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
python=$root/tools/venv/bin/python
[ -x "$python" ] || python=python3
PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH} exec "$python" -m speechlib.data.cli combine "$@"
