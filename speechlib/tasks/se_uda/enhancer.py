"""Batched inference with a trained U-Net, shared by the scoring stage and the enhance CLI.

Utterances are sorted by length and batched with their neighbours, so padding stays small;
each estimate is cropped back to its input's length.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch


def _batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield [int(i) for i in order[start:start + batch_size]]


@torch.no_grad()
def enhance(unet: torch.nn.Module, signals: Sequence[np.ndarray], batch_size: int = 8,
            device: str = "cpu", with_noise: bool = False) -> list[np.ndarray] | tuple[list, list]:
    """Speech estimates (and noise estimates with `with_noise`) for 1-D float signals."""
    unet.eval().to(device)
    speech: list[np.ndarray | None] = [None] * len(signals)
    noise: list[np.ndarray | None] = [None] * len(signals)
    for indices in _batches([len(s) for s in signals], batch_size):
        longest = max(len(signals[i]) for i in indices)
        batch = torch.zeros(len(indices), longest)
        for row, i in enumerate(indices):
            batch[row, : len(signals[i])] = torch.from_numpy(np.asarray(signals[i], np.float32))
        speech_est, noise_est = unet(batch.to(device))
        for row, i in enumerate(indices):
            speech[i] = speech_est[row, : len(signals[i])].cpu().numpy()
            noise[i] = noise_est[row, : len(signals[i])].cpu().numpy()
    return (speech, noise) if with_noise else speech
