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
batch and every cutout at once. Inputs are only read; pictures are written atomically.
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

    def generate(self, embeddings: torch.Tensor, steps: int, seed: int, batch_size: int = 64
                 ) -> tuple[torch.Tensor, float]:
        """Pictures (N, 3, H, W) in [0, 1] and the seconds per picture."""
        s, pictures = self.settings, []
        start = time.perf_counter()
        for first in range(0, embeddings.shape[0], batch_size):
            chunk, _ = generate_images(self.vqgan, self.tower, embeddings[first:first + batch_size], steps,
                                       s["gen_lr"], s["gen_cutouts"], s["gen_cut_size"], s["latent_size"],
                                       s["gen_min_fraction"], seed=seed)
            pictures.append(chunk.cpu())
        seconds = (time.perf_counter() - start) / max(1, embeddings.shape[0])
        return torch.cat(pictures), seconds


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


def main(argv: list[str] | None = None) -> int:
    prog = "audio2image.generate"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exp/<tag> of a finished recipe run, or its model/ dir")
    parser.add_argument("--in", dest="inputs", required=True, help="audio file, directory or wav.scp")
    parser.add_argument("--out", required=True, help="PNG file (one input) or directory")
    parser.add_argument("--steps", type=positive_int, default=None, help="optimisation steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--system", default="wavbrivl", choices=SYSTEMS)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    try:
        the_plan = plan_pictures(args.inputs, args.out)
    except InputError as err:
        for problem in getattr(err, "problems", [str(err)]):
            print(f"{prog}: refused: {problem}", file=sys.stderr)
        return 2
    model = LoadedModel(args.model, args.system, device=args.device)
    summary = Summary(total=len(the_plan.items))
    loaded = read_items(prog, the_plan.items, model, summary)
    if loaded:
        embeddings = model.embed([signal for _, signal in loaded])
        pictures, seconds = model.generate(embeddings, args.steps or model.settings["gen_steps"], args.seed)
        for (item, _), picture in zip(loaded, pictures):
            save_png(to_array(picture), item.output)
            summary.done.append(item.name)
        print(f"{prog}: {seconds:.2f} s per picture", file=sys.stderr)
    print(f"{prog}: {summary.line()} -> {args.out}")
    return summary.exit_code


if __name__ == "__main__":
    exit_on_input_error("audio2image.generate", main)
