"""Kaldi data directories: validate, fix, split, subset and combine them.

The rules live here once (the checks themselves in speechlib/data/rules.py); utils/*.sh are thin
wrappers, and recipes import these functions directly. Every output is written atomically: a
single file through atomic_open, a whole directory (a split, a subset, a combination) through
atomic_directory, so a killed command never leaves a half-written data dir that a re-run trusts.

Why no per-line Python loops: data dirs of millions of utterances are normal (LibriSpeech
960 h plus augmentation), so selections are NumPy index arrays and set operations, and tables
are filtered by position (after validation, every utterance-keyed table has exactly the keys of
utt2spk, in the same order).
"""
from __future__ import annotations

import contextlib
import gc
import operator
import os
import shutil
import warnings
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain, compress, islice, repeat
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from speechlib.data import rules
from speechlib.data.rules import RECO, SPK, SPK2UTT, UTT
from speechlib.io.atomic import atomic_directory, atomic_open
from speechlib.io.audio import AudioInfo, audio_info
from speechlib.io.errors import InputError
from speechlib.io.kaldi import Table, read_table

GENDERS = ("m", "f")


class DataDirWarning(UserWarning):
    """Something a data-dir command changed or dropped that the user should know about."""


def _warn(message: str) -> None:
    warnings.warn(message, DataDirWarning, stacklevel=3)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while millions of short-lived lists and tuples are made.

    Those objects die by reference counting; letting the collector rescan them repeatedly
    costs more than the work itself on million-line tables.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check_order(name: str) -> tuple[int, str]:
    """utt2spk first (everything is checked against it), then spk2utt, then by name."""
    return ({"utt2spk": 0, "spk2utt": 1}.get(name, 2), name)


class DataDir:
    """A Kaldi data dir: its table files, each read once, on first use.

    `table(name)` keeps the file order and line numbers, so rules can name the offending line.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise InputError("data dir does not exist (or is not a directory)", self.path)
        self._tables: dict[str, Table] = {}
        self.sample_rate: int | None = None  # set by validate_data_dir when audio was checked

    def __repr__(self) -> str:
        return f"DataDir({self.path!r})"

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def names(self) -> list[str]:
        """The table files present (wav.scp, utt2spk, utt2*, spk2*, reco2*, ...)."""
        with os.scandir(self.path) as entries:
            found = [entry.name for entry in entries
                     if entry.is_file() and rules.is_table_name(entry.name)]
        return sorted(found, key=_check_order)

    def has(self, name: str) -> bool:
        return os.path.isfile(self.file(name))

    @property
    def has_segments(self) -> bool:
        return self.has("segments")

    def kind(self, name: str) -> str:
        """utterance, speaker, recording (or spk2utt): what the keys of table `name` are."""
        return rules.table_kind(name, self.has_segments)

    def table(self, name: str) -> Table:
        if name not in self._tables:
            # An utterance may have an empty transcript (silence, noise-only recordings).
            self._tables[name] = read_table(self.file(name), allow_empty_value=(name == "text"))
        return self._tables[name]

    @property
    def utts(self) -> list[str]:
        return self.table("utt2spk").keys

    @property
    def speakers(self) -> list[str]:
        """Sorted unique speaker ids of utt2spk."""
        return sorted(set(self.table("utt2spk").values))

    def __len__(self) -> int:
        return len(self.utts)


def group_by_speaker(utts: Sequence[str], spks: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """spk2utt from utt2spk: sorted speakers, each with its utterances in utt2spk order."""
    utts, spks = list(utts), list(spks)
    counts = Counter(spks)
    speakers = sorted(counts)
    if all(map(operator.le, spks, islice(spks, 1, None))):
        ordered = utts  # the usual case: speaker-prefixed ids keep each speaker contiguous
    else:
        ordered = list(map(utts.__getitem__, sorted(range(len(spks)), key=spks.__getitem__)))
    bounds = np.cumsum([0] + [counts[speaker] for speaker in speakers]).tolist()
    return speakers, [ordered[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _take(seq: Sequence[str], index: np.ndarray) -> list[str]:
    return list(map(seq.__getitem__, index.tolist()))


def _write_pairs(path: str | os.PathLike, keys: Sequence[str], values: Sequence[str],
                 atomic: bool = True) -> None:
    """`<key> <value>` lines; `atomic=False` inside a directory that is itself swapped in."""
    lines = list(map(" ".join, zip(keys, values)))
    if "" in values:  # empty transcripts: no trailing blank
        lines = list(map(str.rstrip, lines))
    text = "\n".join(lines) + "\n" if lines else ""
    if atomic:
        with atomic_open(path) as handle:
            handle.write(text)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


# --------------------------------------------------------------------------------------------
# validate

_HEADER_CACHE: dict[tuple[str, int, int], AudioInfo] = {}


def _file_header(path: str) -> AudioInfo:
    """Audio header of a file, cached per (path, mtime, size): re-validation reads no audio."""
    try:
        stat = os.stat(path)
    except OSError:
        raise InputError(f"audio file does not exist: {path}") from None
    key = (path, stat.st_mtime_ns, stat.st_size)
    info = _HEADER_CACHE.get(key)
    if info is None:
        try:
            info = audio_info(path)
        except InputError as err:
            raise InputError(err.message) from None
        _HEADER_CACHE[key] = info
    return info


# What Kaldi's readers and ours decode sample-exactly; mp3/ogg belong behind a `ffmpeg ... |` pipe.
DATA_DIR_FORMATS = ("WAV", "WAVEX", "RF64", "FLAC")


def _audio_problem(info: AudioInfo, multichannel: bool) -> str | None:
    if info.format not in DATA_DIR_FORMATS:
        return (f"is {info.format}, not WAV/FLAC (decode it in a pipe: "
                f"'ffmpeg -v error -i FILE -f wav - |')")
    if info.frames == 0:
        return "holds no audio (0 samples)"
    if info.channels != 1 and not multichannel:
        return (f"has {info.channels} channels; a data dir holds mono recordings (pick one in a "
                f"pipe: 'sox FILE -t wav - remix 1 |', or validate with --multichannel)")
    return None


def _check_audio(wav: Table, run_pipes: bool, multichannel: bool = False) -> dict[str, AudioInfo]:
    """Referenced files exist, headers are readable and complete, WAV/FLAC, not empty, mono
    (unless `multichannel`), one sample rate; pipes run only on request."""
    pipes = list(map(str.endswith, wav.values, repeat("|")))
    checked = range(len(pipes)) if run_pipes else compress(range(len(pipes)), map(operator.not_, pipes))
    infos: dict[str, AudioInfo] = {}
    first: tuple[int, int] | None = None  # (rate, index)
    for index in checked:
        key, spec, pipe = wav.keys[index], wav.values[index], pipes[index]
        try:
            info = audio_info(spec) if pipe else _file_header(spec)
        except InputError as err:
            raise InputError(f"'{key}': {err.message}", wav.path, wav.line_of(index)) from None
        problem = _audio_problem(info, multichannel)
        if problem:
            raise InputError(f"'{key}': {spec.rstrip()} {problem}", wav.path, wav.line_of(index))
        if first is None:
            first = (info.sample_rate, index)
        elif info.sample_rate != first[0]:
            raise InputError(f"sample rate {info.sample_rate} Hz of '{key}' differs from {first[0]} Hz "
                             f"of '{wav.keys[first[1]]}' (line {first[1] + 1}); one sample rate per "
                             f"data dir", wav.path, wav.line_of(index))
        infos[key] = info
    return infos


@_gc_paused()
def validate_data_dir(path: str | os.PathLike, check_audio: bool = True, require_text: bool = True,
                      check_feats: bool = True, require_wav: bool = True,
                      run_pipes: bool = False, multichannel: bool = False) -> DataDir:
    """Check every rule of a Kaldi data dir; the first broken one raises an InputError.

    Returns the DataDir with its tables loaded (split/subset reuse them).
    `require_text`: text must exist (Kaldi's --no-text turns this off).
    `check_feats`: feats.scp, when present, is checked like any utterance-keyed table. Unlike
    Kaldi, feats.scp is never required: our recipes compute features on the fly.
    `require_wav`: wav.scp must exist unless feats.scp does.
    `check_audio`: wav.scp files exist, their headers are readable, complete (no truncated WAV),
    WAV or FLAC, not empty, mono (unless `multichannel`) and share one sample rate, and segments
    end inside their recording. `run_pipes` also runs `command |` entries.
    """
    dd = DataDir(path)
    names = dd.names()
    if not check_feats and "feats.scp" in names:
        names.remove("feats.scp")
    required = ["utt2spk", "spk2utt"] + (["text"] if require_text else [])
    if require_wav and "feats.scp" not in names:
        required.append("wav.scp")
    for name in required:
        if name not in names:
            raise InputError(f"file does not exist (a data dir needs {', '.join(required)})",
                             dd.file(name))
    for name in names:
        rules.check_sorted_unique(dd.table(name))

    utt2spk = dd.table("utt2spk")
    if not utt2spk.keys:
        raise InputError("no utterances (the file is empty)", utt2spk.path)
    rules.check_single_tokens(utt2spk, "speaker id")
    rules.check_speaker_prefix(utt2spk)
    speakers, groups = group_by_speaker(utt2spk.keys, utt2spk.values)
    _check_spk2utt(dd.table("spk2utt"), speakers, groups, utt2spk)

    has_segments = "segments" in names
    fields = rules.split_fields(dd.table("segments"), 3, "<recording> <start> <end>") if has_segments else []
    for name in names:
        kind = dd.kind(name)
        table = dd.table(name)
        if kind == UTT and name != "utt2spk":
            rules.check_same_keys(table, utt2spk.keys, "utterance", rules.UTT_COVER_RULE, "utt2spk",
                                  lambda key: utt2spk.keys.index(key) + 1)
        elif kind == SPK:
            rules.check_same_keys(table, speakers, "speaker", rules.SPK_COVER_RULE, "utt2spk",
                                  lambda key: utt2spk.values.index(key) + 1)
    if has_segments:
        _check_recordings(dd, names, fields)

    for name in ("utt2dur", "reco2dur"):
        if name in names:
            table = dd.table(name)
            rules.check_single_tokens(table, "duration")
            rules.check_positive(table, rules.parse_floats(table, table.values, "duration"), "duration")
    if "spk2gender" in names:
        rules.check_choice(dd.table("spk2gender"), GENDERS, "gender")

    durations: dict[str, float] = {}
    source = ""
    if has_segments and "reco2dur" in names:
        reco2dur = dd.table("reco2dur")
        durations, source = dict(zip(reco2dur.keys, map(float, reco2dur.values))), "reco2dur"
    if check_audio and "wav.scp" in names:
        infos = _check_audio(dd.table("wav.scp"), run_pipes, multichannel)
        if infos:
            dd.sample_rate = next(iter(infos.values())).sample_rate
        if has_segments and not durations:
            durations = {key: info.duration for key, info in infos.items()}
            source = "the audio header"
    if has_segments:
        rules.check_segments(dd.table("segments"), fields, durations, source)
    return dd


def _check_spk2utt(spk2utt: Table, speakers: list[str], groups: list[list[str]], utt2spk: Table) -> None:
    """spk2utt is exactly utt2spk grouped by speaker (Kaldi compares the regenerated file)."""
    rule = "spk2utt must be utt2spk grouped by speaker (fix_data_dir.sh regenerates it)"
    rules.check_same_keys(spk2utt, speakers, "speaker", rule, "utt2spk",
                          lambda key: utt2spk.values.index(key) + 1)
    expected = list(map(" ".join, groups))
    actual = list(map(" ".join, map(str.split, spk2utt.values)))
    if expected == actual:
        return
    index = list(map(operator.eq, expected, actual)).index(False)
    want, got = groups[index], spk2utt.values[index].split()
    pos = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
    if pos < len(want) and pos < len(got):
        detail = f"lists '{got[pos]}' where utt2spk gives '{want[pos]}'"
    elif pos < len(want):
        detail = f"lacks utterance '{want[pos]}'"
    else:
        detail = f"lists '{got[pos]}', which utt2spk does not give to this speaker"
    raise InputError(f"speaker '{speakers[index]}' {detail}; {rule}", spk2utt.path,
                     spk2utt.line_of(index))


def _check_recordings(dd: DataDir, names: list[str], fields: list[list[str]]) -> None:
    """Segments name recordings of wav.scp; reco2* tables cover exactly wav.scp's recordings."""
    segments = dd.table("segments")
    recos = [row[0] for row in fields]
    if "wav.scp" in names:
        wav = dd.table("wav.scp")
        known = set(wav.keys)
        present = list(map(known.__contains__, recos))
        if not all(present):
            index = present.index(False)
            raise InputError(f"recording '{recos[index]}' of segment '{segments.keys[index]}' is not "
                             f"in wav.scp", segments.path, segments.line_of(index))
        reference, source, locate = wav.keys, "wav.scp", lambda key: wav.keys.index(key) + 1
    else:
        reference, source, locate = sorted(set(recos)), "segments", lambda key: recos.index(key) + 1
    for name in names:
        if name != "wav.scp" and dd.kind(name) == RECO:
            rules.check_same_keys(dd.table(name), reference, "recording", rules.RECO_COVER_RULE, source,
                                  locate)


# --------------------------------------------------------------------------------------------
# fix

@dataclass
class FixReport:
    """What fix_data_dir kept and why it dropped the rest."""

    kept: int
    total: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> utterances (may overlap)
    changed: list[str] = field(default_factory=list)       # files rewritten
    backup: str | None = None

    def summary(self) -> str:
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.dropped.items())
        return (f"kept {self.kept} of {self.total} utterances "
                f"(dropped {self.total - self.kept}{': ' + reasons if reasons else ''})")


def _sorted_unique(table: Table) -> tuple[list[str], list[str]]:
    """The table's (keys, values) sorted, keeping the first line of a repeated key, as Kaldi does.

    The usual case, an already sorted table, costs one pass and no dict.
    """
    keys, values = table.keys, table.values
    if rules.first_not_increasing(keys) is None:
        return keys, values
    if all(map(operator.le, keys, islice(keys, 1, None))):  # sorted, repeats side by side
        flags = [True] + list(map(operator.ne, islice(keys, 1, None), keys))
        first_keys, first_values = list(compress(keys, flags)), list(compress(values, flags))
    else:
        entries = dict(zip(reversed(keys), reversed(values)))
        first_keys = sorted(entries)
        first_values = list(map(entries.__getitem__, first_keys))
    if len(first_keys) != len(keys):
        seen: set[str] = set()
        index = next(i for i, key in enumerate(keys) if key in seen or seen.add(key))
        _warn(f"{table.path}: {len(keys) - len(first_keys)} duplicate keys, kept the first of each "
              f"(first repeat '{keys[index]}' on line {index + 1})")
    return first_keys, first_values


def _restrict(keys: list[str], values: list[str], wanted: set[str],
              flags: list[bool] | None = None) -> tuple[list[str], list[str]]:
    """The entries whose key is in `wanted` (order kept); `flags`: that test, already made."""
    flags = list(map(wanted.__contains__, keys)) if flags is None else flags
    if all(flags):
        return keys, values
    return list(compress(keys, flags)), list(compress(values, flags))


def _preserve(source: str, backup: Path, link: bool) -> None:
    """Back up a file: a hard link when the file is about to be replaced by a rename (instant,
    and the link keeps the old content), else a copy, which later in-place edits cannot touch."""
    if link:
        try:
            os.link(source, backup)
            return
        except OSError:
            pass  # a filesystem without hard links
    shutil.copy2(source, backup)


def _new_backup(directory: str) -> str:
    """DIR/.backup for the first fix that changes anything, then .backup.2, .backup.3, ...:
    a fix never replaces an earlier backup, so the first one always holds the originals."""
    candidate, number = os.path.join(directory, ".backup"), 1
    while os.path.lexists(candidate):
        number += 1
        candidate = os.path.join(directory, f".backup.{number}")
    return candidate


def fix_data_dir(path: str | os.PathLike) -> FixReport:
    """Keep the utterances present in every table, drop what they no longer use, sort, dedupe.

    Utterances survive if every utterance-keyed table has them, their speaker is in every
    speaker-keyed table (spk2gender, ...) and, with segments, their recording is in wav.scp and
    every reco2* table. spk2utt is regenerated from utt2spk. Only changed files are rewritten
    (so split dirs stay current), after all originals are copied to a new backup directory
    (DIR/.backup, then DIR/.backup.2, ...: earlier backups are never replaced).
    """
    dd = DataDir(path)
    names = dd.names()
    if "utt2spk" not in names:
        raise InputError("file does not exist (fix_data_dir needs utt2spk)", dd.file("utt2spk"))
    rules.check_single_tokens(dd.table("utt2spk"), "speaker id")
    with _gc_paused():
        columns = {name: _sorted_unique(dd.table(name)) for name in names if name != "spk2utt"}
        has_segments = "segments" in columns
        utts, spks = columns["utt2spk"]
        every = set(utts)
        keep = set(every)
        dropped: dict[str, int] = {}

        def require(reason: str, keys: list[str], passing: Iterable[str]) -> None:
            if keys is utts or keys == utts:
                return  # the same utterances: nothing to drop
            passing = set(passing)
            missing = len(every - passing)
            if missing:
                dropped[reason] = missing
                keep.intersection_update(passing)

        seg_utts: list[str] = []
        seg_recos: list[str] = []
        if has_segments:
            seg_utts, seg_values = columns["segments"]
            seg_recos = [value.split(None, 1)[0] for value in seg_values]
        for name, (keys, _) in columns.items():
            kind = rules.table_kind(name, has_segments)
            if kind == UTT and name != "utt2spk":
                require(f"not in {name}", keys, keys)
            elif kind == SPK:
                known = set(keys)
                require(f"speaker not in {name}", [], compress(utts, map(known.__contains__, spks)))
            elif kind == RECO:
                known = set(keys)
                require(f"recording not in {name}", [],
                        compress(seg_utts, map(known.__contains__, seg_recos)))
        if not keep:
            reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.items())
            raise InputError(f"no utterance is present in every file ({reasons}); nothing left to "
                             f"keep", dd.path)
        utt_flags = list(map(keep.__contains__, utts))
        kept_utts, kept_spks = _restrict(utts, spks, keep, utt_flags)
        wanted = {UTT: keep, SPK: set(kept_spks)}
        if has_segments:
            wanted[RECO] = set(_restrict(seg_utts, seg_recos, keep)[1])
        new = {}
        for name, (keys, values) in columns.items():
            kind = rules.table_kind(name, has_segments)
            same = kind == UTT and (keys is utts or keys == utts)  # most utterance tables
            new[name] = _restrict(keys, values, wanted[kind], utt_flags if same else None)
        speakers, groups = group_by_speaker(kept_utts, kept_spks)
        new["spk2utt"] = (speakers, list(map(" ".join, groups)))
        changed = [name for name, (keys, values) in new.items()
                   if name not in names or dd.table(name).keys != keys or dd.table(name).values != values]
    report = FixReport(len(kept_utts), len(every), dropped, sorted(changed, key=_check_order))
    if changed:
        report.backup = _new_backup(str(dd.path))
        with atomic_directory(report.backup) as tmp:
            for name in names:
                _preserve(dd.file(name), tmp / name, link=name in changed)
        for name in report.changed:
            _write_pairs(dd.file(name), *new[name])
    return report


# --------------------------------------------------------------------------------------------
# selections: split, subset, combine

class _Index:
    """Per-utterance speaker and recording positions of a validated dir, as NumPy arrays."""

    def __init__(self, dd: DataDir):
        self.dd = dd
        self.names = dd.names()
        utt2spk = dd.table("utt2spk")
        self.speakers = sorted(set(utt2spk.values))
        position = {speaker: i for i, speaker in enumerate(self.speakers)}
        self.spk_idx = np.fromiter(map(position.__getitem__, utt2spk.values), dtype=np.int64,
                                   count=len(utt2spk.values))
        self.reco_idx: np.ndarray | None = None
        if "segments" in self.names:
            segments = dd.table("segments")
            recos = [value.split(None, 1)[0] for value in segments.values]
            reco_keys = dd.table("wav.scp").keys if "wav.scp" in self.names else sorted(set(recos))
            position = {reco: i for i, reco in enumerate(reco_keys)}
            self.reco_idx = np.fromiter(map(position.__getitem__, recos), dtype=np.int64,
                                        count=len(recos))

    def write(self, selection: np.ndarray, dest: Path) -> None:
        """Write the utterances at sorted positions `selection`, every table filtered alike."""
        dd = self.dd
        dest.mkdir(parents=True, exist_ok=True)
        chosen = {UTT: selection, SPK: np.unique(self.spk_idx[selection])}
        if self.reco_idx is not None:
            chosen[RECO] = np.unique(self.reco_idx[selection])
        for name in self.names:
            kind = dd.kind(name)
            if kind != SPK2UTT:
                table = dd.table(name)
                _write_pairs(dest / name, _take(table.keys, chosen[kind]),
                             _take(table.values, chosen[kind]), atomic=False)
        utt2spk = dd.table("utt2spk")
        speakers, groups = group_by_speaker(_take(utt2spk.keys, selection), _take(utt2spk.values, selection))
        _write_pairs(dest / "spk2utt", speakers, list(map(" ".join, groups)), atomic=False)


def speaker_chunks(counts: Sequence[int], parts: int) -> np.ndarray:
    """Boundaries (len parts+1) of contiguous speaker chunks with near-equal utterance totals.

    Each boundary is the speaker boundary nearest to k/parts of all utterances, then nudged so
    that every chunk keeps at least one speaker.
    """
    counts = np.asarray(counts, dtype=np.int64)
    speakers = len(counts)
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    targets = cumulative[-1] * np.arange(1, parts) / parts
    above = np.clip(np.searchsorted(cumulative, targets), 1, speakers)
    below = above - 1
    nearest = np.where(cumulative[above] - targets < targets - cumulative[below], above, below)
    # b_k - k must be non-decreasing and within [0, speakers - parts] for non-empty chunks.
    offset = np.arange(1, parts)
    shifted = np.maximum.accumulate(np.clip(nearest - offset, 0, speakers - parts)) if parts > 1 else offset
    return np.concatenate([[0], shifted + offset, [speakers]]).astype(np.int64)


def _split_is_current(source: Path, split_dir: Path, parts: int) -> bool:
    """Kaldi's rule: reuse a split whose files are all newer than every source table."""
    names = DataDir(source).names()
    try:
        newest = max(os.stat(source / name).st_mtime_ns for name in names)
        oldest = min(os.stat(split_dir / str(j) / name).st_mtime_ns
                     for j in range(1, parts + 1) for name in names)
        if any(sorted(DataDir(split_dir / str(j)).names()) != sorted(names) for j in range(1, parts + 1)):
            return False
    except (OSError, ValueError, InputError):
        return False
    return oldest > newest


@_gc_paused()
def split_data_dir(path: str | os.PathLike, parts: int, per_utt: bool = False) -> Path:
    """Write DIR/split{N}/{1..N} (DIR/split{N}utt with `per_utt`), each a valid data dir.

    By speaker (the default, so per-speaker CMVN and adaptation see all of a speaker):
    contiguous speaker chunks balanced by utterance count; more parts than speakers is an error.
    A split newer than every source table is reused.
    """
    source = Path(path)
    if parts < 1:
        raise InputError(f"number of parts must be at least 1, got {parts}")
    split_dir = source / f"split{parts}{'utt' if per_utt else ''}"
    if _split_is_current(source, split_dir, parts):
        return split_dir
    dd = validate_data_dir(source, check_audio=False, require_text=False, require_wav=False)
    index = _Index(dd)
    total = len(dd)
    if per_utt:
        if parts > total:
            raise InputError(f"cannot split {total} utterances into {parts} parts", dd.file("utt2spk"))
        bounds = (np.arange(parts + 1) * total) // parts
        selections = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    else:
        if parts > len(index.speakers):
            raise InputError(f"cannot split {len(index.speakers)} speakers into {parts} parts "
                             f"(split by utterance with --per-utt)", dd.file("spk2utt"))
        bounds = speaker_chunks(np.bincount(index.spk_idx, minlength=len(index.speakers)), parts)
        if np.all(np.diff(index.spk_idx) >= 0):  # speakers contiguous: chunks are utterance ranges
            edges = np.searchsorted(index.spk_idx, bounds)
            selections = [np.arange(a, b) for a, b in zip(edges[:-1], edges[1:])]
        else:
            selections = [np.flatnonzero((index.spk_idx >= a) & (index.spk_idx < b))
                          for a, b in zip(bounds[:-1], bounds[1:])]
    with atomic_directory(split_dir) as tmp:
        for j, selection in enumerate(selections, 1):
            index.write(selection, tmp / str(j))
    return split_dir


def _read_id_list(path: str | os.PathLike) -> list[str]:
    """First token of each line: a plain id list, or any table keyed by the ids."""
    return read_table(path, allow_empty_value=True).keys


@_gc_paused()
def subset_data_dir(path: str | os.PathLike, dest: str | os.PathLike, *, num: int | None = None,
                    first: int | None = None, last: int | None = None,
                    utt_list: str | os.PathLike | None = None, spk_list: str | os.PathLike | None = None,
                    per_spk: int | None = None) -> int:
    """Write a subset of DIR to DEST (replaced as a whole); returns the number of utterances.

    Exactly one of: `num` evenly spaced utterances (a spread over all speakers), the `first` or
    `last` utterances, those in `utt_list`, those of the speakers in `spk_list`, or up to
    `per_spk` evenly spaced utterances of each speaker.
    """
    chosen = [name for name, value in (("num", num), ("first", first), ("last", last),
                                       ("utt_list", utt_list), ("spk_list", spk_list),
                                       ("per_spk", per_spk)) if value is not None]
    if len(chosen) != 1:
        raise InputError(f"choose exactly one selection (num, first, last, utt_list, spk_list, "
                         f"per_spk), got {', '.join(chosen) or 'none'}")
    if os.path.exists(dest) and os.path.samefile(path, dest):
        raise InputError("the subset must go to another directory than its source", os.fspath(dest))
    dd = validate_data_dir(path, check_audio=False, require_text=False, require_wav=False)
    index = _Index(dd)
    total = len(dd)
    count = {"num": num, "first": first, "last": last, "per_spk": per_spk}.get(chosen[0])
    if count is not None and count < 1:
        raise InputError(f"the number of utterances must be at least 1, got {count}")
    if count is not None and chosen[0] != "per_spk" and count > total:
        raise InputError(f"asked for {count} utterances, but the dir has only {total}", dd.file("utt2spk"))
    if num is not None:
        selection = (np.arange(num) * total) // num
    elif first is not None:
        selection = np.arange(first)
    elif last is not None:
        selection = np.arange(total - last, total)
    elif per_spk is not None:
        order = np.argsort(index.spk_idx, kind="stable")
        starts = np.searchsorted(index.spk_idx[order], np.arange(len(index.speakers) + 1))
        picks = [order[a + (np.arange(min(per_spk, b - a)) * (b - a)) // min(per_spk, b - a)]
                 for a, b in zip(starts[:-1], starts[1:])]
        selection = np.sort(np.concatenate(picks))
    else:
        keys, wanted_path, ids = ((dd.utts, utt_list, "utterances") if utt_list is not None
                                  else (index.speakers, spk_list, "speakers"))
        wanted = set(_read_id_list(wanted_path))
        known = wanted.intersection(keys)
        if not known:
            raise InputError(f"none of the {len(wanted)} {ids} listed is in {dd.path}", os.fspath(wanted_path))
        if len(known) < len(wanted):
            _warn(f"{os.fspath(wanted_path)}: {len(wanted) - len(known)} of {len(wanted)} {ids} listed "
                  f"are not in {dd.path}; ignored")
        if utt_list is not None:
            selection = np.flatnonzero(np.fromiter(map(known.__contains__, dd.utts), dtype=bool, count=total))
        else:
            spk_ok = np.fromiter(map(known.__contains__, index.speakers), dtype=bool,
                                 count=len(index.speakers))
            selection = np.flatnonzero(spk_ok[index.spk_idx])
    with atomic_directory(dest) as tmp:
        index.write(selection, tmp)
    return len(selection)


@_gc_paused()
def combine_data_dirs(dest: str | os.PathLike, sources: Sequence[str | os.PathLike],
                      extra_files: Iterable[str] = ()) -> int:
    """Write the union of the source dirs to DEST (replaced as a whole); returns utterances.

    Utterance ids must be unique across sources; a speaker or recording in several sources must
    carry the same value in each. Tables in every source are combined, the others dropped with
    a warning, except `extra_files` (must be in every source) and segments: mixing segmented and
    unsegmented dirs is an error, as wav.scp would then mix recording and utterance ids.
    """
    if not sources:
        raise InputError("no source data dirs to combine")
    dirs = [validate_data_dir(source, check_audio=False, require_text=False, require_wav=False)
            for source in sources]
    name_sets = [set(d.names()) for d in dirs]
    common = set.intersection(*name_sets)
    with_segments = ["segments" in names for names in name_sets]
    if any(with_segments) and not all(with_segments):
        there, missing = dirs[with_segments.index(True)], dirs[with_segments.index(False)]
        raise InputError(f"no segments file, but {there.file('segments')} exists: cannot combine dirs "
                         f"with and without segments (write segments covering whole recordings first)",
                         missing.path)
    for name in extra_files:
        for d, names in zip(dirs, name_sets):
            if name not in names:
                raise InputError("file does not exist (asked for with --extra-files)", d.file(name))
    for name in sorted(set.union(*name_sets) - common, key=_check_order):
        lacking = ", ".join(d.path for d, names in zip(dirs, name_sets) if name not in names)
        _warn(f"{name} is not in every source (missing from {lacking}); not combined")

    utts = list(chain.from_iterable(d.utts for d in dirs))
    if len(set(utts)) != len(utts):
        first_seen: dict[str, tuple[int, int]] = {}
        for j, d in enumerate(dirs):
            for line, utt in enumerate(d.utts, 1):
                if utt in first_seen:
                    other, other_line = first_seen[utt]
                    raise InputError(f"utterance '{utt}' is also in {dirs[other].file('utt2spk')} "
                                     f"(line {other_line}); utterance ids must be unique across the "
                                     f"combined dirs", d.file("utt2spk"), line)
                first_seen[utt] = (j, line)
    order = np.array(sorted(range(len(utts)), key=utts.__getitem__), dtype=np.int64)
    has_segments = all(with_segments)
    tables: dict[str, tuple[list[str], list[str]]] = {}
    for name in sorted(common - {"spk2utt"}, key=_check_order):
        keys = list(chain.from_iterable(d.table(name).keys for d in dirs))
        values = list(chain.from_iterable(d.table(name).values for d in dirs))
        if rules.table_kind(name, has_segments) == UTT:
            tables[name] = (_take(keys, order), _take(values, order))
        else:
            tables[name] = _merge_shared(name, dirs, dict(zip(keys, values)), len(keys))
    speakers, groups = group_by_speaker(*tables["utt2spk"])
    tables["spk2utt"] = (speakers, list(map(" ".join, groups)))
    with atomic_directory(dest) as tmp:
        for name, (keys, values) in tables.items():
            _write_pairs(tmp / name, keys, values, atomic=False)
    return len(utts)


def _merge_shared(name: str, dirs: list[DataDir], merged: dict[str, str],
                  total: int) -> tuple[list[str], list[str]]:
    """A speaker or recording table: the same key in two sources must carry the same value."""
    if len(merged) != total:
        seen: dict[str, tuple[str, str]] = {}
        for d in dirs:
            table = d.table(name)
            for index, (key, value) in enumerate(zip(table.keys, table.values)):
                if key in seen and seen[key][0] != value:
                    raise InputError(f"'{key}' is '{value}' here but '{seen[key][0]}' in {seen[key][1]}; "
                                     f"a key shared by combined dirs must have one value",
                                     table.path, table.line_of(index))
                seen.setdefault(key, (value, table.path))
    keys = sorted(merged)
    return keys, list(map(merged.__getitem__, keys))
