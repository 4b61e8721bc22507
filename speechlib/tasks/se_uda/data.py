"""Training data of egs/se_uda: mixtures drawn on the fly, and the loaders the Brains use."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from speechlib.io.kaldi import read_dict
from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.tasks.se_uda.mix import AudioCache, speech_entries


class RemixedMixtures(torch.utils.data.Dataset):
    """Training mixtures drawn on the fly: `count` per epoch, each a random segment of a random
    utterance plus a random noise clip at a random SNR, from the generator seeded by
    (seed, epoch, index). A new draw every epoch gives many more distinct mixtures than a fixed
    set for the same disk and time; the draw is reproducible (a resumed epoch sees the same
    mixtures) and every DDP process draws the same item for the same index. `frozen` keeps
    epoch 0 forever (a fixed pool, e.g. the source samples that SRST ranks).
    Items: `id`, `sig` (mixture) and, with refs, `speech_sig`, `noise_sig`."""

    def __init__(self, speech_dir: str | Path, noise_dir: str | Path, count: int, seconds: float,
                 snr_range: tuple[float, float], sample_rate: int, seed: int, with_refs: bool,
                 tag: str, policy: str = "error", frozen: bool = False, cache_mb: float = 1000.0):
        self.speech = speech_entries(Path(speech_dir))
        self.noise = sorted(read_dict(Path(noise_dir) / "wav.scp").items())
        self.count, self.length = int(count), int(seconds * sample_rate)
        self.snr_range, self.seed, self.with_refs, self.tag = tuple(snr_range), int(seed), with_refs, tag
        self.frozen, self.epoch = frozen, 0
        self.load = AudioCache(sample_rate, policy, cache_mb)

    def __len__(self) -> int:
        return self.count

    def set_epoch(self, epoch: int) -> None:
        if not self.frozen:
            self.epoch = int(epoch)

    def ids(self) -> list[str]:
        return [f"{self.tag}{i:06d}" for i in range(self.count)]

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        utt, _, path = self.speech[int(rng.integers(len(self.speech)))]
        noise_id, noise_path = self.noise[int(rng.integers(len(self.noise)))]
        clean = fit_length(self.load(utt, path), self.length, rng, pad="zeros")
        bed = fit_length(self.load(noise_id, noise_path), self.length, rng, pad="tile")
        mixture, clean, bed = mix_at_snr(clean[None], bed[None], rng.uniform(*self.snr_range))
        item = {"id": f"{self.tag}{index:06d}", "sig": torch.from_numpy(mixture[0])}
        if self.with_refs:
            item.update(speech_sig=torch.from_numpy(clean[0]), noise_sig=torch.from_numpy(bed[0]))
        return item


def make_loader(dataset, batch_size: int, shuffle: bool = True, num_workers: int = 0):
    """A DataLoader of PaddedBatch-es over any dataset (fixed data dir or on the fly)."""
    from speechbrain.dataio.batch import PaddedBatch
    from speechbrain.dataio.dataloader import make_dataloader

    return make_dataloader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                           collate_fn=PaddedBatch)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module itself when DDP wraps it (for methods other than forward)."""
    return module.module if hasattr(module, "module") else module
