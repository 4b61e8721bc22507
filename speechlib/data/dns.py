"""DNS-Challenge (Reddy et al., 2020-2022) clean speech per language and noise -> Kaldi data dirs.

Real layouts differ between challenge editions, so the sub-directories are parameters:
`<DNS>/<clean_subdir>/<language dir>/**/*.{wav,flac}` (e.g. datasets/clean/french_data in
DNS 2021, datasets_fullband/clean_fullband/french_speech in DNS 2022) and
`<DNS>/<noise_subdir>/**/*.wav`. Speakers are not labelled consistently across editions, so the
language is the speaker (utterance ids are `<lang>-<file stem>`), and `utt2lang` is written.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Mapping

from speechlib.io.errors import InputError
from speechlib.io.kaldi import write_table

AUDIO_SUFFIXES = (".wav", ".flac")


def _audio_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def _safe(stem: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in stem)


def in_test_split(key: str, test_percent: float) -> bool:
    """A stable, order-free train/test assignment from a hash of the key."""
    bucket = int(hashlib.md5(key.encode()).hexdigest(), 16) % 1000
    return bucket < 10 * test_percent


def clean_speech(dns: str | os.PathLike, languages: Mapping[str, str],
                 clean_subdir: str = "datasets/clean") -> dict[str, tuple[str, str]]:
    """{utt: (lang, path)} for the languages {code: directory name} asked for."""
    base = Path(dns) / clean_subdir
    if not base.is_dir():
        raise InputError(f"no DNS clean-speech directory {clean_subdir}", str(dns))
    found: dict[str, tuple[str, str]] = {}
    for lang, dirname in languages.items():
        files = _audio_files(base / dirname)
        if not files:
            raise InputError(f"no audio for language '{lang}' (expected {dirname}/**/*.wav or .flac)", str(base))
        for path in files:
            found[f"{lang}-{_safe(path.stem)}"] = (lang, str(path.resolve()))
    return found


def write_speech_dir(entries: Mapping[str, tuple[str, str]], data_dir: str | os.PathLike) -> int:
    """wav.scp, utt2spk (speaker = language), spk2utt, utt2lang."""
    if not entries:
        raise InputError("no utterances to write", str(data_dir))
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "wav.scp", {utt: path for utt, (_, path) in entries.items()})
    write_table(out / "utt2spk", {utt: lang for utt, (lang, _) in entries.items()})
    write_table(out / "utt2lang", {utt: lang for utt, (lang, _) in entries.items()})
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(entries):
        spk2utt.setdefault(entries[utt][0], []).append(utt)
    write_table(out / "spk2utt", spk2utt)
    return len(entries)


def prepare_speech(dns: str | os.PathLike, languages: Mapping[str, str], train_dir: str | os.PathLike,
                   test_dir: str | os.PathLike, test_percent: float = 30.0,
                   clean_subdir: str = "datasets/clean") -> tuple[int, int]:
    """Split the languages' clean speech into train/test data dirs by a hash of the file name."""
    entries = clean_speech(dns, languages, clean_subdir)
    test = {u: e for u, e in entries.items() if in_test_split(u, test_percent)}
    train = {u: e for u, e in entries.items() if u not in test}
    if not train or not test:
        raise InputError(f"too few files to split ({len(entries)}): train {len(train)}, test {len(test)}", str(dns))
    return write_speech_dir(train, train_dir), write_speech_dir(test, test_dir)


def prepare_noise(dns: str | os.PathLike, train_dir: str | os.PathLike, test_dir: str | os.PathLike,
                  noise_subdir: str = "datasets/noise", test_percent: float = 30.0,
                  keep: Callable[[Path], bool] | None = None) -> tuple[int, int]:
    """Noise clips split into train/test by file-name hash; `keep` filters clips (e.g. by category)."""
    base = Path(dns) / noise_subdir
    files = [p for p in _audio_files(base) if keep is None or keep(p)] if base.is_dir() else []
    if not files:
        raise InputError(f"no noise clips found under {noise_subdir}", str(dns))
    split: dict[bool, dict[str, str]] = {True: {}, False: {}}
    for path in files:
        utt = f"dnsnoise-{_safe(path.stem)}"
        split[in_test_split(utt, test_percent)][utt] = str(path.resolve())
    for is_test, out in ((False, Path(train_dir)), (True, Path(test_dir))):
        if not split[is_test]:
            raise InputError(f"noise {'test' if is_test else 'train'} split is empty ({len(files)} clips)", str(base))
        out.mkdir(parents=True, exist_ok=True)
        write_table(out / "wav.scp", split[is_test])
        write_table(out / "utt2spk", {u: u for u in split[is_test]})
        write_table(out / "spk2utt", {u: u for u in split[is_test]})
    return len(split[False]), len(split[True])
