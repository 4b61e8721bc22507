"""Stage 1 of egs/se_uda: the fixed mixture sets (validation and test; mixing lives in speechlib.signal).

    python -m speechlib.tasks.se_uda.mix conf/mini_se_uda.yaml --output_folder exp/x

Training mixtures are not written: they are drawn on the fly, a new draw every epoch
(speechlib.tasks.se_uda.data.RemixedMixtures). What is written, under data_folder:
- source_valid, target_valid: fixed validation mixtures (the model selection and learning curves);
- source_test_snr{..}: LibriSpeech test-clean + WHAM! tt (the source domain, scored every run);
- target_test_snr{-5,0,5}: every target test utterance at each SNR (Table 1);
- english_test_snr{..}: DNS English held-out readers + target noise (Table 2).
Each set is drawn by its own generator, seeded by `test_seed` and the set's name only, so no
training size, seed or segment length changes a test mixture. A set is written once: its
manifest.sha256 holds the hash of its audio and the fingerprint of what it was drawn from, and a
later run with the same inputs leaves it untouched (RESULTS.md prints the hashes).
Files at another sample rate follow `on_rate_mismatch` (resample: converted with one summary
warning; error: refused with the file named).
"""
from __future__ import annotations

import hashlib
import json
import warnings
import zlib
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechlib.data.writer import spk2utt_from
from speechlib.io.atomic import atomic_directory, atomic_write_text
from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.tasks.stage import start_stage

MANIFEST = "manifest.sha256"


@dataclass
class MixSpec:
    """One fixed mixture set: which speech and noise, how many, at which SNR, how long."""

    name: str
    speech_dir: str
    noise_dir: str
    count: int | None          # None: one mixture per speech utterance (capped at max_test_utts)
    snr: tuple[float, float]   # uniform range; (x, x) for a fixed SNR
    seconds: float | None      # None: the whole utterance (capped at max_test_seconds)


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
            if not np.isfinite(signal).all():
                raise InputError(f"utterance '{key}': audio has non-finite samples (NaN or Inf)", spec)
            if float(np.max(np.abs(signal), initial=0.0)) < 1e-4:
                raise InputError(f"utterance '{key}': audio is silent", spec)
            self.cache[spec] = signal
            self.bytes += signal.nbytes
            while self.bytes > self.max_bytes and len(self.cache) > 1:
                self.bytes -= self.cache.popitem(last=False)[1].nbytes
        self.cache.move_to_end(spec)
        return self.cache[spec]


def speech_entries(data_dir: Path) -> list[tuple[str, str, str]]:
    """(utt, spk, path) of every utterance of a speech data dir, sorted by utterance."""
    wav, utt2spk = read_dict(data_dir / "wav.scp"), read_dict(data_dir / "utt2spk")
    return [(utt, utt2spk[utt], wav[utt]) for utt in sorted(wav)]


def set_generator(test_seed: int, name: str) -> np.random.Generator:
    """The generator of one fixed set: its name and test_seed, nothing else."""
    return np.random.default_rng([int(test_seed), zlib.crc32(name.encode())])


def _fingerprint(data: Path, spec: MixSpec, hp: dict) -> str:
    inputs = {"spec": asdict(spec), "test_seed": hp["test_seed"], "rate": hp["sample_rate"],
              "max_test_utts": hp["max_test_utts"], "max_test_seconds": hp["max_test_seconds"],
              "speech": speech_entries(data / spec.speech_dir),
              "noise": sorted(read_dict(data / spec.noise_dir / "wav.scp").items())}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def audio_hash(tables: dict[str, dict[str, str]], wav_dir: Path) -> str:
    """SHA-256 over the utterance ids and the bytes of their mixture, speech and noise files
    (read from `wav_dir` by file name, so a set can be hashed before it is moved in place)."""
    digest = hashlib.sha256()
    for utt in sorted(tables["wav.scp"]):
        digest.update(utt.encode())
        for table in ("wav.scp", "utt2speech", "utt2noise"):
            digest.update((wav_dir / Path(tables[table][utt]).name).read_bytes())
    return digest.hexdigest()


def read_manifest(set_dir: Path) -> dict[str, str]:
    path = set_dir / MANIFEST
    return dict(line.split("\t", 1) for line in path.read_text().splitlines()) if path.is_file() else {}


def make_set(data: Path, spec: MixSpec, hp: dict, load: AudioCache) -> int:
    """Write the data dir `spec.name` unless it exists from the same inputs; return its size."""
    final = data / spec.name
    fingerprint = _fingerprint(data, spec, hp)
    if read_manifest(final).get("inputs") == fingerprint and (final / "wav.scp").is_file():
        return len(read_dict(final / "wav.scp"))
    rng = set_generator(hp["test_seed"], spec.name)
    speech = speech_entries(data / spec.speech_dir)
    noise = sorted(read_dict(data / spec.noise_dir / "wav.scp").items())
    sr = hp["sample_rate"]
    cap = hp["max_test_utts"]
    if spec.count is None and cap and len(speech) > cap:  # evenly spread, so every language stays
        speech = [speech[i] for i in np.linspace(0, len(speech) - 1, int(cap)).round().astype(int)]
    count = len(speech) if spec.count is None else spec.count
    picks = np.arange(count) % len(speech) if spec.count is None else rng.integers(len(speech), size=count)
    noise_picks = rng.integers(len(noise), size=count)
    snrs = rng.uniform(spec.snr[0], spec.snr[1], size=count)
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
            key = f"{spk}-mix{index:06d}" if spec.count is not None else utt
            files = {"wav.scp": ("mix", mixture[0]), "utt2speech": ("speech", clean[0]), "utt2noise": ("noise", bed[0])}
            for table, (suffix, signal) in files.items():
                target = (wav_dir / f"{key}_{suffix}.wav").resolve()
                write_audio(tmp / "wav" / target.name, signal, sr)
                tables[table][key] = str(target)
            tables["utt2spk"][key] = spk
            tables["utt2snr"][key] = f"{snrs[index]:.2f}"
        write_table(tmp / "spk2utt", spk2utt_from(tables["utt2spk"]))
        for name, table in tables.items():
            write_table(tmp / name, table)
        atomic_write_text(tmp / MANIFEST, f"audio\t{audio_hash(tables, tmp / 'wav')}\ninputs\t{fingerprint}\n")
    return count


def mixture_specs(hp: dict) -> list[MixSpec]:
    """The fixed sets, in the order they are written (the order changes no set: own generators)."""
    train_snr = tuple(hp["train_snr_range"])
    seconds = hp["valid_segment_seconds"]
    specs = [MixSpec("source_valid", "source_speech_valid", "source_noise_valid", hp["num_valid"], train_snr, seconds),
             MixSpec("target_valid", "target_speech_valid", "target_noise_train", hp["num_valid"], train_snr, seconds)]
    for prefix, speech, noise, key in (("source_test", "source_speech_test", "source_noise_test", "source_test_snrs"),
                                       ("target_test", "target_speech_test", "target_noise_test", "test_snrs"),
                                       ("english_test", "english_speech_test", "target_noise_test",
                                        "english_test_snrs")):
        specs += [MixSpec(f"{prefix}_snr{snr}", speech, noise, None, (snr, snr), None) for snr in hp[key]]
    return specs


def main() -> None:
    stage = start_stage("mix", options=())
    hp = stage.hparams
    data = Path(hp["data_folder"])
    specs = mixture_specs(hp)
    outputs = tuple(data / s.name / MANIFEST for s in specs)
    if stage.is_done(outputs):
        print(f"mix: mixture sets in {data} are up to date")
        return
    load = AudioCache(hp["sample_rate"], hp["on_rate_mismatch"], hp["audio_cache_mb"])
    summary = []
    for spec in tqdm(specs, desc="mixture sets"):
        count = make_set(data, spec, hp, load)
        summary.append(f"{spec.name} {count} ({read_manifest(data / spec.name)['audio'][:12]})")
    if load.resampled:
        warnings.warn(f"mix: {load.resampled} input files were not at {hp['sample_rate']} Hz and were "
                      f"resampled (on_rate_mismatch: resample)", stacklevel=1)
    stage.mark_done()
    print("mix: " + ", ".join(summary))


if __name__ == "__main__":
    exit_on_input_error("se_uda.mix", main)
