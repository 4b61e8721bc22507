"""Command-line bits: the shared CLI of `protect` and `restore` (they differ only in the module
used), and reading one option ahead of the stage's own parsing (stages named after an option)."""
from __future__ import annotations

import argparse
import sys

import torch

from speechlib.tasks.voice_privacy.apply import apply_to_dir
from speechlib.tasks.voice_privacy.model_io import load_model


def argv_option(name: str, default: str | None = None, argv: list[str] | None = None) -> str | None:
    """The value after `--name` in argv (stage entry points whose saved-config name depends on it,
    e.g. train_speaker_white vs train_speaker_black), before hyperpyyaml parses the rest."""
    argv = sys.argv if argv is None else argv
    for index, arg in enumerate(argv[:-1]):
        if arg == f"--{name}":
            return argv[index + 1]
    return default


def main(which: str, verb: str) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m speechlib.tasks.voice_privacy.{verb}",
        description=f"{verb.capitalize()} recordings with a model trained by egs/voice_privacy.")
    parser.add_argument("--model", required=True, help="exp/<tag> (or exp/<tag>/model) of a trained run")
    parser.add_argument("--in", dest="source", required=True, help="a .wav/.flac file, a directory, or a wav.scp")
    parser.add_argument("--out", required=True, help="output .wav (single input) or directory (gets a wav.scp)")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, which)
    report = apply_to_dir(model, args.source, args.out, args.sample_rate, desc=verb)
    for message in report.refused.values():
        print(f"{verb}: refused: {message}", file=sys.stderr)
    print(f"{verb}: {report.summary()} -> {args.out}")
    return 0 if report.done else 1
