"""Noise corpora of the pre-training (FSDKaggle2018, PNL 100 nonspeech sounds, NoiseX-92), each
clip mapped to one of AudioSet's seven top-level categories, written as one noise data dir
(wav.scp, utt2category, utt2spk, spk2utt) like the mini corpus's noise pool.

Mappings follow the AudioSet ontology's top-level parent of each label. FSDKaggle2018 has no
"natural sounds" label; PNL and NoiseX-92 file names are mapped by exact words (PNL's are
descriptive); a clip whose name matches no keyword stops prep with its name, or is taken from an
optional `category_map.tsv` (`<file name>\t<category>`) placed in the corpus directory.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from speechlib.data.mini import CATEGORIES
from speechlib.io.errors import InputError
from speechlib.io.kaldi import write_table

FSD2018_CATEGORY = {
    "Acoustic_guitar": "music", "Applause": "human", "Bark": "animal", "Bass_drum": "music",
    "Burping_or_eructation": "human", "Bus": "things", "Cello": "music", "Chime": "music",
    "Clarinet": "music", "Computer_keyboard": "things", "Cough": "human", "Cowbell": "music",
    "Double_bass": "music", "Drawer_open_or_close": "things", "Electric_piano": "music",
    "Fart": "human", "Finger_snapping": "human", "Fireworks": "things", "Flute": "music",
    "Glockenspiel": "music", "Gong": "music", "Gunshot_or_gunfire": "things", "Harmonica": "music",
    "Hi-hat": "music", "Keys_jangling": "things", "Knock": "things", "Laughter": "human",
    "Meow": "animal", "Microwave_oven": "things", "Oboe": "music", "Saxophone": "music",
    "Scissors": "things", "Shatter": "things", "Snare_drum": "music", "Squeak": "source_ambiguous",
    "Tambourine": "music", "Tearing": "source_ambiguous", "Telephone": "things", "Trumpet": "music",
    "Violin_or_fiddle": "music", "Writing": "things",
}
# Reviewed word -> category table for PNL / NoiseX-92 file names. A name is split into lower-case
# words at every non-alphanumeric character ("HF_channel-2.wav" -> hf, channel, 2) and the first
# word found in this table decides; words match exactly (no substrings: "microwave" is not "wave",
# "scatter" is not "cat"). Categories follow the AudioSet parent of the sound the word names.
KEYWORD_CATEGORY: dict[str, str] = {
    # human sounds
    "babble": "human", "laugh": "human", "laughter": "human", "cough": "human", "crowd": "human",
    "clap": "human", "applause": "human", "cry": "human", "crying": "human", "footstep": "human",
    "footsteps": "human", "human": "human", "whistle": "human", "speech": "human", "talk": "human",
    "cafeteria": "human", "sneeze": "human", "breath": "human", "breathing": "human",
    # animal
    "bird": "animal", "birds": "animal", "dog": "animal", "bark": "animal", "cat": "animal",
    "meow": "animal", "cow": "animal", "rooster": "animal", "frog": "animal", "cricket": "animal",
    "crickets": "animal", "insect": "animal", "insects": "animal", "animal": "animal",
    # natural sounds
    "wind": "natural", "rain": "natural", "thunder": "natural", "water": "natural", "stream": "natural",
    "ocean": "natural", "waves": "natural", "sea": "natural", "fire": "natural", "river": "natural",
    # music
    "music": "music", "piano": "music", "guitar": "music", "drum": "music", "drums": "music",
    "violin": "music", "song": "music",
    # channel, environment and background
    "white": "background", "pink": "background", "brown": "background", "hfchannel": "background",
    "static": "background", "hum": "background", "noise": "background",
    # sounds of things
    "factory": "things", "factory1": "things", "factory2": "things", "buccaneer": "things",
    "buccaneer1": "things", "buccaneer2": "things", "f16": "things", "destroyerengine": "things",
    "destroyerops": "things", "destroyer": "things", "leopard": "things", "m109": "things",
    "volvo": "things", "machinegun": "things", "car": "things", "train": "things", "engine": "things",
    "phone": "things", "telephone": "things", "siren": "things", "alarm": "things", "door": "things",
    "doorbell": "things", "bell": "things", "machine": "things", "traffic": "things", "street": "things",
    "microwave": "things", "vacuum": "things", "keyboard": "things", "typing": "things", "clock": "things",
    "helicopter": "things", "airplane": "things", "bus": "things", "motorcycle": "things",
    # source-ambiguous sounds
    "click": "source_ambiguous", "thump": "source_ambiguous", "crack": "source_ambiguous",
    "tone": "source_ambiguous", "beep": "source_ambiguous", "squeak": "source_ambiguous",
    "rustle": "source_ambiguous", "scrape": "source_ambiguous",
}


def name_words(name: str) -> list[str]:
    """Lower-case words of a file name, split at every non-alphanumeric character."""
    return [w for w in re.split(r"[^0-9a-z]+", name.lower()) if w]


def keyword_category(name: str) -> str | None:
    """Category of the first word of `name` found in KEYWORD_CATEGORY (exact words only)."""
    return next((KEYWORD_CATEGORY[w] for w in name_words(name) if w in KEYWORD_CATEGORY), None)


def _override_map(corpus_dir: Path) -> dict[str, str]:
    path = corpus_dir / "category_map.tsv"
    if not path.is_file():
        return {}
    table = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            name, _, cat = line.partition("\t")
            if cat.strip() not in CATEGORIES:
                raise InputError(f"unknown category '{cat.strip()}' (known: {', '.join(CATEGORIES)})", str(path), line_no)
            table[name.strip()] = cat.strip()
    return table


def fsdkaggle2018_clips(root: str | os.PathLike) -> dict[str, tuple[Path, str]]:
    """FSDKaggle2018.meta/train_post_competition.csv (fname,label,...) + FSDKaggle2018.audio_train/."""
    root = Path(root)
    meta = root / "FSDKaggle2018.meta" / "train_post_competition.csv"
    if not meta.is_file():
        raise InputError(f"db.sh: FSDKAGGLE2018={root}: expected FSDKaggle2018.meta/train_post_competition.csv")
    clips = {}
    with open(meta, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), 2):
            if row["label"] not in FSD2018_CATEGORY:
                raise InputError(f"unknown FSDKaggle2018 label '{row['label']}'", str(meta), line)
            clips[f"fsd-{Path(row['fname']).stem}"] = (root / "FSDKaggle2018.audio_train" / row["fname"],
                                                      FSD2018_CATEGORY[row["label"]])
    return clips


def named_clips(root: str | os.PathLike, prefix: str, variable: str) -> dict[str, tuple[Path, str]]:
    """PNL / NoiseX-92: every *.wav under `root`, categorised by category_map.tsv or keywords."""
    root = Path(root)
    wavs = sorted(root.rglob("*.wav"))
    if not wavs:
        raise InputError(f"db.sh: {variable}={root}: no .wav files inside")
    overrides = _override_map(root)
    clips = {}
    for wav in wavs:
        cat = overrides.get(wav.name) or keyword_category(wav.stem)
        if cat is None:
            raise InputError(f"{wav}: no AudioSet category for this file; add '{wav.name}\\t<category>' "
                             f"to {root / 'category_map.tsv'}")
        clips[f"{prefix}-{wav.stem}"] = (wav, cat)
    return clips


def write_noise_datadir(clips: dict[str, tuple[Path, str]], data_dir: str | os.PathLike) -> Path:
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "wav.scp", {k: str(p.resolve()) for k, (p, _) in clips.items()})
    write_table(out / "utt2category", {k: c for k, (_, c) in clips.items()})
    write_table(out / "utt2spk", {k: k for k in clips})
    write_table(out / "spk2utt", {k: k for k in clips})
    return out
