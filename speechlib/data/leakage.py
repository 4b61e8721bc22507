"""Find audio files that two lists share: the same file (inode), a link to it, or a copy (content).

Train/test leakage in a corpus built from links (the mini corpus hard-links one recording into
several layouts) or copies is invisible in the file names. Two files are the same recording when
they share (device, inode) or, among files of equal size, a SHA-256 of their bytes; only
size collisions are hashed, so checking a large corpus reads few files.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from speechlib.io.kaldi import read_dict


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shared_files(first: Iterable[str], second: Iterable[str]) -> set[str]:
    """The paths of `second` that are the same file or have the same bytes as a path of `first`."""
    stats_a = {p: os.stat(p) for p in set(first)}
    inodes = {(s.st_dev, s.st_ino) for s in stats_a.values()}
    by_size: dict[int, list[str]] = defaultdict(list)
    for path, st in stats_a.items():
        by_size[st.st_size].append(path)
    hashes_a: dict[int, set[str]] = {}
    found = set()
    for path in set(second):
        st = os.stat(path)
        if (st.st_dev, st.st_ino) in inodes:
            found.add(path)
            continue
        if st.st_size in by_size:
            if st.st_size not in hashes_a:
                hashes_a[st.st_size] = {_sha256(p) for p in by_size[st.st_size]}
            if _sha256(path) in hashes_a[st.st_size]:
                found.add(path)
    return found


def audio_files(data_dirs: Iterable[str | Path]) -> list[str]:
    """Every file that the wav.scp of the data dirs names (plain paths only)."""
    return [path for d in data_dirs for path in read_dict(Path(d) / "wav.scp").values()]
