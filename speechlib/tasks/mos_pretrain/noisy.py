"""Noisy pre-training examples drawn afresh every epoch, and stage 1 of egs/mos_pretrain.

`DrawPlan.example(index, epoch)` is the one place a pre-training example is made: a new
`chunk_seconds` crop of utterance `index`, and for noisy systems a condition (SNR -5/0/5/10/15 dB
or clean, equally often within each epoch; the noise categories equally often among the noisy
ones), a clip of that category and a random segment of it (looped when shorter). Everything is
drawn from a generator seeded by (seed, epoch, index), so an epoch is reproducible and every
epoch differs. The labels come from the mixture actually made: the SNR class of the SNR used,
the clip's category, and the region of the scaled noise segment that was added.

Stage 1 (`python -m speechlib.tasks.mos_pretrain.noisy conf.yaml ...`) writes, from the same
plans: the label histograms of every pre-training epoch (data/<tag>/pretrain_labels.json, printed
in RESULTS.md) and the linear-probe sets probe_{train,test}: fixed noisy chunks of the held-out
pretrain_eval utterances (split by utterance) with their SNR, category and region labels.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from speechlib.data.writer import spk2utt_from
from speechlib.io.atomic import atomic_directory, atomic_write_text
from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.signal.mixing import fit_length
from speechlib.signal.noise_labels import (CATEGORY_CLASSES, REGION_CLASSES, SNR_CLASSES, balanced_conditions,
                                           category_class, noisy_example)
from speechlib.tasks.mos_pretrain.systems import fingerprint
from speechlib.tasks.stage import start_stage

LABEL_KEYS = ("snr", "category", "region")
LABEL_CLASSES = {"snr": SNR_CLASSES, "category": CATEGORY_CLASSES, "region": REGION_CLASSES}


class DrawPlan:
    """The pre-training examples of one data split for every epoch (see the module docstring)."""

    def __init__(self, speech: dict[str, str], noise_wavs: dict[str, str], noise_cats: dict[str, str],
                 sample_rate: int, chunk_seconds: float, seed: int, noisy: bool):
        self.utts = sorted(speech)
        self.speech, self.sample_rate, self.seed, self.noisy = speech, sample_rate, int(seed), noisy
        self.length = int(chunk_seconds * sample_rate)
        self.noise_wavs = noise_wavs
        self.by_cat: dict[str, list[str]] = {}
        for clip, cat in sorted(noise_cats.items()):
            self.by_cat.setdefault(cat, []).append(clip)
        self.noise_cats = noise_cats
        self._conditions: dict[int, list] = {}
        self._load_noise = lru_cache(maxsize=1024)(self._read_noise)

    @classmethod
    def from_data(cls, data: Path, split: str, hp: dict, seed: int, noisy: bool) -> "DrawPlan":
        return cls(read_dict(data / f"pretrain_{split}" / "wav.scp"), read_dict(data / "noise_train" / "wav.scp"),
                   read_dict(data / "noise_train" / "utt2category"), hp["sample_rate"], hp["chunk_seconds"],
                   seed, noisy)

    def __len__(self) -> int:
        return len(self.utts)

    def _read_noise(self, clip: str) -> np.ndarray:
        return load_audio(self.noise_wavs[clip], self.sample_rate, utt=clip, on_rate_mismatch="resample")[0]

    def rng(self, epoch: int, index: int | None = None, stream: int = 0) -> np.random.Generator:
        """Generator of (epoch, utterance index, stream); index None: the epoch's own (conditions)."""
        key = [self.seed, int(epoch)] if index is None else [self.seed, int(epoch), int(index), int(stream)]
        return np.random.default_rng(key)

    def conditions(self, epoch: int) -> list[tuple[float | None, str | None]]:
        """(SNR, category) of every utterance in `epoch`: balanced, shuffled anew each epoch."""
        if epoch not in self._conditions:
            self._conditions[epoch] = balanced_conditions(len(self.utts), self.rng(epoch), sorted(self.by_cat))
        return self._conditions[epoch]

    def example(self, index: int, epoch: int) -> tuple[np.ndarray, np.ndarray, dict[str, int], str]:
        """(input signal, clean crop, labels {snr, category, region}, description)."""
        rng = self.rng(epoch, index)
        utt = self.utts[index]
        clean = fit_length(load_audio(self.speech[utt], self.sample_rate, utt=utt)[0], self.length, rng, pad="zeros")
        snr, cat = self.conditions(epoch)[index] if self.noisy else (None, None)
        clip = None if cat is None else self.by_cat[cat][int(rng.integers(len(self.by_cat[cat])))]
        signal, labels = noisy_example(clean, None if clip is None else self._load_noise(clip), snr, rng,
                                       self.sample_rate, clip or "")
        labels["category"] = category_class(cat)
        return signal, clean, labels, "clean" if clip is None else f"{clip}@{snr}dB"


class PretrainDataset(torch.utils.data.Dataset):
    """Map-style dataset over a DrawPlan; `epoch` is set by the trainer before each epoch."""

    def __init__(self, plan: DrawPlan, transform=None, epoch: int = 0):
        self.plan, self.transform, self.epoch = plan, transform, epoch

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict:
        signal, clean, labels, _ = self.plan.example(index, self.epoch)
        item = {"id": self.plan.utts[index], "inp": signal, "target": clean, **labels}
        return self.transform(item, self.plan.rng(self.epoch, index, stream=1)) if self.transform else item


def label_histograms(plan: DrawPlan, epochs: int) -> dict[str, list[int]]:
    """Counts of every class of every label over `epochs` epochs of a plan (the real draws)."""
    counts = {key: [0] * LABEL_CLASSES[key] for key in LABEL_KEYS}
    for epoch in range(1, epochs + 1):
        for index in range(len(plan)):
            labels = plan.example(index, epoch)[2]
            for key in LABEL_KEYS:
                counts[key][labels[key]] += 1
    return counts


def write_probe_sets(plan: DrawPlan, draws: int, data: Path) -> dict[str, int]:
    """probe_train / probe_test: `draws` noisy chunks per held-out utterance (epochs 1..draws of the
    plan), utterances split in halves so no speech is shared between the two."""
    order = np.random.default_rng(plan.seed).permutation(len(plan))
    halves = {"probe_train": sorted(order[: len(plan) // 2]), "probe_test": sorted(order[len(plan) // 2:])}
    counts = {}
    for name, indices in halves.items():
        tables: dict[str, dict[str, str]] = {k: {} for k in ("wav.scp", "utt2spk", "utt2snr", "utt2category",
                                                             "utt2region", "utt2noise")}
        with atomic_directory(data / name) as folder:
            for index in tqdm(indices, desc=name, leave=False, disable=None):
                for epoch in range(1, draws + 1):
                    signal, _, labels, desc = plan.example(int(index), epoch)
                    key = f"{plan.utts[index]}-d{epoch}"
                    write_audio(folder / "wav" / f"{key}.wav", signal, plan.sample_rate)
                    tables["wav.scp"][key] = str((data / name / "wav" / f"{key}.wav").resolve())
                    tables["utt2spk"][key] = key
                    tables["utt2noise"][key] = desc
                    for label in LABEL_KEYS:
                        tables[f"utt2{label}"][key] = str(labels[label])
            for table, values in tables.items():
                write_table(folder / table, values)
            write_table(folder / "spk2utt", spk2utt_from(tables["utt2spk"]))
        counts[name] = len(tables["wav.scp"])
    return counts


def main() -> None:
    stage = start_stage("noisy")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    outputs = (data / "pretrain_labels.json", data / "probe_train" / "utt2snr", data / "probe_test" / "utt2snr")
    stage.fingerprint = fingerprint(hp["seed"], hp["data_folder"], hp["chunk_seconds"], hp["probe_draws"],
                                    hp["pretrain"]["epochs"], hp["sample_rate"],
                                    *(read_dict(data / p / "wav.scp") for p in ("pretrain_train", "pretrain_eval",
                                                                                 "noise_train")))
    if stage.is_done(outputs):
        print(f"noisy: {data}/pretrain_labels.json and probe sets are up to date")
        return
    train = DrawPlan.from_data(data, "train", hp, hp["seed"], noisy=True)
    histograms = label_histograms(train, int(hp["pretrain"]["epochs"]))
    probe = DrawPlan.from_data(data, "eval", hp, hp["seed"] + 1000, noisy=True)
    counts = write_probe_sets(probe, int(hp["probe_draws"]), data)
    atomic_write_text(data / "pretrain_labels.json", json.dumps(
        {"epochs": int(hp["pretrain"]["epochs"]), "utterances": len(train), "histograms": histograms,
         "probe_counts": counts}, indent=1) + "\n")
    stage.mark_done()
    print(f"noisy: label histograms over {hp['pretrain']['epochs']} epoch(s) x {len(train)} utterances: "
          + "; ".join(f"{k} {v}" for k, v in histograms.items()) + f"; probe sets {counts}")


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.noisy", main)
