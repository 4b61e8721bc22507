"""User command: pictures from sounds with a trained audio2image model.

    python -m speechlib.tasks.audio2image.generate --model exp/mini_audio2image --in dog.wav --out dog.png
    python -m speechlib.tasks.audio2image.generate --model exp/x --in sounds/ --out pictures/ --steps 100
    python -m speechlib.tasks.audio2image.generate --model exp/x --in data/test/wav.scp --out pictures/

`--in` is an audio file, a directory of audio files, or a Kaldi wav.scp; with a directory or a
wav.scp, `--out` is a directory receiving <name>.png. Generation is Wav2CLIP's loop (VQGAN
latents optimised by Adam so that the frozen image tower's embedding of augmented cutouts of the
decoded picture approaches the sound's embedding, squared spherical distance), every sound of a
batch and every cutout at once. Inputs are only read.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from speechlib.data.image_pairs import save_png
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.nn.vqgan import generate_images
from speechlib.tasks.audio2image.common import SYSTEMS, embed_sounds, load_weights, model_dir, read_signals

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a")


def resolve_model_dir(path: str) -> Path:
    """exp/<tag> or exp/<tag>/model -> the model directory (checked)."""
    candidate = Path(path)
    for directory in (model_dir(candidate), candidate):
        if (directory / "hyperparams.yaml").is_file():
            return directory
    raise InputError("not an audio2image model directory (no model/hyperparams.yaml; run the recipe first)", path)


def load_hparams(directory: Path, device: str = "cpu") -> dict:
    from hyperpyyaml import load_hyperpyyaml

    with open(directory / "hyperparams.yaml", encoding="utf-8") as handle:
        return load_hyperpyyaml(handle)


class LoadedModel:
    """The frozen tower, one audio encoder and (if asked) the VQGAN of a model directory."""

    def __init__(self, model: str, system: str = "wavbrivl", seed: int = 1, vqgan: bool = True,
                 device: str = "cpu", hparams: dict | None = None):
        from speechlib.tasks.audio2image.evaluate import load_audio_model

        if system not in SYSTEMS:
            raise InputError(f"unknown system '{system}'; known: {', '.join(SYSTEMS)}")
        self.directory = resolve_model_dir(model)
        self.hp = hparams if hparams is not None else load_hparams(self.directory)
        self.tower = load_weights(self.hp["image_tower"], self.directory / "image_tower.pt").eval().to(device)
        for param in self.tower.parameters():
            param.requires_grad_(False)
        self.audio = load_audio_model(self.hp, system, self.directory / f"audio_{system}_seed{seed}.pt").to(device)
        self.vqgan = None
        if vqgan:
            self.vqgan = load_weights(self.hp["vqgan"], self.directory / "vqgan.pt").eval().to(device)
            for param in self.vqgan.parameters():
                param.requires_grad_(False)
        self.device = device

    def embed(self, signals: list[torch.Tensor]) -> torch.Tensor:
        return embed_sounds(self.audio, [s.to(self.device) for s in signals])

    def generate(self, embeddings: torch.Tensor, steps: int, seed: int, batch_size: int = 64
                 ) -> tuple[torch.Tensor, float]:
        """Pictures (N, 3, H, W) in [0, 1] and the seconds per picture."""
        hp, pictures = self.hp, []
        start = time.perf_counter()
        for first in range(0, embeddings.shape[0], batch_size):
            chunk, _ = generate_images(self.vqgan, self.tower, embeddings[first:first + batch_size], steps,
                                       hp["gen_lr"], hp["gen_cutouts"], hp["gen_cut_size"], hp["latent_size"],
                                       hp["gen_min_fraction"], seed=seed + first)
            pictures.append(chunk.cpu())
        seconds = (time.perf_counter() - start) / max(1, embeddings.shape[0])
        return torch.cat(pictures), seconds


def list_inputs(spec: str) -> list[tuple[str, str]]:
    """(name, path) for a file, a directory of audio files, or a wav.scp."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in the directory", spec)
        return [(p.stem, str(p)) for p in files]
    if path.name == "wav.scp" or path.suffix == ".scp":
        return sorted(read_dict(path).items())
    if not path.is_file():
        raise InputError("no such file or directory", spec)
    return [(path.stem, str(path))]


def to_array(picture: torch.Tensor) -> np.ndarray:
    return (picture.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="exp/<tag> of a finished recipe run")
    parser.add_argument("--in", dest="inputs", required=True, help="audio file, directory or wav.scp")
    parser.add_argument("--out", required=True, help="PNG file (one input) or directory")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the config's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--system", default="wavbrivl", choices=SYSTEMS)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = LoadedModel(args.model, args.system, device=args.device)
    items = list_inputs(args.inputs)
    single = len(items) == 1 and Path(args.inputs).is_file() and not args.inputs.endswith(".scp")
    signals = read_signals([p for _, p in items], model.hp, [n for n, _ in items])
    pictures, seconds = model.generate(model.embed(signals), args.steps or model.hp["gen_steps"], args.seed)
    out = Path(args.out)
    for (name, _), picture in zip(items, pictures):
        save_png(to_array(picture), out if single else out / f"{name}.png")
    print(f"generate: {len(items)} picture(s) in {out} ({seconds:.2f} s per picture)")


if __name__ == "__main__":
    exit_on_input_error("audio2image.generate", main)
