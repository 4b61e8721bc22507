"""User command: the pictures of a gallery closest to a sound, in the frozen tower's space.

    python -m speechlib.tasks.audio2image.retrieve --model exp/mini_audio2image --in dog.wav \
        --gallery pictures/ [--top 5] [--system wavbrivl]

`--in` is an audio file, a directory of audio files or a wav.scp; `--gallery` a directory of
pictures (png, jpg, ...). Prints, per sound, the top-k pictures with their cosine similarity
(tab-separated: sound, rank, picture, similarity). Pictures that cannot be read are skipped by
name; non-RGB pictures are converted (said once).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.tasks.audio2image.common import SYSTEMS, embed_pictures, picture_tensor, read_signals
from speechlib.tasks.audio2image.generate import LoadedModel, list_inputs

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def gallery_files(directory: str) -> list[str]:
    path = Path(directory)
    if not path.is_dir():
        raise InputError("gallery is not a directory", directory)
    files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        raise InputError(f"no pictures ({', '.join(PICTURE_SUFFIXES)}) in the gallery", directory)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="exp/<tag> of a finished recipe run")
    parser.add_argument("--in", dest="inputs", required=True, help="audio file, directory or wav.scp")
    parser.add_argument("--gallery", required=True, help="directory of pictures")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--system", default="wavbrivl", choices=SYSTEMS)
    args = parser.parse_args()
    model = LoadedModel(args.model, args.system, vqgan=False)
    pictures = []
    for path in gallery_files(args.gallery):
        try:
            picture_tensor(path, model.hp["image_size"])
            pictures.append(path)
        except InputError as err:
            print(f"retrieve: skipped {path}: {err.message}")
    gallery = embed_pictures(model.tower, pictures, model.hp["image_size"])
    items = list_inputs(args.inputs)
    sounds = model.embed(read_signals([p for _, p in items], model.hp, [n for n, _ in items]))
    similarity = sounds @ gallery.T
    top = similarity.topk(min(args.top, len(pictures)), dim=1)
    for (name, _), values, indices in zip(items, top.values, top.indices):
        for rank, (value, index) in enumerate(zip(values.tolist(), indices.tolist()), 1):
            print(f"{name}\t{rank}\t{pictures[index]}\t{value:.4f}")


if __name__ == "__main__":
    exit_on_input_error("audio2image.retrieve", main)
