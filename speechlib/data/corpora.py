"""Where a corpus lives: a db.sh variable, or the mini corpus when the variable is empty.

Recipes pass the variable's name and value to their prep stage (`--corpus_var LIBRISPEECH
--corpus_path "${LIBRISPEECH}"`), so a wrong path is reported with the name the user must fix.
"""
from __future__ import annotations

from pathlib import Path

from speechlib.data.mini import default_root
from speechlib.io.errors import InputError


def resolve_corpus(variable: str, value: str | None, mini_subdir: str, mini_root: str | Path | None = None,
                   expect: tuple[str, ...] = ()) -> tuple[Path, bool]:
    """Return (corpus directory, is_mini).

    `value` empty: the mini corpus's `mini_subdir` (under `mini_root`, default the one rule:
    $SPEECHLIB_MINI, else <repo>/mini, see speechlib.data.mini.default_root).
    Otherwise `value` must be an existing directory holding every relative path in `expect`.
    """
    if value is None or not str(value).strip():
        root = Path(mini_root) if mini_root else default_root()
        path = root / mini_subdir
        if not path.is_dir():
            raise InputError(f"db.sh: {variable} is empty, so the mini corpus is used, but {path} does not "
                             f"exist: build it with tools/make_mini_corpus.sh (or set {variable})")
        return path, True
    path = Path(str(value).strip()).expanduser()
    if not path.is_dir():
        raise InputError(f"db.sh: {variable}={value}: no such directory")
    for relative in expect:
        if not (path / relative).exists():
            raise InputError(f"db.sh: {variable}={value}: expected {relative} inside it (is this the right corpus?)")
    return path, False
