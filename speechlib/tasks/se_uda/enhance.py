"""Enhance recordings with a model trained by egs/se_uda (noisy speech in, speech estimate out).

examples:
  python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda --in noisy.wav --out clean.wav
  python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda --system dann --in dir/ --out out/
  python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda/models/target --in data/x/wav.scp --out out/

--model is an experiment dir (the system then comes from --system, default srst_similar; in a
run over several seeds, the first seed's) or one system's model directory
(exp/<tag>/models/<system>, exp/<tag>/seed<N>/models/<system>).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from speechlib.io import inference
from speechlib.io.errors import exit_on_input_error
from speechlib.nn.unet import SpeechNoiseUNet
from speechlib.tasks.model_dir import find_model_dir, load_model_dir
from speechlib.tasks.se_uda.common import SYSTEMS, model_dir
from speechlib.tasks.se_uda.enhancer import waveform_model

PROG = "se_uda.enhance"
MEMORY_MB = 2000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", default="srst_similar", choices=SYSTEMS,
                        help="which trained system of an experiment dir (default: srst_similar)")


def load(args: argparse.Namespace) -> inference.WaveformModel:
    seeds = sorted(Path(args.model).glob("seed*/"), key=lambda p: (len(p.name), p.name))  # a multi-seed run
    below = [model_dir(root, args.system) for root in [Path("."), *(p.relative_to(args.model) for p in seeds)]]
    model = load_model_dir(find_model_dir(args.model, *below), "se_uda", "enhancer")
    return waveform_model(model.build("unet", SpeechNoiseUNet), model.sample_rate, args.device)


def main(argv: list[str] | None = None) -> int:
    return inference.main(PROG, __doc__, load, argv=argv, memory_mb=MEMORY_MB, add_arguments=add_arguments)


if __name__ == "__main__":
    exit_on_input_error(PROG, main)
