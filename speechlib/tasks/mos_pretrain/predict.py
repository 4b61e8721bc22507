"""Predict MOS with a trained encoder + MOS head: one `file,mos` csv row per recording.

examples:
  python -m speechlib.tasks.mos_pretrain.predict --model exp/mini_mos_pretrain --in noisy.wav
  python -m speechlib.tasks.mos_pretrain.predict --model exp/x --in some_dir/ --system pase_noise --out mos.csv
  python -m speechlib.tasks.mos_pretrain.predict --model exp/x --in data/test/wav.scp --mos-set vcc

The file column is the wav.scp key, the path under a directory input, or the file given.
Channels are averaged. Recordings shorter than 0.5 s are refused (a MOS of a click means nothing).
Default system: the paper's best (PASE + noise workers without SNR); default head: the one
trained on the NISQA (noisy-speech) set. A long recording is scored window by window
(--chunk-seconds) and the windows' mean embeddings averaged, weighted by the samples each adds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from speechlib.io import inference
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.model_dir import find_model_dir, load_model_dir
from speechlib.tasks.mos_pretrain.systems import load_encoder, load_head, model_dir

PROG = "mos_pretrain.predict"
DEFAULT_SYSTEM = "pase_noise_no_snr"
MEMORY_MB = 2500
# Below half a second a quality judgement has too little speech to rest on (a 10 ms click scored
# 1.00 before); the MOS sets themselves hold items from about 0.6 s, which must stay scorable.
MIN_SECONDS = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--system", default=DEFAULT_SYSTEM, help=f"which trained encoder (default {DEFAULT_SYSTEM})")
    parser.add_argument("--mos-set", default="nisqa", help="which trained head: nisqa (default) or vcc")


def load(args: argparse.Namespace) -> inference.ScoringModel:
    folder = find_model_dir(args.model, model_dir(args.model, args.system).relative_to(args.model))
    sample_rate = load_model_dir(folder, "mos_pretrain", "encoder").sample_rate
    encoder, _ = load_encoder(folder)
    head = load_head(Path(folder) / f"head_{args.mos_set}")
    encoder, head = encoder.to(args.device), head.to(args.device)

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> list[np.ndarray]:
        return list(encoder(torch.from_numpy(batch).to(args.device)).mean(dim=1).cpu().numpy())

    @torch.inference_mode()
    def combine(means: list[np.ndarray], weights: list[int]) -> dict[str, float]:
        pooled = torch.from_numpy(np.average(np.stack(means), axis=0, weights=weights).astype(np.float32))
        return {"mos": float(head(pooled[None].to(args.device))[0])}

    return inference.ScoringModel(sample_rate, forward, combine, ("mos",), min_samples=int(MIN_SECONDS * sample_rate))


def main(argv: list[str] | None = None) -> int:
    return inference.main(PROG, __doc__, load, argv=argv, memory_mb=MEMORY_MB, scoring=True,
                          add_arguments=add_arguments)


if __name__ == "__main__":
    exit_on_input_error(PROG, main)
