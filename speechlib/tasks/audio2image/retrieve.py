"""User command: the pictures of a gallery closest to a sound, in the frozen tower's space.

    python -m speechlib.tasks.audio2image.retrieve --model exp/mini_audio2image --in dog.wav \\
        --gallery pictures/ [--top 5] [--system wavbrivl]
    python -m speechlib.tasks.audio2image.retrieve --model exp/x/wav2clip_seed2/model --in sounds/ --gallery pics/

`--model`: exp/<tag> (its model/ directory), or one audio tower's exp/<tag>/<system>_seed<N>/model.
`--in` is an audio file, a directory (recursive) or a wav.scp (pipes included), resolved by the
project's input front end; `--gallery` a directory of pictures (png, jpg, ...). Prints, per sound,
the top-k pictures with their cosine similarity (tab-separated: sound, rank, picture,
similarity). A sound or picture that cannot be read is named and skipped; non-RGB pictures are
converted (said once). Sounds are read and embedded --batch-size at a time (bounded memory),
with progress on stderr. The last line (stderr) is the summary; exit status 1 if a sound was refused.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.inference import Summary, positive_int
from speechlib.io.inputs import plan
from speechlib.io.progress import Progress
from speechlib.tasks.audio2image.common import embed_pictures, picture_tensor
from speechlib.tasks.audio2image.generate import LoadedModel, add_common_arguments, in_batches

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def gallery_files(directory: str) -> list[str]:
    path = Path(directory)
    if not path.is_dir():
        raise InputError("gallery is not a directory", directory)
    files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        raise InputError(f"no pictures ({', '.join(PICTURE_SUFFIXES)}) in the gallery", directory)
    return files


def main(argv: list[str] | None = None) -> int:
    prog = "audio2image.retrieve"
    parser = argparse.ArgumentParser(prog=f"python -m speechlib.tasks.{prog}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exp/<tag> of a finished recipe run, or a model dir")
    parser.add_argument("--in", dest="inputs", required=True, help="audio file, directory or wav.scp")
    parser.add_argument("--gallery", required=True, help="directory of pictures")
    parser.add_argument("--top", type=positive_int, default=5, help="pictures per sound (default: %(default)s)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    the_plan = plan(args.inputs, None)
    model = LoadedModel(args.model, args.system, vqgan=False, device=args.device)
    size = model.settings["image_size"]
    pictures = []
    for path in gallery_files(args.gallery):
        try:
            picture_tensor(path, size)
            pictures.append(path)
        except InputError as err:
            print(f"{prog}: skipped picture {path}: {err.message}", file=sys.stderr)
    if not pictures:
        raise InputError("no readable picture in the gallery", args.gallery)
    gallery = embed_pictures(model.tower, pictures, size)
    summary = Summary(total=len(the_plan.items))
    progress = Progress(summary.total, prog, unit="sound", enabled=not args.quiet)
    try:
        for items, embeddings in in_batches(prog, the_plan.items, model, summary, args.batch_size, progress):
            top = (embeddings.cpu() @ gallery.T).topk(min(args.top, len(pictures)), dim=1)
            for item, values, indices in zip(items, top.values, top.indices):
                for rank, (value, index) in enumerate(zip(values.tolist(), indices.tolist()), 1):
                    print(f"{item.name}\t{rank}\t{pictures[index]}\t{value:.4f}")
                summary.done.append(item.name)
            progress.update(len(items))
    finally:
        progress.close()
    print(f"{prog}: {summary.line()}", file=sys.stderr)
    return summary.exit_code


if __name__ == "__main__":
    exit_on_input_error("audio2image.retrieve", main)
