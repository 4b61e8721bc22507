"""DNS-Challenge (Reddy et al., 2020-2022) clean speech per language and noise -> Kaldi data dirs.

Real layouts differ between challenge editions, so the sub-directories are parameters:
`<DNS>/<clean_subdir>/<language dir>/**/*.{wav,flac}` (e.g. datasets/clean/french_data in
DNS 2021, datasets_fullband/clean_fullband/french_speech in DNS 2022) and
`<DNS>/<noise_subdir>/**/*.wav`. A language maps to one directory name or to a list of
candidate names (the first that exists is used), so one config serves several layouts; a
language the corpus does not have is left out with a warning (an error if none is there).

Speech is split by reader, never by file: the readers of each language are ordered by a hash of
their id and the first `test_percent` of them form the test set, so no reader (and no book
chapter) is both trained on and tested. The reader of a file comes from `speaker_pattern`, a
regular expression on the file stem whose first matching group is the reader id (real DNS files
are named `..._reader_<id>_...`; the mini corpus names them `<speaker>-<lang>_...`, and its
English `<speaker>_<name>`). Utterances are
`<lang>-<reader>-<file stem>` (speaker-prefixed, as Kaldi sorts them), the speaker is
`<lang>-<reader>`, utt2lang is written.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

from speechlib.data.writer import write_data_dir
from speechlib.io.errors import InputError
from speechlib.io.kaldi import write_table

AUDIO_SUFFIXES = (".wav", ".flac")
Entry = tuple[str, str, str]  # (lang, reader, path)


def _audio_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def _safe(stem: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in stem)


def _bucket(key: str) -> int:
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % 1000


def in_test_split(key: str, test_percent: float) -> bool:
    """A stable, order-free train/test assignment from a hash of the key."""
    return _bucket(key) < 10 * test_percent


def language_dir(base: Path, names: str | Sequence[str]) -> Path:
    """The first existing directory among a language's candidate names."""
    candidates = [names] if isinstance(names, str) else list(names)
    for name in candidates:
        if (base / name).is_dir():
            return base / name
    raise InputError(f"no directory for this language (tried {', '.join(candidates)})", str(base))


def _has_dir(base: Path, names: str | Sequence[str]) -> bool:
    return any((base / name).is_dir() for name in ([names] if isinstance(names, str) else names))


def reader_of(stem: str, pattern: str) -> str:
    """The first group of `pattern` that matched (alternatives serve several layouts at once)."""
    match = re.search(pattern, stem)
    group = next((g for g in match.groups() if g), None) if match else None
    if group is None:
        raise InputError(f"file name does not match speaker_pattern '{pattern}' (cannot tell its reader)", stem)
    return group


def clean_speech(dns: str | os.PathLike, languages: Mapping[str, str | Sequence[str]],
                 clean_subdir: str = "datasets/clean", speaker_pattern: str = r"reader_(\d+)") -> dict[str, Entry]:
    """{utt: (lang, reader, path)} for the languages {code: directory name(s)} asked for."""
    base = Path(dns) / clean_subdir
    if not base.is_dir():
        raise InputError(f"no DNS clean-speech directory {clean_subdir}", str(dns))
    found: dict[str, Entry] = {}
    present = {lang: names for lang, names in languages.items() if _has_dir(base, names)}
    if not present:
        raise InputError(f"no directory for any language asked for ({', '.join(languages)})", str(base))
    for lang in sorted(set(languages) - set(present)):
        warnings.warn(f"DNS language '{lang}' is not in this corpus ({base}): left out", stacklevel=2)
    for lang, names in present.items():
        files = _audio_files(language_dir(base, names))
        if not files:
            raise InputError(f"no audio for language '{lang}' (expected **/*.wav or .flac)", str(base))
        for path in files:
            reader = _safe(reader_of(path.stem, speaker_pattern))
            found[f"{lang}-{reader}-{_safe(path.stem)}"] = (lang, reader, str(path.resolve()))
    return found


def split_by_reader(entries: Mapping[str, Entry], test_percent: float,
                    valid_percent: float = 0.0) -> tuple[dict, dict, dict]:
    """(train, valid, test) entries: readers split per language (test), then the training
    readers' utterances split by hash (valid: same readers, other utterances)."""
    readers: dict[str, set[str]] = {}
    for lang, reader, _ in entries.values():
        readers.setdefault(lang, set()).add(reader)
    test_readers: set[tuple[str, str]] = set()
    for lang, names in sorted(readers.items()):
        if len(names) < 2:
            warnings.warn(f"DNS language '{lang}' has a single reader: it is used for training only", stacklevel=2)
            continue
        order = sorted(names, key=lambda r: (_bucket(f"{lang}/{r}"), r))
        count = min(len(order) - 1, max(1, round(len(order) * test_percent / 100)))
        test_readers.update((lang, r) for r in order[:count])
    train, valid, test = {}, {}, {}
    for utt, entry in entries.items():
        if entry[:2] in test_readers:
            test[utt] = entry
        elif in_test_split(utt, valid_percent):
            valid[utt] = entry
        else:
            train[utt] = entry
    if valid_percent > 0 and not valid and len(train) > 1:  # a tiny corpus still gets one
        first = min(train, key=lambda u: (_bucket(u), u))
        valid[first] = train.pop(first)
    return train, valid, test


def write_speech_dir(entries: Mapping[str, Entry], data_dir: str | os.PathLike) -> int:
    """wav.scp, utt2spk (speaker = <lang>-<reader>), spk2utt, utt2lang."""
    if not entries:
        raise InputError("no utterances to write", str(data_dir))
    utt2spk = {utt: f"{lang}-{reader}" for utt, (lang, reader, _) in entries.items()}
    write_data_dir(data_dir, utt2spk, {"wav.scp": {u: e[2] for u, e in entries.items()},
                                       "utt2lang": {u: e[0] for u, e in entries.items()}})
    return len(entries)


def prepare_speech(dns: str | os.PathLike, languages: Mapping[str, str | Sequence[str]],
                   train_dir: str | os.PathLike, test_dir: str | os.PathLike, test_percent: float = 30.0,
                   clean_subdir: str = "datasets/clean", speaker_pattern: str = r"reader_(\d+)",
                   valid_dir: str | os.PathLike | None = None, valid_percent: float = 0.0) -> tuple[int, ...]:
    """Reader-disjoint train/test data dirs (and a valid dir of held-out training utterances)."""
    entries = clean_speech(dns, languages, clean_subdir, speaker_pattern)
    train, valid, test = split_by_reader(entries, test_percent, valid_percent if valid_dir else 0.0)
    if not train or not test:
        raise InputError(f"too few readers to split ({len(entries)} files): train {len(train)}, "
                         f"test {len(test)}", str(dns))
    counts = [write_speech_dir(train, train_dir), write_speech_dir(test, test_dir)]
    if valid_dir is not None:
        counts.append(write_speech_dir(valid, valid_dir))
    return tuple(counts)


def write_noise_dirs(clips: Mapping[str, str], outputs: Mapping[str, str | os.PathLike | None],
                     percents: Mapping[str, float]) -> dict[str, int]:
    """Split noise clips {id: path} by a hash of the id into the data dirs `outputs`
    ({"train": dir, "valid": dir or None, "test": dir}); `percents` gives valid/test shares."""
    split: dict[str, dict[str, str]] = {name: {} for name in outputs}
    test_cut, valid_cut = 10 * percents.get("test", 0.0), 10 * (percents.get("test", 0.0) + percents.get("valid", 0.0))
    for clip, path in clips.items():
        bucket = _bucket(clip)
        name = "test" if bucket < test_cut else "valid" if bucket < valid_cut and outputs.get("valid") else "train"
        split[name][clip] = path
    for name, out in outputs.items():
        if out is None:
            continue
        if not split[name]:
            raise InputError(f"noise {name} split is empty ({len(clips)} clips)", str(out))
        Path(out).mkdir(parents=True, exist_ok=True)
        write_table(Path(out) / "wav.scp", split[name])
        write_table(Path(out) / "utt2spk", {u: u for u in split[name]})
        write_table(Path(out) / "spk2utt", {u: u for u in split[name]})
    return {name: len(split[name]) for name in outputs if outputs[name] is not None}


def prepare_noise(dns: str | os.PathLike, train_dir: str | os.PathLike, test_dir: str | os.PathLike,
                  noise_subdir: str = "datasets/noise", test_percent: float = 30.0,
                  keep: Callable[[Path], bool] | None = None) -> tuple[int, int]:
    """Noise clips split into train/test by file-name hash; `keep` filters clips (e.g. by category)."""
    base = Path(dns) / noise_subdir
    files = [p for p in _audio_files(base) if keep is None or keep(p)] if base.is_dir() else []
    if not files:
        raise InputError(f"no noise clips found under {noise_subdir}", str(dns))
    clips = {f"dnsnoise-{_safe(path.stem)}": str(path.resolve()) for path in files}
    counts = write_noise_dirs(clips, {"train": train_dir, "test": test_dir}, {"test": test_percent})
    return counts["train"], counts["test"]
