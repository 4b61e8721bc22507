"""Protection that never clips, and restoration that undoes the level change exactly.

The perturbation is bounded, |delta| <= eps (tanh noise times sigmoid mask), so x + delta can
only pass full scale where |x| > 1 - eps. Clipping there would be a loss restore cannot undo.
Instead, a recording whose peak is above FULL_SCALE - eps is scaled by
g = (FULL_SCALE - eps) / peak *before* the generator runs (g = 1 for every other recording), so
|g x + delta| <= FULL_SCALE always, also after 16-bit writing. The gain travels with the protected
file (the recipe's utt2gain, the user command's provenance); restore divides by it, which undoes
the scaling exactly: restore(protect(x)) = (g x + delta + delta') / g, and only the remover's
residual delta + delta' (divided by g) is left.
"""
from __future__ import annotations

import numpy as np
import torch

from speechlib.nn.ssed import SSED

FULL_SCALE = 32767 / 32768  # the largest 16-bit sample value


def headroom_gain(signal: np.ndarray, eps: float, full_scale: float = FULL_SCALE) -> float:
    """The gain g <= 1 that keeps |g x| + eps within full scale (1.0 when it already is)."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    limit = full_scale - eps
    return 1.0 if peak <= limit else limit / peak


@torch.no_grad()
def run_ssed(model: SSED, signal: np.ndarray) -> np.ndarray:
    """x -> x + eps * n * m for one utterance (float32 in, float32 out)."""
    return model(torch.from_numpy(np.asarray(signal, np.float32)).unsqueeze(0)).wav[0].numpy()


def protect_signal(generator: SSED, signal: np.ndarray) -> tuple[np.ndarray, float]:
    """(protected signal, headroom gain): never beyond full scale."""
    gain = headroom_gain(signal, generator.eps)
    scaled = np.asarray(signal, np.float32) if gain == 1.0 else (np.asarray(signal, np.float64) * gain).astype(np.float32)
    return run_ssed(generator, scaled), gain


def restore_signal(remover: SSED, protected: np.ndarray, gain: float) -> np.ndarray:
    """Remove the perturbation, then undo the headroom gain."""
    restored = run_ssed(remover, protected)
    return restored if gain == 1.0 else (restored.astype(np.float64) / gain).astype(np.float32)
