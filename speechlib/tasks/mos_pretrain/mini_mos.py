"""Mini MOS sets for the mini corpus, labelled by a predictor trained on human ratings.

The mini corpus has no listening tests. We degrade clean mini utterances with a chain of
distortions that are not only additive noise (each applied with its own probability, in this
order): reverberation (synthetic exponential RIR, RT60 0.2-1.0 s), low-pass filtering (1-6 kHz),
a real speech/audio codec through ffmpeg at a low bitrate (Opus 6-16 kb/s, MP3 8-24 kb/s, AAC
12-32 kb/s; speechlib.signal.codecs), packet loss (20 ms frames zeroed at 2-20 %), clipping, and
held-out noise clips at 0-40 dB SNR. Each file is labelled by DistillMOS (Stahl & Gamper 2025,
`distillmos`: a small model distilled from an XLS-R quality model trained on human MOS; weights
ship inside the wheel, so it runs offline). PESQ against the clean reference, the old proxy, was
mostly a function of the added-noise SNR: exactly what the SNR and region workers learn, so the
comparison was circular. DNSMOS P.808 (stage dnsmos) gives a second, independent label on the
test files, reported beside.

The sets are written in the real releases' layouts and then read by the same prep code as the
real corpora: NISQA's `NISQA_corpus_file.csv` (one csv, `db` selects the set) plus a per-set
`<SET>/<SET>_file.csv`, and VCC2018's MOSNet list `mos_list.txt` (`<wav>,<mean MOS>`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from scipy.signal import butter, fftconvolve, sosfilt
from tqdm import tqdm

from speechlib.data.nisqa import write_nisqa_csv
from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio, write_audio
from speechlib.signal.codecs import encode_decode
from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.signal.noise_labels import is_silent
from speechlib.tasks.mos_pretrain.distortions import synthetic_rir

# probability of each degradation step; codecs with their bitrate ranges (kb/s)
PROBS = {"reverb": 0.3, "lowpass": 0.3, "codec": 0.4, "packet_loss": 0.25, "clip": 0.2, "noise": 0.6}
CODEC_BITRATES = {"opus": (6, 16), "mp3": (8, 24), "aac": (12, 32)}


def degrade(clean: np.ndarray, noise: np.ndarray, rng: np.random.Generator, sample_rate: int
            ) -> tuple[np.ndarray, str]:
    """One degraded copy (same length, float32) and a description of the steps applied."""
    out, parts = clean.astype(np.float32), []
    if rng.random() < PROBS["reverb"]:
        rir = synthetic_rir(rng, sample_rate, rt60_range=(0.2, 1.0))
        out = fftconvolve(out, rir)[: out.size].astype(np.float32)
        parts.append("reverb")
    if rng.random() < PROBS["lowpass"]:
        cutoff = float(rng.uniform(1000, 6000))
        out = sosfilt(butter(8, cutoff, fs=sample_rate, output="sos"), out).astype(np.float32)
        parts.append(f"lowpass {cutoff:.0f} Hz")
    if rng.random() < PROBS["codec"]:
        codec = sorted(CODEC_BITRATES)[int(rng.integers(len(CODEC_BITRATES)))]
        low, high = CODEC_BITRATES[codec]
        kbps = int(rng.integers(low, high + 1))
        peak = float(np.max(np.abs(out))) or 1.0
        out = encode_decode(out / max(peak, 1.0), sample_rate, codec, kbps) * max(peak, 1.0)
        parts.append(f"{codec} {kbps} kb/s")
    if rng.random() < PROBS["packet_loss"]:
        rate, frame = float(rng.uniform(0.02, 0.2)), int(0.02 * sample_rate)
        lost = rng.random(int(np.ceil(out.size / frame))) < rate
        out = out.copy()
        for index in np.flatnonzero(lost):
            out[index * frame:(index + 1) * frame] = 0.0
        parts.append(f"packet loss {100 * rate:.0f} %")
    if rng.random() < PROBS["clip"]:
        level = float(rng.uniform(0.05, 0.4)) * float(np.max(np.abs(out)))
        out = np.clip(out, -level, level) / max(level, 1e-6) * 0.5
        parts.append("clipping")
    if rng.random() < PROBS["noise"] and not is_silent(out):
        snr = float(rng.uniform(0, 40))
        out, _, _ = mix_at_snr(out, fit_length(noise, out.size, rng), snr)
        parts.append(f"noise {snr:.1f} dB")
    return out.astype(np.float32), ", ".join(parts) or "clean"


_MODEL = None
_ZERO_FEATURES = None  # DistillMOS's convolutional features of an all-zero window
_HOP = 160  # DistillMOS's STFT hop (10 ms at 16 kHz)


def _load_distillmos() -> None:
    global _MODEL, _ZERO_FEATURES
    torch.set_num_threads(1)
    from distillmos import ConvTransformerSQAModel
    from distillmos.sqa import SEQ_LEN

    _MODEL = ConvTransformerSQAModel().eval()
    with torch.inference_mode():
        _ZERO_FEATURES = _MODEL.cnn(torch.zeros(1, SEQ_LEN))


def distillmos(signal: torch.Tensor) -> torch.Tensor:
    """DistillMOS of one 16 kHz signal (1, samples), equal to `ConvTransformerSQAModel()(signal)`.

    The model zero-pads every input to a 7.68 s window, so for a 2.5 s file two thirds of its
    convolutions (~77 % of its time) run on zeros. Their features depend only on the zeros, so they
    are taken from one all-zero pass: an output frame t sees STFT frames 2t-6..2t+6 (five stride-1
    3x3 layers, then stride 2), STFT frame j sees samples 160j-80..160j+240; frames whose field
    holds no sample of the signal come from the zero pass, the rest from the signal followed by
    enough zeros that no frame kept sees the shortened end. Bit-identical in the tests, ~2x faster.
    """
    from distillmos.sqa import SEQ_LEN

    if _MODEL is None:
        _load_distillmos()
    samples = signal.shape[1]
    first_zero_frame = -(-(samples + _HOP // 2) // _HOP)  # the first STFT frame holding only padding
    split = -(-(first_zero_frame + 6) // 2)  # the first output frame that sees only padding
    frames = 2 * split + 8  # computed from the signal: the kept frames' fields end 3 frames before
    if frames * _HOP >= SEQ_LEN:
        return _MODEL(signal)
    signal = signal / (signal.abs().max(dim=1, keepdim=True).values + 1e-8)  # the model's own scaling
    head = _MODEL.cnn(torch.nn.functional.pad(signal, (0, frames * _HOP - samples)))[..., :split]
    features = torch.cat([head, _ZERO_FEATURES[..., split:]], dim=-1)
    return 1 + 4 * _MODEL.transformer_pool_attn(features.permute(0, 2, 1))


def _score_files(paths: list[str]) -> list[float]:
    """DistillMOS of each file (16 kHz), one model per worker process. One file per call: batching
    padded files bought no CPU time (the convolutions are most of it either way)."""
    if _MODEL is None:
        _load_distillmos()
    with torch.inference_mode():
        return [float(distillmos(torch.from_numpy(load_audio(path, 16000)[0])[None])[0]) for path in paths]


def _label_model() -> str:
    """What the cached scores were computed by (another distillmos release invalidates them)."""
    return f"distillmos {version('distillmos')}"


def file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def distillmos_scores(paths: list[str], nj: int, cache: Path | None = None, chunk: int = 16) -> list[float]:
    """DistillMOS for every file, `nj` processes (the model is ~4 M parameters, 16 kHz input).

    `cache` (JSON: the model's release and sha256 of the file's bytes -> score) skips every file
    whose exact content was scored before, and is rewritten atomically after each chunk: labelling
    is most of stage 0's time, so a killed stage 0 (or a rebuilt set with the same files) resumes
    where it stopped instead of relabelling every file.
    """
    model = _label_model()
    stored = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    known: dict[str, float] = stored.get("scores", {}) if stored.get("model") == model else {}
    digests = [file_digest(p) for p in paths]
    todo = sorted({d: p for d, p in zip(digests, paths) if d not in known}.items())
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    jobs = [[p for _, p in c] for c in chunks]
    with contextlib.ExitStack() as stack:
        if nj > 1 and len(chunks) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=nj, initializer=_load_distillmos))
            results = pool.map(_score_files, jobs)
        else:
            results = map(_score_files, jobs)
        for part, scores in zip(chunks, tqdm(results, total=len(chunks), desc="DistillMOS", leave=False,
                                             disable=None)):
            known.update((d, s) for (d, _), s in zip(part, scores))
            if cache is not None:
                atomic_write_text(cache, json.dumps({"model": model, "scores": known}) + "\n")
    return [known[d] for d in digests]


_NOISES: list[np.ndarray] = []  # the held-out noise clips, per build process


def _set_noises(noises: list[np.ndarray]) -> None:
    global _NOISES
    _NOISES = noises


def _build_one(job: tuple[str, str, int, Path, Path, str, int, float]) -> dict[str, object] | None:
    """One degraded file and its NISQA-style row, or None when silent before or after degradation.
    Its random draws come from (seed, utterance id) alone, so the set is the same for any --nj."""
    utt, wav, seed, out_dir, root, db, sample_rate, max_seconds = job
    rng = np.random.default_rng([seed, zlib.crc32(utt.encode())])
    clean = load_audio(wav, sample_rate, utt=utt)[0][: int(max_seconds * sample_rate)]
    if is_silent(clean):
        return None
    degraded, description = degrade(clean, _NOISES[int(rng.integers(len(_NOISES)))], rng, sample_rate)
    if is_silent(degraded):
        return None
    deg, ref = out_dir / "deg" / f"{utt}.wav", out_dir / "ref" / f"{utt}.wav"
    write_audio(deg, degraded, sample_rate)
    write_audio(ref, clean, sample_rate)
    return {"db": db, "con": description, "file": utt, "con_description": description,
            "filename_deg": deg.name, "filename_ref": ref.name, "source": "mini LibriSpeech",
            "lang": "en", "votes": "", "filepath_deg": str(deg.relative_to(root)),
            "filepath_ref": str(ref.relative_to(root))}


def build_files(utts: list[tuple[str, str]], noises: list[np.ndarray], out_dir: Path, root: Path, db: str,
                seed: int, sample_rate: int, max_seconds: float, nj: int) -> list[dict[str, object]]:
    """Degrade every utterance into out_dir with `nj` processes (most of the time is ffmpeg's codec
    round trips); NISQA-style rows (paths relative to root) in the order of `utts`, no MOS yet."""
    jobs = [(utt, wav, seed, out_dir, root, db, sample_rate, max_seconds) for utt, wav in utts]
    with contextlib.ExitStack() as stack:
        if nj > 1 and len(jobs) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=nj, initializer=_set_noises,
                                                           initargs=(noises,)))
            results = pool.map(_build_one, jobs, chunksize=8)
        else:
            _set_noises(noises)
            results = map(_build_one, jobs)
        built = list(tqdm(results, total=len(jobs), desc=f"mini MOS {db}", leave=False, disable=None))
    rows = [row for row in built if row is not None]
    if len(rows) < len(jobs):
        print(f"mini MOS {db}: {len(jobs) - len(rows)} file(s) dropped (silent before or after degradation)")
    return rows


def label_rows(rows: list[dict[str, object]], root: Path, nj: int, cache: Path | None = None) -> None:
    """Fill each row's `mos` with DistillMOS of its degraded file (`cache`: distillmos_scores)."""
    scores = distillmos_scores([str(root / str(r["filepath_deg"])) for r in rows], nj, cache)
    for row, score in zip(rows, scores):
        row["mos"] = f"{min(max(score, 1.0), 5.0):.4f}"


def build_mini_nisqa(utts, noises, sizes: dict[str, int], root: Path, seed: int, sample_rate: int,
                     max_seconds: float, nj: int, cache: Path | None = None) -> dict[str, str]:
    """root/NISQA_corpus_file.csv and root/MINI_<SPLIT>/MINI_<SPLIT>_file.csv; {split: set name}."""
    rng = np.random.default_rng(seed)
    if sum(sizes.values()) > len(utts):
        raise ValueError(f"mini NISQA: {sum(sizes.values())} files asked, {len(utts)} utterances available")
    order, start, names, every = rng.permutation(len(utts)), 0, {}, []
    for split, count in sizes.items():
        name = f"MINI_{split.upper()}"
        chosen = [utts[i] for i in order[start:start + count]]
        start += count
        rows = build_files(chosen, noises, root / name, root, name, seed, sample_rate, max_seconds, nj)
        label_rows(rows, root, nj, cache)
        write_nisqa_csv(root / name / f"{name}_file.csv", rows)
        every += rows
        names[split] = name
    write_nisqa_csv(root / "NISQA_corpus_file.csv", every)
    return names


def build_mini_vcc(utts, noises, total: int, root: Path, seed: int, sample_rate: int, max_seconds: float,
                   nj: int, cache: Path | None = None) -> Path:
    """root/wav/*.wav and root/mos_list.txt (`<wav>,<mos>` lines, MOSNet's VCC2018 list)."""
    rng = np.random.default_rng(seed)
    if total > len(utts):
        raise ValueError(f"mini VCC: {total} files asked, {len(utts)} utterances available")
    chosen = [utts[i] for i in rng.permutation(len(utts))[:total]]
    rows = build_files(chosen, noises, root, root, "mini_vcc", seed, sample_rate, max_seconds, nj)
    label_rows(rows, root, nj, cache)
    wav_dir = root / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    for row in rows:
        os.replace(root / str(row["filepath_deg"]), wav_dir / str(row["filename_deg"]))
    lines = [f"{row['filename_deg']},{row['mos']}" for row in rows]
    (root / "mos_list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "mos_list.txt"
