"""Speaker embedding models: the white-box ECAPA-TDNN, a black-box x-vector, and their training.

`SpeakerEncoder` takes waveforms and returns embeddings, differentiably (the perturbation
generator is trained through it). `load_pretrained` reads a local SpeechBrain model directory
(hyperparams.yaml + embedding_model.ckpt, as in speechbrain/spkrec-ecapa-voxceleb) because hub
downloads are not possible here; `save_pretrained` writes our own models in that same layout,
so both kinds load through one path.

Training follows SpeechBrain's VoxCeleb recipe in kind: random crops, 80 log-mel filterbanks
with per-sentence mean normalisation, additive angular margin softmax (margin 0.2, scale 30),
and on-the-fly noise and reverberation augmentation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from speechlib.io.errors import InputError
from speechlib.io.inference import equal_length_batches
from speechlib.signal.mixing import fit_length, scale_to_snr


class SpeakerEncoder(nn.Module):
    """Waveform (batch, time) + relative lengths -> embeddings (batch, dim)."""

    def __init__(self, embedding_model: nn.Module, n_mels: int = 80, sample_rate: int = 16000):
        super().__init__()
        from speechbrain.lobes.features import Fbank
        from speechbrain.processing.features import InputNormalization

        self.compute_features = Fbank(sample_rate=sample_rate, n_mels=n_mels)
        self.mean_var_norm = InputNormalization(norm_type="sentence", std_norm=False)
        self.embedding_model = embedding_model
        self.n_mels = n_mels

    def forward(self, wavs: torch.Tensor, lens: torch.Tensor | None = None) -> torch.Tensor:
        if lens is None:
            lens = torch.ones(wavs.shape[0], device=wavs.device)
        feats = self.compute_features(wavs)
        feats = self.mean_var_norm(feats, lens)
        if float(lens.min()) < 1.0:  # padded frames: log(0) features would leak into the convolutions
            frames = torch.arange(feats.shape[1], device=feats.device)
            valid = frames[None, :] < torch.round(lens * feats.shape[1])[:, None]
            feats = feats * valid.unsqueeze(-1)
        return self.embedding_model(feats, lens).squeeze(1)


def build_ecapa(n_mels: int = 80, channels: int = 512, embedding_dim: int = 192) -> nn.Module:
    """ECAPA-TDNN (speechbrain.lobes.models.ECAPA_TDNN); `channels` sets the width of every block."""
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    return ECAPA_TDNN(n_mels, lin_neurons=embedding_dim, channels=[channels] * 4 + [3 * channels],
                      attention_channels=min(128, channels // 2), se_channels=min(128, channels // 2))


def build_xvector(n_mels: int = 80, channels: int = 512, embedding_dim: int = 512) -> nn.Module:
    """The black-box model: a TDNN x-vector (statistics pooling, no attention, no Res2Net)."""
    from speechbrain.lobes.models.Xvector import Xvector

    return Xvector(in_channels=n_mels, tdnn_channels=[channels] * 4 + [3 * channels], lin_neurons=embedding_dim)


ARCHITECTURES = {"ecapa": build_ecapa, "xvector": build_xvector}


def build_encoder(architecture: str, n_mels: int, channels: int, embedding_dim: int) -> SpeakerEncoder:
    if architecture not in ARCHITECTURES:
        raise InputError(f"unknown speaker architecture '{architecture}' (known: {', '.join(ARCHITECTURES)})")
    return SpeakerEncoder(ARCHITECTURES[architecture](n_mels, channels, embedding_dim), n_mels)


class AAMSoftmaxHead(nn.Module):
    """Cosine classifier + additive angular margin softmax (SpeechBrain's VoxCeleb recipe loss)."""

    def __init__(self, embedding_dim: int, num_speakers: int, margin: float = 0.2, scale: float = 30.0):
        super().__init__()
        from speechbrain.lobes.models.ECAPA_TDNN import Classifier
        from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

        self.classifier = Classifier(embedding_dim, lin_neurons=embedding_dim, out_neurons=num_speakers)
        self.loss = LogSoftmaxWrapper(AdditiveAngularMargin(margin=margin, scale=scale))

    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, cosine logits) for (batch, dim) embeddings and (batch,) speaker indices."""
        cosines = self.classifier(embeddings.unsqueeze(1))
        loss = self.loss(cosines, targets.unsqueeze(1))
        return loss, cosines.squeeze(1)


class Augmenter:
    """Additive noise at a random SNR and reverberation by a synthetic room impulse response.

    Real RIR sets are not in the mini corpus, so impulse responses are exponentially decaying
    Gaussian noise with a random RT60 (a standard synthetic stand-in); noise clips come from a
    list of arrays (the mini corpus's noise pool, or MUSAN when provided).
    """

    def __init__(self, noises: list[np.ndarray], snr_range: tuple[float, float] = (0.0, 15.0),
                 noise_prob: float = 0.5, reverb_prob: float = 0.3, rt60_range: tuple[float, float] = (0.2, 0.8),
                 sample_rate: int = 16000, seed: int = 0):
        self.noises = [n for n in noises if n.size > 0 and float(np.abs(n).max()) > 1e-4]
        self.snr_range, self.noise_prob, self.reverb_prob = snr_range, noise_prob, reverb_prob
        self.rt60_range, self.sample_rate = rt60_range, sample_rate
        self.rng = np.random.default_rng(seed)

    def rir(self) -> np.ndarray:
        rt60 = self.rng.uniform(*self.rt60_range)
        t = np.arange(int(rt60 * self.sample_rate)) / self.sample_rate
        response = self.rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
        response[0] = 1.0
        return (response / np.linalg.norm(response)).astype(np.float32)

    def __call__(self, wavs: torch.Tensor) -> torch.Tensor:
        from scipy.signal import fftconvolve

        batch = wavs.detach().cpu().numpy().astype(np.float32)
        for row in range(batch.shape[0]):
            if self.rng.random() < self.reverb_prob:
                wet = fftconvolve(batch[row], self.rir())[: batch.shape[1]]
                batch[row] = wet * (np.abs(batch[row]).max() / max(np.abs(wet).max(), 1e-8))
            if self.noises and self.rng.random() < self.noise_prob:
                noise = fit_length(self.noises[self.rng.integers(len(self.noises))], batch.shape[1], self.rng)
                batch[row] = batch[row] + scale_to_snr(batch[row], noise, self.rng.uniform(*self.snr_range))
        return torch.from_numpy(batch).to(wavs.device)


def random_crops(wavs: torch.Tensor, lens: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    """One random `crop`-sample window per utterance (shorter ones are tiled), as the
    VoxCeleb recipe trains on fixed-length chunks."""
    out = torch.empty(wavs.shape[0], crop, dtype=wavs.dtype)
    for row in range(wavs.shape[0]):
        valid = wavs[row, : max(1, int(round(float(lens[row]) * wavs.shape[1])))]
        if valid.numel() < crop:
            valid = valid.repeat(crop // valid.numel() + 1)
        start = int(torch.randint(0, valid.numel() - crop + 1, (1,), generator=generator))
        out[row] = valid[start:start + crop]
    return out


PRETRAINED_YAML = """# Written by speechlib.nn.speaker.save_pretrained (SpeechBrain's pretrained-model layout)
n_mels: {n_mels}
architecture: {architecture}
channels: {channels}
embedding_dim: {embedding_dim}
embedding_model: !new:{target}
{args}
"""


def save_pretrained(encoder: SpeakerEncoder, directory: str | Path, architecture: str, channels: int,
                    embedding_dim: int) -> None:
    """hyperparams.yaml + embedding_model.ckpt, loadable by `load_pretrained` and hyperpyyaml."""
    from speechlib.io.atomic import atomic_path, atomic_write_text

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_mels = encoder.n_mels
    if architecture == "ecapa":
        target = "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN"
        args = (f"  input_size: {n_mels}\n  lin_neurons: {embedding_dim}\n"
                f"  channels: [{channels}, {channels}, {channels}, {channels}, {3 * channels}]\n"
                f"  attention_channels: {min(128, channels // 2)}\n  se_channels: {min(128, channels // 2)}")
    else:
        target = "speechbrain.lobes.models.Xvector.Xvector"
        args = (f"  in_channels: {n_mels}\n  lin_neurons: {embedding_dim}\n"
                f"  tdnn_channels: [{channels}, {channels}, {channels}, {channels}, {3 * channels}]")
    atomic_write_text(directory / "hyperparams.yaml",
                      PRETRAINED_YAML.format(n_mels=n_mels, architecture=architecture, channels=channels,
                                             embedding_dim=embedding_dim, target=target, args=args))
    with atomic_path(directory / "embedding_model.ckpt") as tmp:
        torch.save(encoder.embedding_model.state_dict(), tmp)


def load_pretrained(directory: str | Path) -> SpeakerEncoder:
    """A local SpeechBrain speaker model: `embedding_model` from hyperparams.yaml, weights from
    embedding_model.ckpt. Keys the hub version needs for downloading (pretrainer, label encoder)
    are tolerated and ignored; n_mels is read from the yaml (80 when absent, as in SpeechBrain's)."""
    from hyperpyyaml import load_hyperpyyaml

    directory = Path(directory)
    yaml_path, ckpt = directory / "hyperparams.yaml", directory / "embedding_model.ckpt"
    for path in (yaml_path, ckpt):
        if not path.is_file():
            raise InputError("pretrained speaker model: file missing (need hyperparams.yaml and "
                             "embedding_model.ckpt)", str(path))
    with open(yaml_path, encoding="utf-8") as handle:
        try:
            hparams = load_hyperpyyaml(handle, overrides={"pretrained_path": str(directory)}
                                       if "pretrained_path" in yaml_path.read_text() else None)
        except Exception as err:  # hyperpyyaml raises many types for a bad file
            raise InputError(f"cannot read the model definition: {err}", str(yaml_path)) from None
    if "embedding_model" not in hparams:
        raise InputError("no 'embedding_model' key", str(yaml_path))
    model = hparams["embedding_model"]
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # a state dict: never run code
    model.load_state_dict(state)
    return SpeakerEncoder(model, int(hparams.get("n_mels", 80))).eval()


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients for the weights (gradients still flow to the input)."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


@torch.no_grad()
def embed_batched(encoder: SpeakerEncoder, signals: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """Embeddings of many utterances, in input order. Only utterances of equal length share a batch
    (nothing is zero-padded), so each embedding equals the utterance's embedding alone."""
    out: list[np.ndarray | None] = [None] * len(signals)
    for chunk in equal_length_batches([len(s) for s in signals], batch_size):
        wavs = torch.from_numpy(np.stack([np.asarray(signals[i], np.float32) for i in chunk]))
        emb = encoder(wavs, torch.ones(len(chunk))).cpu().numpy()
        for row, index in enumerate(chunk):
            out[index] = emb[row]
    return np.stack(out)  # type: ignore[arg-type]
