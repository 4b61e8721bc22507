"""Stage 1 of egs/mos_pretrain: the noisy pre-training set and its three noise labels.

Each pre-training utterance is cut to one `chunk_seconds` chunk (random offset; shorter ones
zero-padded) and gets a condition: one of the SNRs -5, 0, 5, 10, 15 dB or clean, equally often,
and for noisy ones a noise category, the categories equally often, then a random clip of that
category (looped when shorter than the chunk, random offset). Written twice:
data/pretrain_<split>_noisy (mixtures; utt2snr, utt2category, utt2region hold class indices) and
data/pretrain_<split>_clean (the same chunks without noise, all labels "clean"), which the PASE
baseline and PASE+ (clean data, as in the originals) train on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechlib.data.writer import spk2utt_from
from speechlib.io.atomic import atomic_directory
from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.signal.noise_labels import (balanced_conditions, category_class, noisy_example, snr_class,
                                            spectral_region)
from speechlib.tasks.stage import start_stage


def crop(signal: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    if signal.size >= length:
        start = int(rng.integers(signal.size - length + 1))
        return signal[start:start + length]
    return np.pad(signal, (0, length - signal.size))


def build(split: str, hp: dict, data: Path, seed: int) -> int:
    sr = hp["sample_rate"]
    length = int(hp["chunk_seconds"] * sr)
    rng = np.random.default_rng(seed)
    speech = read_dict(data / f"pretrain_{split}" / "wav.scp")
    utt2spk = read_dict(data / f"pretrain_{split}" / "utt2spk")
    noise_wav = read_dict(data / "noise_train" / "wav.scp")
    noise_cat = read_dict(data / "noise_train" / "utt2category")
    by_cat: dict[str, list[str]] = {}
    for clip, cat in sorted(noise_cat.items()):
        by_cat.setdefault(cat, []).append(clip)
    cache: dict[str, np.ndarray] = {}
    utts = sorted(speech)
    conditions = balanced_conditions(len(utts), rng, sorted(by_cat))
    tables: dict[str, dict[str, dict[str, str]]] = {"noisy": {}, "clean": {}}
    for kind in tables:
        tables[kind] = {"wav.scp": {}, "utt2spk": {}, "utt2snr": {}, "utt2category": {}, "utt2region": {},
                        "utt2noise": {}}
    with atomic_directory(data / f"pretrain_{split}_noisy") as noisy_dir, \
            atomic_directory(data / f"pretrain_{split}_clean") as clean_dir:
        for utt, (snr, cat) in tqdm(list(zip(utts, conditions)), desc=f"noisy {split}", leave=False):
            clean = crop(load_audio(speech[utt], sr, utt=utt)[0], length, rng)
            clip = None if cat is None else by_cat[cat][int(rng.integers(len(by_cat[cat])))]
            if clip is not None and clip not in cache:
                cache[clip] = load_audio(noise_wav[clip], sr, utt=clip, on_rate_mismatch="resample")[0]
            mixture, labels = noisy_example(clean, None if clip is None else cache[clip], snr, rng, sr, clip or "")
            for kind, signal, lab, folder in (("noisy", mixture, labels, noisy_dir),
                                              ("clean", clean, None, clean_dir)):
                final = data / f"pretrain_{split}_{kind}" / "wav" / f"{utt}.wav"
                write_audio(folder / "wav" / f"{utt}.wav", signal, sr)
                t = tables[kind]
                t["wav.scp"][utt] = str(final.resolve())
                t["utt2spk"][utt] = utt2spk[utt]
                if lab is None:
                    t["utt2snr"][utt], t["utt2region"][utt] = str(snr_class(None)), str(spectral_region(None, sr))
                    t["utt2category"][utt], t["utt2noise"][utt] = str(category_class(None)), "none"
                else:
                    t["utt2snr"][utt], t["utt2region"][utt] = str(lab["snr"]), str(lab["region"])
                    t["utt2category"][utt] = str(category_class(cat))
                    t["utt2noise"][utt] = f"{clip}@{snr}dB" if clip else "none"
        for kind, folder in (("noisy", noisy_dir), ("clean", clean_dir)):
            for name, table in tables[kind].items():
                write_table(folder / name, table)
            write_table(folder / "spk2utt", spk2utt_from(tables[kind]["utt2spk"]))
    return len(utts)


def main() -> None:
    stage = start_stage("noisy")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    outputs = tuple(data / f"pretrain_{s}_{k}" / "utt2snr" for s in ("train", "eval") for k in ("noisy", "clean"))
    if stage.is_done(outputs):
        print(f"noisy: {data}/pretrain_*_noisy is up to date")
        return
    counts = {split: build(split, hp, data, hp["seed"] + offset) for offset, split in enumerate(("train", "eval"))}
    stage.mark_done()
    print(f"noisy: wrote pretrain_train_noisy/_clean ({counts['train']}) and pretrain_eval_noisy/_clean "
          f"({counts['eval']}): SNRs -5..15 dB + clean, balanced")


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.noisy", main)
