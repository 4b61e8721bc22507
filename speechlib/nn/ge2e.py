"""A speaker model that is really someone else's: resemblyzer's pretrained GE2E encoder.

resemblyzer (PyPI, weights `pretrained.pt` inside the wheel, so it works offline) ships a 3-layer
LSTM trained with the generalised end-to-end loss on thousands of speakers (VoxCeleb1+2 and
LibriSpeech other). The voice-privacy recipe uses it as a black-box ASV: neither its architecture
nor its training data is known to the perturbation generator.

Embeddings follow resemblyzer's own recipe (volume normalisation to -30 dBFS and VAD trimming
of long silences, 40-channel mel frames, 1.6 s partials at 1.3 per second, the L2-normalised mean
of the partial embeddings); only the batching differs: the partials of many utterances go through
the LSTM together, which gives the same embeddings faster.
"""
from __future__ import annotations

import numpy as np
import torch

class GE2EEncoder:
    """resemblyzer.VoiceEncoder on CPU behind `embed(signals) -> (n, 256)`."""

    def __init__(self, device: str = "cpu", partial_rate: float = 1.3, min_coverage: float = 0.75,
                 batch_partials: int = 128):
        from resemblyzer import VoiceEncoder

        self.model = VoiceEncoder(device, verbose=False)
        self.partial_rate, self.min_coverage, self.batch_partials = partial_rate, min_coverage, batch_partials

    def partials(self, signal: np.ndarray) -> np.ndarray:
        """(n_partials, frames, mels) of one 16 kHz utterance, preprocessed as resemblyzer does."""
        from resemblyzer import preprocess_wav
        from resemblyzer.audio import wav_to_mel_spectrogram

        wav = preprocess_wav(np.asarray(signal, np.float32))
        if wav.size == 0:  # the VAD removed everything: use the signal as it is
            wav = np.asarray(signal, np.float32)
        wav_slices, mel_slices = self.model.compute_partial_slices(len(wav), self.partial_rate, self.min_coverage)
        if wav_slices[-1].stop > len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        mel = wav_to_mel_spectrogram(wav)
        return np.stack([mel[s] for s in mel_slices])

    @torch.no_grad()
    def embed(self, signals: list[np.ndarray]) -> np.ndarray:
        """Unit-norm embeddings of 16 kHz utterances, in input order."""
        owners, chunks = [], []
        for index, signal in enumerate(signals):
            partial = self.partials(signal)
            owners += [index] * len(partial)
            chunks.append(partial)
        mels = np.concatenate(chunks)
        partial_embeddings = np.concatenate([
            self.model(torch.from_numpy(mels[start:start + self.batch_partials])).numpy()
            for start in range(0, len(mels), self.batch_partials)])
        sums = np.zeros((len(signals), partial_embeddings.shape[1]))
        np.add.at(sums, np.asarray(owners), partial_embeddings)
        counts = np.bincount(owners, minlength=len(signals))[:, None]
        means = sums / counts
        return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)
