"""A SIMULATED listener panel for the mini MUSHRA tests (no real listener rated these files).

Latent quality of a condition (0-100), from a documented model that looks at the condition's
*recipe* (codec, bitrate, mono or stereo, anchor cut-off) and at two properties measured on the
*reference* excerpt; it never compares the coded signal with the reference, so it is not an
objective metric, and certainly not ViSQOL or any system this recipe scores:

- codec rate-quality curve: q = 100 / (1 + exp(-slope (log2 r - log2 r50))), r the bitrate per
  coded channel; r50 (the per-channel rate rated 50) and the slope per codec are hand-set, shaped
  after the usual ordering of public multi-codec listening tests at 48 kHz (Opus best at low
  rates, then Vorbis, AAC-LC, MP3) -- illustrative, not fitted to any test;
- criticality c in [0, 1] of the excerpt: mean of tanh(share of energy above 5 kHz / 0.1)
  (bright items expose bandwidth limits) and tanh(spectral flux / 2) (transients expose
  pre-echo); the impairment 100 - q is scaled by 0.6 + 0.8 c;
- mono conditions played as dual mono lose the stereo image: minus 40 w, w = side energy /
  (mid + side energy) of the reference;
- low-pass anchors: 45 (3.5 kHz) or 72 (7 kHz) minus 25 tanh(energy share above the cut-off /
  0.05); the hidden reference is 100;
- an item-specific residual N(0, residual_sd) that no feature explains.

Listener k: bias b_k ~ N(0, bias_sd), slope g_k = exp(N(0, slope_sd)), noise gain m_k ~ U(0.7, 1.3);
score = clip(100 - g_k (100 - q) + b_k (100 - q) / 100 + m_k sigma(q, c) e, 0, 100), rounded
(the bias acts on the impairment: the hidden reference stays near 100), with the
disagreement sigma(q, c) = noise_sd (0.4 + q (100 - q) / 2500) (1 + 0.5 c): listeners agree at the
ends of the scale and on easy items, disagree in the middle -- so the CI varies by item and
there is something for a CI predictor to learn. A share of careless listeners score uniformly
at random or everything high; BS.1534-3 post-screening must remove them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE_CURVES = {  # codec: (r50 in kb/s per channel, slope per octave)
    "opus": (9.0, 1.7),
    "vorbis": (13.0, 1.6),
    "aac": (17.0, 1.6),
    "mp3": (21.0, 1.5),
}
ANCHOR_BASE = {3500: 45.0, 7000: 72.0}


@dataclass(frozen=True)
class Condition:
    """One MUSHRA condition: the hidden reference, a low-pass anchor, or a codec at a bitrate."""

    name: str
    kind: str  # "reference", "anchor" or "codec"
    codec: str = ""
    kbps: float = 0.0
    mono: bool = False
    cutoff: float = 0.0

    @staticmethod
    def parse(spec: str) -> "Condition":
        """'reference', 'lp35', 'lp70', or '<codec>_<kbps>[_mono]' (e.g. 'aac_64', 'opus_16_mono')."""
        if spec == "reference":
            return Condition(spec, "reference")
        if spec.startswith("lp") and spec[2:].isdigit():
            return Condition(spec, "anchor", cutoff=float(spec[2:]) * 100)
        parts = spec.split("_")
        if parts[0] not in RATE_CURVES or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "mono"):
            raise ValueError(f"bad condition '{spec}' (reference, lp35, lp70, <codec>_<kbps>[_mono])")
        return Condition(spec, "codec", parts[0], float(parts[1]), len(parts) == 3)


@dataclass(frozen=True)
class ExcerptTraits:
    """What the latent model measures on a reference excerpt."""

    criticality: float
    width: float
    hf_share: dict  # cut-off Hz -> energy share above it


def excerpt_traits(reference: np.ndarray, sample_rate: int) -> ExcerptTraits:
    """Criticality, stereo width and high-frequency energy shares of a (samples, 2) excerpt."""
    mid, side = reference.mean(axis=1), (reference[:, 0] - reference[:, 1]) / 2
    frame = 2048
    frames = mid[: mid.size // frame * frame].reshape(-1, frame) * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1 / sample_rate)
    total = power.sum() + 1e-12
    share = {fc: float(power[:, freqs > fc].sum() / total) for fc in (3500, 5000, 7000)}
    log_power = np.log10(power + 1e-10)
    flux = float(np.mean(np.maximum(np.diff(log_power, axis=0), 0).mean(axis=1))) if len(power) > 1 else 0.0
    criticality = 0.5 * math.tanh(share[5000] / 0.1) + 0.5 * math.tanh(flux / 2)
    width = float(np.sum(side ** 2) / (np.sum(mid ** 2) + np.sum(side ** 2) + 1e-12))
    return ExcerptTraits(criticality, width, share)


def latent_quality(condition: Condition, traits: ExcerptTraits) -> float:
    """The panel's latent quality of a condition on an excerpt (see the module docstring)."""
    if condition.kind == "reference":
        return 100.0
    if condition.kind == "anchor":
        return ANCHOR_BASE[int(condition.cutoff)] - 25 * math.tanh(traits.hf_share[int(condition.cutoff)] / 0.05)
    r50, slope = RATE_CURVES[condition.codec]
    per_channel = condition.kbps if condition.mono else condition.kbps / 2
    q = 100 / (1 + math.exp(-slope * (math.log2(per_channel) - math.log2(r50))))
    q = 100 - (100 - q) * (0.6 + 0.8 * traits.criticality)
    if condition.mono:
        q -= 40 * traits.width
    return float(np.clip(q, 0, 100))


@dataclass(frozen=True)
class PanelModel:
    bias_sd: float = 4.0
    slope_sd: float = 0.12
    noise_sd: float = 8.0
    residual_sd: float = 3.0
    careless_share: float = 0.15


def simulate_panel(latent: np.ndarray, criticality: np.ndarray, trial_index: np.ndarray, listeners: int,
                   model: PanelModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scores (items, listeners) of one test and which listeners are careless.

    latent, criticality: per item; trial_index: the item's trial (careless listeners act per trial).
    """
    items = latent.size
    q = np.clip(latent + rng.normal(0, model.residual_sd, items) * (latent < 100), 0, 100)
    bias = rng.normal(0, model.bias_sd, listeners)
    slope = np.exp(rng.normal(0, model.slope_sd, listeners))
    gain = rng.uniform(0.7, 1.3, listeners)
    sigma = model.noise_sd * (0.4 + q * (100 - q) / 2500) * (1 + 0.5 * criticality)
    noise = rng.standard_normal((items, listeners))
    scores = 100 - (100 - q[:, None]) * (slope - bias / 100) + gain * sigma[:, None] * noise
    careless = rng.random(listeners) < model.careless_share
    for k in np.flatnonzero(careless):
        if rng.random() < 0.5:
            scores[:, k] = rng.uniform(0, 100, items)           # random clicking
        else:
            scores[:, k] = rng.uniform(80, 100, trial_index.max() + 1)[trial_index]  # everything "good"
    return np.clip(np.round(scores), 0, 100), careless
