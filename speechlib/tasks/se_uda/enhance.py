"""Enhance recordings with a model trained by egs/se_uda (noisy speech in, speech estimate out).

examples:
  python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda --in noisy.wav --out clean.wav
  python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda --system dann --in dir/ --out out/
  python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda/models/target --in data/x/wav.scp --out out/

--model is an experiment dir (the system then comes from --system, default srst_similar) or one
system's model directory (exp/<tag>/models/<system>).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from speechlib.io import inference
from speechlib.io.errors import exit_on_input_error
from speechlib.nn.unet import SpeechNoiseUNet
from speechlib.tasks.model_dir import find_model_dir, load_model_dir
from speechlib.tasks.se_uda.common import SYSTEMS, model_dir

PROG = "se_uda.enhance"
MEMORY_MB = 2000
CONTEXT_SECONDS = 0.5  # overlap of the windows of a long file: well beyond the U-Net's time context


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", default="srst_similar", choices=SYSTEMS,
                        help="which trained system of an experiment dir (default: srst_similar)")


def load(args: argparse.Namespace) -> inference.WaveformModel:
    model = load_model_dir(find_model_dir(args.model, model_dir(".", args.system)), "se_uda", "enhancer")
    unet = model.build("unet", SpeechNoiseUNet).to(args.device)

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> np.ndarray:
        speech, _ = unet(torch.from_numpy(batch).to(args.device))
        return speech[:, : batch.shape[1]].cpu().numpy()

    return inference.WaveformModel(model.sample_rate, forward, context=int(CONTEXT_SECONDS * model.sample_rate),
                                   min_samples=int(unet.config["n_fft"]))


def main(argv: list[str] | None = None) -> int:
    return inference.main(PROG, __doc__, load, argv=argv, memory_mb=MEMORY_MB, add_arguments=add_arguments)


if __name__ == "__main__":
    exit_on_input_error(PROG, main)
