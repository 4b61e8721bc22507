"""Inference with a trained U-Net, shared by the scoring stage, the report's examples and the
enhance command. It runs through the front end's windows and batching rule
(speechlib.io.inference): only windows of equal length share a batch and nothing is zero-padded,
so an utterance's estimate, and its scores, do not depend on the utterances it is batched with.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from speechlib.io import inference

CONTEXT_SECONDS = 0.5  # overlap of the windows of a long file: well beyond the U-Net's time context


def waveform_model(unet: torch.nn.Module, sample_rate: int, device: str = "cpu") -> inference.WaveformModel:
    """The U-Net's speech estimate as a front-end model (batch, samples) -> (batch, samples)."""
    unet.eval().to(device)

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> np.ndarray:
        speech, _ = unet(torch.from_numpy(batch).to(device))
        return speech[:, : batch.shape[1]].cpu().numpy()

    return inference.WaveformModel(sample_rate, forward, context=int(CONTEXT_SECONDS * sample_rate),
                                   min_samples=int(unet.config["n_fft"]))


def enhance(unet: torch.nn.Module, signals: Sequence[np.ndarray], batch_size: int = 8, device: str = "cpu",
            sample_rate: int = 16000) -> list[np.ndarray]:
    """Speech estimates of 1-D float signals at the model's `sample_rate`, each as long as its input."""
    return inference.apply_model(waveform_model(unet, sample_rate, device), signals, batch_size)
