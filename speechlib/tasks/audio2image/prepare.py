"""Stage 0 of egs/audio2image: sound/picture pairs -> data/{train,valid,test} (split by stamp/video).

    python -m speechlib.tasks.audio2image.prepare conf/mini_audio2image.yaml --output_folder exp/x \
        [--vggsound_csv vggsound.csv --vggsound_videos DIR]    (run.sh: from db.sh)

Mini (default): the Tux Paint stamps of the mini corpus: sound effects and spoken descriptions
paired with the stamp's picture, class = stamp category; split by stamp. Real: VGG-Sound clips
(one random frame per video, square, `image_size`), split train/test as in vggsound.csv with a
validation part of train taken by video. Pictures are stored once, square and resized, under
data/images/.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import shutil
from pathlib import Path

from speechlib.data.image_pairs import (SPLITS, Pair, load_rgb, mini_pairs, save_png, split_by_stamp,
                                        write_pairs_dir)
from speechlib.io.atomic import atomic_path
from speechlib.io.audio import audio_info
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.tasks.stage import start_stage


def pictures_of(pairs: list[Pair], image_dir: Path, size: int) -> tuple[dict[str, str], list[str]]:
    """stamp -> stored square picture; pictures that cannot be read (e.g. SVG) are skipped by name."""
    said: set[str] = set()
    stored, skipped = {}, []
    for pair in pairs:
        if pair.stamp in stored or pair.stamp in skipped:
            continue
        try:
            array = load_rgb(pair.image, size, said)
        except InputError as err:
            print(f"prepare: skipped picture {pair.image}: {err.message}")
            skipped.append(pair.stamp)
            continue
        target = image_dir / f"{pair.stamp}.png"
        save_png(array, target)
        stored[pair.stamp] = str(target.resolve())
    return stored, skipped


def local_audio(pair: Pair, audio_dir: Path) -> Pair:
    """The pair with its audio hard-linked (copied across file systems) under the data folder:
    the mini corpus may be rebuilt in place while a recipe runs; the data dir must not change."""
    target = audio_dir / f"{pair.utt}{Path(pair.audio).suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target, suffix=target.suffix) as tmp:
            tmp.unlink()
            try:
                os.link(pair.audio, tmp)
            except OSError:
                shutil.copyfile(pair.audio, tmp)
    return dataclasses.replace(pair, audio=str(target.resolve()))


def vggsound_pairs(hp: dict, data_folder: Path, csv_path: str, videos: str) -> tuple[list[Pair], dict[str, str]]:
    from speechlib.data.vggsound import prepare_vggsound

    clips, skipped = prepare_vggsound(csv_path, videos, data_folder / "vggsound", hp["image_size"], hp["seed"])
    for reason, names in skipped.items():
        if names:
            print(f"prepare: skipped {len(names)} videos ({reason}), first: {names[0]}")
    pairs = [Pair(f"{c['clip'].replace('-', '_')}-sfx", c["clip"].replace("-", "_"), c["audio"], c["image"], "sfx",
                  "none", c["label"], c["label"]) for c in clips]
    return pairs, {c["clip"].replace("-", "_"): c["split"] for c in clips}


def main() -> None:
    stage = start_stage("prepare", options=())
    hp = stage.hparams
    data_folder = Path(hp["data_folder"])
    outputs = tuple(data_folder / split / "wav.scp" for split in SPLITS)
    if stage.is_done(outputs):
        print(f"prepare: {data_folder} is up to date")
        return
    if hp["vggsound_csv"]:
        pairs, csv_split = vggsound_pairs(hp, data_folder, hp["vggsound_csv"], hp["vggsound_videos"])
        held = split_by_stamp(sorted({p.stamp for p in pairs}), (hp["valid_fraction"], 0.0), hp["seed"])
        split = {stamp: "test" if csv_split.get(stamp) == "test" else held[stamp] for stamp in held}
        images = {p.stamp: p.image for p in pairs}
    else:
        pairs = mini_pairs(hp["corpus_root"] or None, hp["class_level"], tuple(hp["pair_kinds"]))
        split = split_by_stamp(sorted({p.stamp for p in pairs}), (hp["valid_fraction"], hp["test_fraction"]),
                               hp["split_seed"])
        images, skipped = pictures_of(pairs, data_folder / "images", hp["image_size"])
        if skipped:
            print(f"prepare: {len(skipped)} pictures skipped (unreadable), their sounds dropped")
        pairs = [local_audio(p, data_folder / "audio") for p in pairs if p.stamp in images]
    durations = {p.utt: audio_info(p.audio, p.utt).duration for p in pairs}
    for name in SPLITS:
        part = [p for p in pairs if split[p.stamp] == name]
        if not part:
            raise InputError(f"split '{name}' is empty: too few stamps/videos for the fractions")
        write_pairs_dir(data_folder / name, part, images, durations)
        kinds = collections.Counter(p.kind for p in part)
        print(f"prepare: {name}: {len({p.stamp for p in part})} pictures, {len(part)} sounds "
              f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), "
              f"{len({p.label for p in part})} classes")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("audio2image.prepare", main)
