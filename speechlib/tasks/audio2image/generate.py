"""User command: pictures from sounds with a trained audio2image model.

    python -m speechlib.tasks.audio2image.generate --model exp/mini_audio2image --in dog.wav --out dog.png
    python -m speechlib.tasks.audio2image.generate --model exp/x --in sounds/ --out pictures/ --steps 100
    python -m speechlib.tasks.audio2image.generate --model exp/x --in data/test/wav.scp --out pictures/

`--model`: exp/<tag> (its model/ directory, written by stage 5) or that model directory.
`--in` is an audio file, a directory (recursive; the tree is mirrored under --out) or a Kaldi
wav.scp (pipes included), resolved by the project's input front end (speechlib.io.inputs): an
output that would overwrite an input, or two inputs sharing one output, is refused before any
work. A sound that cannot be read is named and skipped, the others are generated; the last line
is the summary, the exit status 1 if any was refused. Generation is Wav2CLIP's loop (VQGAN
latents optimised by Adam so that the frozen image tower's embedding of augmented cutouts of the
decoded picture approaches the sound's embedding, squared spherical distance), every sound of a
batch and every cutout at once. Sounds are read, embedded, turned into pictures and written
`--batch-size` at a time, so memory does not grow with the number of inputs; progress (pictures
done, ETA) is shown while it runs (a bar on a terminal, a line every 30 s otherwise; --quiet: none).
Inputs are only read; pictures are written atomically.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from speechlib.data.image_pairs import save_png
from speechlib.io.audio import read_audio, resample
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.inference import Summary, check_usable, positive_int
from speechlib.io.inputs import Item, PlanError, plan
from speechlib.io.progress import Progress
from speechlib.nn.vqgan import generate_images
from speechlib.tasks.audio2image.common import SYSTEMS, embed_sounds, load, load_module, user_dir
from speechlib.tasks.model_dir import find_model_dir


class LoadedModel:
    """The frozen tower, one system's audio tower and (if asked) the VQGAN of a model directory:
    exp/<tag>/model (kind audio2image) or, for retrieval, one exp/<tag>/<system>_seed<N>/model."""

    def __init__(self, model: str | Path, system: str = "wavbrivl", vqgan: bool = True, device: str = "cpu"):
        from speechlib.tasks.audio2image.evaluate import AudioEmbedder

        if system not in SYSTEMS:
            raise InputError(f"unknown system '{system}'; known: {', '.join(SYSTEMS)}")
        path = Path(model)
        found = find_model_dir(path, user_dir(path).relative_to(path))
        self.md = load(found, ("audio2image",) if vqgan else ("audio2image", "audio_encoder"))
        self.settings = self.md.extra
        self.tower = load_module(self.md, "image_tower").to(device)
        audio = "audio" if self.md.meta["kind"] == "audio_encoder" else f"audio_{system}"
        self.audio = AudioEmbedder(load_module(self.md, audio)).to(device)
        self.vqgan = load_module(self.md, "vqgan").to(device) if vqgan else None
        self.device = device

    @property
    def sample_rate(self) -> int:
        return self.md.sample_rate

    def embed(self, signals: list[torch.Tensor]) -> torch.Tensor:
        return embed_sounds(self.audio, [s.to(self.device) for s in signals])

    def generate(self, embeddings: torch.Tensor, steps: int, seed: int, on_step=None) -> torch.Tensor:
        """Pictures (N, 3, H, W) in [0, 1], every embedding at once (each picture is the one it
        would get alone: generate_images is batch independent)."""
        s = self.settings
        pictures, _ = generate_images(self.vqgan, self.tower, embeddings, steps, s["gen_lr"], s["gen_cutouts"],
                                      s["gen_cut_size"], s["latent_size"], s["gen_min_fraction"], seed=seed,
                                      on_step=on_step)
        return pictures.cpu()


def read_items(prog: str, items: list[Item], model: LoadedModel, summary: Summary) -> list[tuple[Item, torch.Tensor]]:
    """Each input's first max_seconds at the model's rate (mono). As in the inference front end, an
    unreadable, truncated, empty, non-finite or silent one is named, counted as refused and
    skipped (speechlib.io.audio.read_audio, inference.check_usable); a very short sound is kept
    (the audio tower pads it to its receptive field)."""
    loaded = []
    for item in items:
        try:
            audio = read_audio(item.spec, utt=item.name if item.name != item.spec else None)
            check_usable(audio.data, audio.sample_rate, min_seconds=0.0)  # a click is padded to one WavLM frame
            signal = resample(audio.data.mean(axis=1), audio.sample_rate, model.sample_rate)
            cut = signal[: int(model.settings["max_seconds"] * model.sample_rate)]
            loaded.append((item, torch.from_numpy(np.ascontiguousarray(cut, np.float32))))
        except InputError as err:
            summary.refused[item.name] = err.message
            print(f"{prog}: refused {item.name}: {err.message}", file=sys.stderr)
    return loaded


def plan_pictures(source: str, out: str):
    """The front end's plan with .png outputs; `--out x.png` names the one picture of one file."""
    if Path(out).suffix.lower() != ".png":
        return plan(source, out, ".png", listings=())
    the_plan = plan(source, None)
    if the_plan.kind != "file":
        raise PlanError([f"--out {out}: a picture name but --in {source} is not one file; give a directory"])
    if os.path.realpath(out) == os.path.realpath(source):
        raise PlanError([f"--out {out} would overwrite the input"])
    the_plan.items[0].output = Path(out)
    return the_plan


def to_array(picture: torch.Tensor) -> np.ndarray:
    return (picture.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options generate and retrieve share (sounds per batch, threads, device, progress)."""
    parser.add_argument("--system", default="wavbrivl", choices=SYSTEMS,
                        help="which audio tower of exp/<tag>/model (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=16,
                        help="sounds read and processed at once; bounds memory (default: %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=1, help="CPU threads (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda:0 (default: cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")


def in_batches(prog: str, items: list[Item], model: LoadedModel, summary: Summary, batch_size: int,
               progress: Progress):
    """Yield (items, embeddings) `batch_size` inputs at a time (unreadable ones refused by name
    and counted as done for the progress), so only one batch of sounds is ever in memory."""
    for first in range(0, len(items), batch_size):
        chunk = items[first:first + batch_size]
        loaded = read_items(prog, chunk, model, summary)
        progress.update(len(chunk) - len(loaded))
        if loaded:
            yield [item for item, _ in loaded], model.embed([signal for _, signal in loaded])


def main(argv: list[str] | None = None) -> int:
    prog = "audio2image.generate"
    parser = argparse.ArgumentParser(prog=f"python -m speechlib.tasks.{prog}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exp/<tag> of a finished recipe run, or its model/ dir")
    parser.add_argument("--in", dest="inputs", required=True, help="audio file, directory or wav.scp")
    parser.add_argument("--out", required=True, help="PNG file (one input) or directory")
    parser.add_argument("--steps", type=positive_int, default=None, help="optimisation steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=1, help="start latent and cutouts (default: %(default)s)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    try:
        the_plan = plan_pictures(args.inputs, args.out)
    except InputError as err:
        for problem in getattr(err, "problems", [str(err)]):
            print(f"{prog}: refused: {problem}", file=sys.stderr)
        return 2
    model = LoadedModel(args.model, args.system, device=args.device)
    steps = args.steps or model.settings["gen_steps"]
    summary = Summary(total=len(the_plan.items))
    progress = Progress(summary.total, prog, unit="picture", enabled=not args.quiet)
    start = time.perf_counter()
    try:
        for items, embeddings in in_batches(prog, the_plan.items, model, summary, args.batch_size, progress):
            for item, picture in zip(items, model.generate(embeddings, steps, args.seed, on_step=progress.tick)):
                save_png(to_array(picture), item.output)
                summary.done.append(item.name)
            progress.update(len(items))
    finally:
        progress.close()
    if summary.done:
        print(f"{prog}: {(time.perf_counter() - start) / len(summary.done):.2f} s per picture "
              f"({steps} steps, {args.threads} thread(s), {args.device})", file=sys.stderr)
    print(f"{prog}: {summary.line()} -> {args.out}")
    return summary.exit_code


if __name__ == "__main__":
    exit_on_input_error("audio2image.generate", main)
