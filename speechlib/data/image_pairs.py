"""Sound/picture pairs as Kaldi data dirs: the mini corpus's Tux Paint stamps, split by stamp.

Each Tux Paint stamp gives one picture, one sound effect and, for some stamps, spoken
descriptions and spoken names in several languages (speech/index.tsv rows `*_desc_<stem>` and
`*_name_<stem>`). Every audio of a stamp is paired with the stamp's picture; the class label is
the stamp's category (the first `class_level` parts of its folder, e.g. "animals").

The split is by stamp: a stamp's picture and all its sounds land in one split, so no picture or
sound is seen in two splits. Pictures are loaded once, converted to RGB (alpha composited on
white), centre-cropped square and resized, then written as PNG files the trainings read.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechlib.io.atomic import atomic_path
from speechlib.io.errors import InputError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SPOKEN = re.compile(r"_(desc|name)_(?P<stem>.+)$")   # a spoken stamp in a speech-pool utterance id


@dataclass(frozen=True)
class Pair:
    """One audio paired with one picture."""

    utt: str        # Kaldi utterance id, prefixed by the stamp (the "speaker")
    stamp: str      # the picture's id; the unit of the split
    audio: str      # audio path
    image: str      # picture path
    kind: str       # sfx | desc | name
    lang: str       # language of a spoken description, "none" for a sound effect
    text: str       # what the audio says (or the stamp's name, for a sound effect)
    label: str      # class: the stamp category


def stamp_name_text(stamp: str, group: str) -> str:
    """The stamp's English name from its file name: tp_animals_birds_magellanic_penguin ->
    'magellanic penguin' (the group prefix is dropped)."""
    prefix = "tp_" + re.sub(r"[^A-Za-z0-9]", "_", group) + "_"
    name = stamp[len(prefix):] if stamp.startswith(prefix) else stamp
    return " ".join(name.split("_"))


def class_of(group: str, level: int) -> str:
    return "/".join(group.split("/")[:level])


def mini_pairs(root: str | os.PathLike | None, class_level: int = 1, kinds: tuple[str, ...] = ("sfx", "desc", "name")
               ) -> list[Pair]:
    """Every sound/picture pair of the mini corpus (sound effects and spoken descriptions)."""
    from speechlib.data import mini

    base = mini.mini_root(root)
    index = base / "audio_image" / "index.tsv"
    stamps = {row["name"]: row for row in mini._read_tsv(index)}
    pairs: list[Pair] = []
    for name, row in stamps.items():
        if "sfx" in kinds:
            pairs.append(Pair(f"{name}-sfx", name, str((base / row["audio"]).resolve()),
                              str((base / row["image"]).resolve()), "sfx", "none",
                              stamp_name_text(name, row["group"]), class_of(row["group"], class_level)))
    for row in mini.speech_index(base):
        match = SPOKEN.search(row["utt"])
        if not match or match.group(1) not in kinds:
            continue
        stamp = "tp_" + match["stem"]
        if stamp not in stamps:
            continue   # a description of a stamp that has no sound effect (no picture in the corpus)
        info = stamps[stamp]
        pairs.append(Pair(f"{stamp}-{match.group(1)}_{row['lang']}", stamp, str((base / row["path"]).resolve()),
                          str((base / info["image"]).resolve()), match.group(1), row["lang"], row["text"],
                          class_of(info["group"], class_level)))
    if not pairs:
        raise InputError("no sound/picture pairs (rebuild the mini corpus)", str(index))
    return sorted(pairs, key=lambda p: p.utt)


def split_by_stamp(stamps: list[str], fractions: tuple[float, float], seed: int) -> dict[str, str]:
    """stamp -> train|valid|test by a seeded hash of its name: stable when stamps are added."""
    valid, test = fractions
    result = {}
    for stamp in stamps:
        value = int(hashlib.sha256(f"{seed}:{stamp}".encode()).hexdigest()[:8], 16) / 16 ** 8
        result[stamp] = "test" if value < test else "valid" if value < test + valid else "train"
    return result


def load_rgb(path: str | os.PathLike, size: int, said: set[str] | None = None) -> np.ndarray:
    """A picture as (size, size, 3) uint8: RGB (alpha over white), centre square crop, resized.

    A picture that is not RGB is converted; the conversion is logged once per mode (`said`)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode != "RGB":
                if said is not None and mode not in said:
                    said.add(mode)
                    log.warning("pictures in mode %s are converted to RGB (first: %s)", mode, path)
                if mode in ("RGBA", "LA", "P", "PA"):
                    image = image.convert("RGBA")
                    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                    image = Image.alpha_composite(background, image)
                image = image.convert("RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
            return np.asarray(image, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as err:
        raise InputError(f"not a readable picture: {err}", str(path)) from None


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """(H, W, 3) uint8 -> PNG, written atomically."""
    from PIL import Image

    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def write_pairs_dir(dest: str | os.PathLike, pairs: list[Pair], image_paths: dict[str, str],
                    durations: dict[str, float]) -> Path:
    """Kaldi data dir: wav.scp, utt2spk (the stamp), text, utt2image, utt2label, utt2kind,
    utt2lang, utt2dur."""
    from speechlib.data.writer import write_data_dir

    tables = {
        "wav.scp": {p.utt: p.audio for p in pairs},
        "text": {p.utt: p.text for p in pairs},
        "utt2image": {p.utt: image_paths[p.stamp] for p in pairs},
        "utt2label": {p.utt: p.label for p in pairs},
        "utt2kind": {p.utt: p.kind for p in pairs},
        "utt2lang": {p.utt: p.lang for p in pairs},
        "utt2dur": {p.utt: f"{durations[p.utt]:.3f}" for p in pairs},
    }
    return write_data_dir(dest, {p.utt: p.stamp for p in pairs}, tables)
