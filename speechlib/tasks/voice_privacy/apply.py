"""protect and restore on the shared inference front end (speechlib.io.inference).

`protect` runs the generator (x -> x + eps * n * m), `restore` the removal module; each loads
its own model directory (speechlib.tasks.voice_privacy.model_io), so protection can be given
away without restoration. Inputs, outputs, refusals, chunking and the summary are the front
end's; this module only says how to run an SSED on a batch of windows.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from speechlib.io import inference
from speechlib.tasks.voice_privacy.model_io import load_ssed

MEMORY_MB = 1500
VERBS = {"protect": "generator", "restore": "remover"}


def load(args: argparse.Namespace, which: str) -> inference.WaveformModel:
    ssed, model = load_ssed(args.model, which)
    ssed = ssed.to(args.device)

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> np.ndarray:
        return ssed(torch.from_numpy(batch).to(args.device)).wav.cpu().numpy()

    # Windows overlap by two receptive fields, so every cross-faded sample saw its whole context.
    return inference.WaveformModel(model.sample_rate, forward, context=2 * ssed.receptive_field,
                                   min_samples=ssed.receptive_field)


def main(verb: str, doc: str, argv: list[str] | None = None) -> int:
    return inference.main(f"voice_privacy.{verb}", doc, lambda args: load(args, VERBS[verb]), argv=argv,
                          memory_mb=MEMORY_MB)
