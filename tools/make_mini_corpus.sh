#!/usr/bin/env bash
# Build the mini corpus (real speech, noise, music and pictures from Debian packages).
#
# Usage: tools/make_mini_corpus.sh [--out DIR] [--small] [--from-dir DIR] [--jobs N]
#   --out DIR       where to build (default: mini/ at the repository root)
#   --small         few utterances per speaker, same speaker counts (CI)
#   --from-dir DIR  take the .deb files from DIR instead of downloading them
#   --jobs N        worker processes (default 2)
#
# Packages are fetched with `apt-get download` (no root needed) and cached in tools/downloads/.
# A complete corpus built with the same options is not rebuilt; a half-built one (killed
# midway) has no .complete marker and is rebuilt.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$repo/mini
small=false
from_dir=
jobs=2

while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --small) small=true; shift ;;
    --from-dir) from_dir=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "$0: error: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
done

python=${PYTHON:-$repo/tools/venv/bin/python}
[ -x "$python" ] || python=python3
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

opts=()
$small && opts+=(--small)

# Nothing to do when complete (checked before any download, so it works offline).
if [ -z "$from_dir" ] && (cd "$repo" && "$python" -m speechlib.data.mini_build --debs . --out "$out" \
    "${opts[@]}" --check); then
  echo "$0: $out is complete, nothing to do" >&2
  exit 0
fi

packages=(
  asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722
  asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722
  asterisk-core-sounds-en asterisk-core-sounds-es asterisk-core-sounds-fr
  asterisk-core-sounds-it asterisk-core-sounds-ru
  tuxpaint-stamps-default tuxpaint-plugins-default tuxpaint-data
  sound-theme-freedesktop asterisk-moh-opsound-wav pingus-data
)
# more recorded people (speechlib/data/mini_sources.py VOICE_PACKAGES): the build goes on without
# any of them, says which are missing, and fails only if the evaluation speaker protocol cannot be met
voice_packages=(
  asterisk-prompt-es-co asterisk-prompt-fr-armelle asterisk-prompt-it-menardi-wav
  flite libflite1 festival libestools2.5 festlex-cmu festlex-poslex festlex-ifd
  festvox-kdlpc16k festvox-italp16k festvox-itapc16k festvox-ru festival-czech festvox-czech-dita
  festvox-czech-krb festvox-czech-machac festvox-czech-ph festvox-suopuhe-common festvox-suopuhe-lj
  festvox-suopuhe-mv festival-ca festvox-ca-ona-hts festival-hi festvox-hi-nsk
)

if [ -n "$from_dir" ]; then
  debs=$(cd "$from_dir" && pwd)
  for p in "${packages[@]}"; do
    if ! compgen -G "$debs/${p}_*.deb" > /dev/null; then
      echo "$0: error: $p: no ${p}_*.deb in $debs (download it with 'apt-get download $p' there)" >&2
      exit 1
    fi
  done
  for p in "${voice_packages[@]}"; do
    compgen -G "$debs/${p}_*.deb" > /dev/null || echo "$0: warning: voice package $p: no ${p}_*.deb in $debs" >&2
  done
else
  debs=$repo/tools/downloads
  mkdir -p "$debs"
  for p in "${packages[@]}" "${voice_packages[@]}"; do
    compgen -G "$debs/${p}_*.deb" > /dev/null && continue
    # download into a scratch dir first, so a killed download never looks cached
    tmp=$(mktemp -d "$debs/.download.XXXXXX")
    if ! (cd "$tmp" && apt-get download "$p" > "$tmp/log" 2>&1); then
      reason=$(grep -E '^E:' "$tmp/log" | head -1)
      rm -rf "$tmp"
      if [[ " ${voice_packages[*]} " == *" $p "* ]]; then
        echo "$0: warning: cannot fetch voice package $p (${reason:-apt-get download failed}); building without it" >&2
        continue
      fi
      echo "$0: error: cannot fetch Debian package $p (${reason:-apt-get download failed});" \
        "download ${p}_*.deb elsewhere and run again with --from-dir DIR" >&2
      exit 1
    fi
    mv "$tmp"/*.deb "$debs/"
    rm -rf "$tmp"
  done
fi

# One build at a time (make demo and the tests may race; a build also clears the temporary
# directories a killed build left beside its output). The lock lives in the ignored cache dir.
mkdir -p "$repo/tools/downloads"
exec 9> "$repo/tools/downloads/.build.lock"
flock 9
cd "$repo"
"$python" -m speechlib.data.mini_build --debs "$debs" --out "$out" --jobs "$jobs" "${opts[@]}"
