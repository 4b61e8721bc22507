"""Stage 1 of egs/se_uda: mixtures for training and testing (mixing lives in speechlib.signal).

    python -m speechlib.tasks.se_uda.mix conf/mini_se_uda.yaml --output_folder exp/x

Writes, under data_folder:
- source_train: fixed-length source mixtures with their speech and noise (utt2speech, utt2noise);
- target_train: target mixtures, noisy only (what the adaptation stages may read);
- target_train_oracle: the same mixtures with their clean speech (+ DNS English mixtures when
  `oracle_include_english`), read only by the oracle "target model";
- target_test_snr{-5,0,5}: every target test utterance at each SNR; english_test_snr{..}: Table 2.
Files at another sample rate follow `on_rate_mismatch` (resample: converted with one summary
warning; error: refused with the file named).
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechlib.data.writer import spk2utt_from
from speechlib.io.atomic import atomic_directory
from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.tasks.stage import start_stage


@dataclass
class MixSpec:
    """One mixture set: which speech and noise, how many, at which SNR, how long."""

    name: str
    speech_dirs: tuple[str, ...]
    noise_dir: str
    count: int | None          # None: one mixture per speech utterance
    snr: tuple[float, float]   # uniform range; (x, x) for a fixed SNR
    seconds: float | None      # None: the whole utterance (capped at max_seconds)
    with_refs: bool = True
    id_tag: str = "mix"


class AudioCache:
    """Loads files through speechlib.io (pipes, rate policy), keeping the most recently used
    up to `max_mb` in memory (noise clips are reused many times; a corpus does not fit);
    counts files that had to be resampled."""

    def __init__(self, sample_rate: int, policy: str, max_mb: float = 1000.0):
        self.sample_rate, self.policy = sample_rate, policy
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.bytes, self.max_bytes = 0, int(max_mb * 2**20)
        self.resampled = 0

    def __call__(self, key: str, spec: str) -> np.ndarray:
        if spec not in self.cache:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                signal, _ = load_audio(spec, self.sample_rate, utt=key, on_rate_mismatch=self.policy)
            self.resampled += any("resampling" in str(w.message) for w in caught)
            if float(np.max(np.abs(signal), initial=0.0)) < 1e-4:
                raise InputError(f"utterance '{key}': audio is silent", spec)
            self.cache[spec] = signal
            self.bytes += signal.nbytes
            while self.bytes > self.max_bytes and len(self.cache) > 1:
                self.bytes -= self.cache.popitem(last=False)[1].nbytes
        self.cache.move_to_end(spec)
        return self.cache[spec]


def _speech_entries(data: Path, dirs: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(utt, spk, path) of every utterance of the speech dirs."""
    entries = []
    for name in dirs:
        wav, utt2spk = read_dict(data / name / "wav.scp"), read_dict(data / name / "utt2spk")
        entries += [(utt, utt2spk[utt], wav[utt]) for utt in sorted(wav)]
    return entries


def make_set(data: Path, spec: MixSpec, hp: dict, load: AudioCache, rng: np.random.Generator,
             oracle_name: str | None = None) -> int:
    """Write the data dir `spec.name` (and `oracle_name`, the same mixtures with references)."""
    speech = _speech_entries(data, spec.speech_dirs)
    noise = sorted(read_dict(data / spec.noise_dir / "wav.scp").items())
    sr = hp["sample_rate"]
    cap = hp.get("max_test_utts")
    if spec.count is None and cap and len(speech) > cap:  # evenly spread, so every language stays
        speech = [speech[i] for i in np.linspace(0, len(speech) - 1, int(cap)).round().astype(int)]
    count = len(speech) if spec.count is None else spec.count
    picks = np.arange(count) % len(speech) if spec.count is None else rng.integers(len(speech), size=count)
    noise_picks = rng.integers(len(noise), size=count)
    snrs = rng.uniform(spec.snr[0], spec.snr[1], size=count)
    final = data / spec.name
    with atomic_directory(final) as tmp:
        wav_dir = final / "wav"
        tables: dict[str, dict[str, str]] = {k: {} for k in ("wav.scp", "utt2spk", "utt2speech", "utt2noise",
                                                              "utt2snr")}
        for index in tqdm(range(count), desc=f"mix {spec.name}", leave=False):
            utt, spk, path = speech[picks[index]]
            clean = load(utt, path)
            if spec.seconds is not None:
                clean = fit_length(clean, int(spec.seconds * sr), rng, pad="zeros")
            else:
                clean = clean[: int(hp["max_test_seconds"] * sr)]
            noise_id, noise_path = noise[noise_picks[index]]
            bed = fit_length(load(noise_id, noise_path), clean.size, rng, pad="tile")
            mixture, clean, bed = mix_at_snr(clean[None], bed[None], snrs[index])
            key = f"{spk}-{spec.id_tag}{index:06d}" if spec.count is not None else utt
            files = {"wav.scp": ("mix", mixture[0]), "utt2speech": ("speech", clean[0]), "utt2noise": ("noise", bed[0])}
            for table, (suffix, signal) in files.items():
                target = (wav_dir / f"{key}_{suffix}.wav").resolve()
                write_audio(tmp / "wav" / target.name, signal, sr)
                tables[table][key] = str(target)
            tables["utt2spk"][key] = spk
            tables["utt2snr"][key] = f"{snrs[index]:.2f}"
        spk2utt = spk2utt_from(tables["utt2spk"])
        write_table(tmp / "spk2utt", spk2utt)
        keep = tables.keys() if spec.with_refs else ("wav.scp", "utt2spk", "utt2snr")
        for name in keep:
            write_table(tmp / name, tables[name])
        if oracle_name is not None:
            oracle = data / oracle_name
            oracle.mkdir(parents=True, exist_ok=True)
            for name, table in tables.items():
                write_table(oracle / name, table)
            write_table(oracle / "spk2utt", spk2utt)
    return count


def mixture_specs(hp: dict) -> list[MixSpec]:
    train_snr = tuple(hp["train_snr_range"])
    specs = [MixSpec("source_train", ("source_speech",), "source_noise", hp["num_source_train"], train_snr,
                     hp["segment_seconds"], id_tag="src"),
             MixSpec("target_train", ("target_speech_train",), "target_noise_train", hp["num_target_train"],
                     train_snr, hp["segment_seconds"], with_refs=False, id_tag="tgt")]
    if hp["oracle_include_english"]:
        specs.append(MixSpec("english_train", ("english_speech_train",), "target_noise_train",
                             hp["num_english_train"], train_snr, hp["segment_seconds"], id_tag="eng"))
    for snr in hp["test_snrs"]:
        specs.append(MixSpec(f"target_test_snr{snr}", ("target_speech_test",), "target_noise_test", None,
                             (snr, snr), None))
    for snr in hp["english_test_snrs"]:
        specs.append(MixSpec(f"english_test_snr{snr}", ("english_speech_test",), "target_noise_test", None,
                             (snr, snr), None))
    return specs


def merge_oracle(data: Path) -> None:
    """target_train_oracle += english_train (the paper's target model saw English DNS too)."""
    oracle, english = data / "target_train_oracle", data / "english_train"
    for name in ("wav.scp", "utt2spk", "utt2speech", "utt2noise", "utt2snr"):
        merged = {**read_dict(oracle / name), **read_dict(english / name)}
        write_table(oracle / name, merged)
    write_table(oracle / "spk2utt", spk2utt_from(read_dict(oracle / "utt2spk")))


def main() -> None:
    stage = start_stage("mix")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    specs = mixture_specs(hp)
    outputs = tuple(data / s.name / "wav.scp" for s in specs) + (data / "target_train_oracle" / "utt2speech",)
    if stage.is_done(outputs):
        print(f"mix: mixtures in {data} are up to date")
        return
    rng = np.random.default_rng(hp["seed"])
    load = AudioCache(hp["sample_rate"], hp["on_rate_mismatch"], hp.get("audio_cache_mb", 1000))
    summary = []
    for spec in tqdm(specs, desc="mixture sets"):
        oracle = "target_train_oracle" if spec.name == "target_train" else None
        summary.append(f"{spec.name} {make_set(data, spec, hp, load, rng, oracle)}")
    if hp["oracle_include_english"]:
        merge_oracle(data)
    if load.resampled:
        warnings.warn(f"mix: {load.resampled} input files were not at {hp['sample_rate']} Hz and were "
                      f"resampled (on_rate_mismatch: resample)", stacklevel=1)
    stage.mark_done()
    print("mix: " + ", ".join(summary))


if __name__ == "__main__":
    exit_on_input_error("se_uda.mix", main)
