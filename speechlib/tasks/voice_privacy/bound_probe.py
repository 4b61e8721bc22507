"""What the spectral bound allows (README, "The spectral bound"), on a few evaluation utterances:

    python -m speechlib.tasks.voice_privacy.bound_probe --speaker exp/mini_voice_privacy/speaker_white \
        --data data/test-clean --rho 0.1 0.25 --utts 6

For each bound rho, per utterance (its first 4 s):
- *noise at the bound*: random-phase noise with |D| = rho |X| in every STFT bin, against white
  Gaussian noise of the same SNR: SNR and PESQ of both (how audible the bound's worst case is);
- *optimised at the bound*: a perturbation optimised for this one utterance against the white box
  (Adam on the raw perturbation, `--steps`), passed through the same bound as the generator's:
  cosine to the recording's embedding, SNR, PESQ. This is an upper reference for what a generator
  trained under the bound could reach, not a protection method (no remover, one utterance at a time).
Prints one line per utterance and the means.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.enhancement import pesq_wb
from speechlib.nn.speaker import freeze, load_pretrained
from speechlib.nn.ssed import under_spectrum
from speechlib.signal.mixing import snr_db
from speechlib.tasks.voice_privacy.losses import angular_loss
from speechlib.tasks.voice_privacy.quality import mos_lqo_to_raw

RATE = 16000


def pesq_raw(reference: np.ndarray, test: np.ndarray) -> float:
    return mos_lqo_to_raw(pesq_wb(test, reference, RATE))


def noise_at_bound(x: np.ndarray, rho: float, window: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
    """Random-phase noise with |D(t, f)| = rho |X(t, f)| in every bin."""
    n_fft = window.shape[0]
    spec = torch.stft(torch.from_numpy(x), n_fft, n_fft // 4, window=window, return_complex=True)
    phase = torch.from_numpy(rng.uniform(0, 2 * np.pi, spec.shape)).float()
    return torch.istft(rho * spec.abs() * torch.exp(1j * phase), n_fft, n_fft // 4, window=window,
                       length=len(x)).numpy()


def optimised_at_bound(speaker, x: np.ndarray, rho: float, window: torch.Tensor, eps: float,
                       steps: int, lr: float) -> tuple[np.ndarray, float]:
    """(perturbation, cosine) of an Adam-optimised perturbation for one utterance, under the bound."""
    wav = torch.from_numpy(x)[None]
    with torch.no_grad():
        target = speaker(wav)
    raw = (0.01 * torch.randn_like(wav)).requires_grad_(True)
    optimiser = torch.optim.Adam([raw], lr=lr)
    for _ in range(steps):
        loss = angular_loss(target, speaker(wav + under_spectrum(raw, wav, rho, window, eps))).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        delta = under_spectrum(raw, wav, rho, window, eps)
        cosine = float(angular_loss(target, speaker(wav + delta)).mean())
    return delta[0].numpy(), cosine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speaker", required=True, help="white-box speaker model dir (SpeechBrain layout)")
    parser.add_argument("--data", required=True, help="a data dir (wav.scp); every Nth utterance is used")
    parser.add_argument("--rho", type=float, nargs="+", default=[0.25])
    parser.add_argument("--utts", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    speaker = freeze(load_pretrained(args.speaker))
    window = torch.hann_window(512)
    scp = sorted(read_dict(f"{args.data}/wav.scp").items())
    chosen = scp[:: max(1, len(scp) // args.utts)][: args.utts]
    signals = {utt: load_audio(spec, RATE, utt=utt)[0][: int(args.seconds * RATE)] for utt, spec in chosen}
    for rho in args.rho:
        rows = []
        for utt, x in signals.items():
            shaped = noise_at_bound(x, rho, window, rng)
            snr = float(snr_db(x, shaped))
            white = rng.standard_normal(len(x)).astype(np.float32)
            white *= np.sqrt(np.sum(shaped**2) / np.sum(white**2))
            delta, cosine = optimised_at_bound(speaker, x, rho, window, args.eps, args.steps, args.lr)
            rows.append((snr, pesq_raw(x, x + shaped), pesq_raw(x, x + white),
                         cosine, float(snr_db(x, delta)), pesq_raw(x, x + delta)))
            print(f"rho {rho} {utt}: " + " ".join(f"{v:.3f}" for v in rows[-1]), flush=True)
        means = np.nanmean(np.array(rows), axis=0)
        print(f"rho {rho}, means over {len(rows)} utterances: noise at the bound SNR {means[0]:.1f} dB, PESQ "
              f"{means[1]:.2f} (white noise at that SNR: {means[2]:.2f}); optimised at the bound: cosine "
              f"{means[3]:.3f}, SNR {means[4]:.1f} dB, PESQ {means[5]:.2f}", flush=True)


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.bound_probe", main)
