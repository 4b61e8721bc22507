"""LibriSpeech subset -> Kaldi data dir.

The same code reads the real corpus and the mini corpus's LibriSpeech tree, so a recipe's data
prep is exercised by the demo. wav.scp lists the .flac paths directly: soundfile reads FLAC,
so no `flac -c -d -s ... |` pipe (and no process per utterance) is needed.

Usage: python -m speechlib.data.librispeech <LibriSpeech/subset dir> <data dir>
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table

_UTT = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def read_speakers(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """SPEAKERS.TXT: `ID | SEX | SUBSET | MINUTES | NAME`, comments start with ';'.

    Returns {speaker id: {"gender": "m"|"f", "subset": ..., "name": ...}}.
    """
    path = os.fspath(path)
    result: dict[str, dict[str, str]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("SPEAKERS.TXT not found (expected beside the subset directories)", path) from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 4:
            raise InputError(f"expected 'ID | SEX | SUBSET | MINUTES | NAME', got {line!r}", path, number)
        spk, sex, subset = fields[0], fields[1].lower(), fields[2]
        if not spk.isdigit():
            raise InputError(f"speaker id {spk!r} is not a number", path, number)
        if sex not in ("m", "f"):
            raise InputError(f"sex must be M or F, got {fields[1]!r}", path, number)
        if spk in result:
            raise InputError(f"speaker {spk} listed twice", path, number)
        result[spk] = {"gender": sex, "subset": subset, "name": "|".join(fields[4:]).strip()}
    return result


def read_transcripts(path: str | os.PathLike, spk: str, chapter: str) -> dict[str, str]:
    """`<spk>-<chapter>.trans.txt`: `<spk>-<chapter>-<n> WORDS ...` per line."""
    path = os.fspath(path)
    result: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            parts = line.split(maxsplit=1)
            if not parts:
                raise InputError("empty line", path, number)
            match = _UTT.match(parts[0])
            if not match:
                raise InputError(f"utterance id {parts[0]!r} is not <speaker>-<chapter>-<number>", path, number)
            if (match[1], match[2]) != (spk, chapter):
                raise InputError(f"utterance {parts[0]} does not belong to {spk}-{chapter}", path, number)
            if len(parts) < 2 or not parts[1].strip():
                raise InputError(f"utterance {parts[0]} has no transcript", path, number)
            if parts[0] in result:
                raise InputError(f"utterance {parts[0]} listed twice", path, number)
            result[parts[0]] = " ".join(parts[1].split())
    return result


def prepare(subset_dir: str | os.PathLike, data_dir: str | os.PathLike,
            speakers_file: str | os.PathLike | None = None) -> int:
    """Write wav.scp, text, utt2spk, spk2utt, spk2gender, utt2lang for one subset; returns #utterances.

    Every transcript line needs its .flac and every .flac its transcript line: a missing one
    is an InputError naming the file, not a silently shorter data dir.
    """
    subset = Path(subset_dir).resolve()
    if not subset.is_dir():
        raise InputError("LibriSpeech subset directory does not exist", str(subset))
    speakers = read_speakers(speakers_file or subset.parent / "SPEAKERS.TXT")
    wav: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    for spk_dir in sorted(p for p in subset.iterdir() if p.is_dir()):
        spk = spk_dir.name
        if spk not in speakers:
            raise InputError(f"speaker {spk} is not in SPEAKERS.TXT", str(spk_dir))
        for chapter_dir in sorted(p for p in spk_dir.iterdir() if p.is_dir()):
            trans = chapter_dir / f"{spk}-{chapter_dir.name}.trans.txt"
            if not trans.is_file():
                raise InputError("transcript file missing", str(trans))
            lines = read_transcripts(trans, spk, chapter_dir.name)
            flacs = {p.stem: p for p in chapter_dir.glob("*.flac")}
            for utt in lines:
                if utt not in flacs:
                    raise InputError(f"audio for {utt} missing ({utt}.flac)", str(trans))
            for utt in flacs:
                if utt not in lines:
                    raise InputError(f"{utt}.flac has no line in the transcript", str(trans))
            for utt, words in lines.items():
                wav[utt] = str(flacs[utt])
                text[utt] = words
                utt2spk[utt] = spk
    if not wav:
        raise InputError("no utterances found (is this a LibriSpeech subset directory?)", str(subset))
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "wav.scp", wav)
    write_table(out / "text", text)
    write_table(out / "utt2spk", utt2spk)
    write_table(out / "spk2utt", spk2utt)
    write_table(out / "spk2gender", {spk: speakers[spk]["gender"] for spk in spk2utt})
    # the mini corpus's evaluation sets hold several languages and say so in <subset>/utt2lang;
    # real LibriSpeech has none (all English)
    langs = read_dict(subset / "utt2lang") if (subset / "utt2lang").is_file() else {}
    write_table(out / "utt2lang", {utt: langs.get(utt, "en") for utt in wav})
    return len(wav)


def main() -> int:
    parser = argparse.ArgumentParser(description="LibriSpeech subset directory -> Kaldi data dir")
    parser.add_argument("subset_dir")
    parser.add_argument("data_dir")
    parser.add_argument("--speakers", default=None, help="SPEAKERS.TXT (default: beside the subset dir)")
    args = parser.parse_args()
    count = prepare(args.subset_dir, args.data_dir, args.speakers)
    print(f"librispeech: {count} utterances -> {args.data_dir}")
    return 0


if __name__ == "__main__":
    exit_on_input_error("librispeech", main)
