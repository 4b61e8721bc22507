"""Proxy MOS sets for the mini corpus, in the real corpora's release formats.

The mini corpus has no listening-test scores. We degrade clean utterances (additive noise from
the held-out noise clips at 0..45 dB, a range over which PESQ spreads, for the VCC-style set also low-pass filtering and
clipping, which imitate band-limited and distorted synthetic speech) and label each file with
wide-band PESQ (ITU-T P.862.2, already on the MOS-LQO scale) against its clean reference. PESQ's
MOS-LQO spans about 1.0-4.64, inside the 1-5 range the MOS head clips to. The sets are written in
NISQA's csv layout (filepath_deg, mos) and VCC2018's `mos_list.txt` layout, so the real corpora's
prep code reads them. Files where PESQ finds no utterance are dropped (and counted).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfilt
from tqdm import tqdm

from speechlib.data.nisqa import write_nisqa_csv
from speechlib.io.audio import load_audio, write_audio
from speechlib.metrics.enhancement import pesq_wb
from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.signal.noise_labels import is_silent


def degrade(clean: np.ndarray, noise: np.ndarray, rng: np.random.Generator, sample_rate: int,
            style: str) -> tuple[np.ndarray, str]:
    """One degraded copy and a short description of what was done."""
    out, parts = clean.copy(), []
    if style == "vcc" and rng.random() < 0.5:
        cutoff = float(rng.uniform(1500, 6000))
        out = sosfilt(butter(8, cutoff, fs=sample_rate, output="sos"), out).astype(np.float32)
        parts.append(f"lowpass {cutoff:.0f} Hz")
    if style == "vcc" and rng.random() < 0.3:
        level = float(rng.uniform(0.05, 0.3)) * float(np.max(np.abs(out)))
        out = np.clip(out, -level, level) / max(level, 1e-6) * 0.5
        parts.append("clipping")
    if rng.random() < 0.9:
        snr = float(rng.uniform(0, 45))
        out, _, _ = mix_at_snr(out, fit_length(noise, out.size, rng), snr)
        parts.append(f"noise {snr:.1f} dB")
    return out.astype(np.float32), ", ".join(parts) or "clean"


def build_files(utts: list[tuple[str, str]], noises: list[np.ndarray], out_dir: Path, root: Path, style: str,
                rng: np.random.Generator, sample_rate: int, max_seconds: float) -> list[dict[str, object]]:
    """Degrade and label every utterance into out_dir; NISQA-style rows, paths relative to root."""
    rows, dropped = [], 0
    for utt, wav in tqdm(utts, desc=f"mini MOS ({style}) {out_dir.relative_to(root)}", leave=False):
        clean, _ = load_audio(wav, sample_rate, utt=utt)
        clean = clean[: int(max_seconds * sample_rate)]
        if is_silent(clean):
            dropped += 1
            continue
        noisy, description = degrade(clean, noises[int(rng.integers(len(noises)))], rng, sample_rate, style)
        score = pesq_wb(noisy, clean, sample_rate)
        if math.isnan(score):
            dropped += 1
            continue
        deg, ref = out_dir / f"{utt}.wav", out_dir.parent / "ref" / f"{utt}.wav"
        write_audio(deg, noisy, sample_rate)
        write_audio(ref, clean, sample_rate)
        rows.append({"db": f"mini_{style}", "con": description, "con_description": description,
                     "filepath_deg": str(deg.relative_to(root)), "filepath_ref": str(ref.relative_to(root)),
                     "mos": f"{min(max(score, 1.0), 5.0):.4f}"})
    if dropped:
        print(f"mini MOS ({style}): {dropped} file(s) dropped (silent, or PESQ found no utterance)")
    return rows


def build_mini_nisqa(utts, noises, sizes: dict[str, int], root: Path, seed: int, sample_rate: int,
                     max_seconds: float) -> dict[str, str]:
    """root/MINI_<SPLIT>/{deg/*.wav, MINI_<SPLIT>_file.csv}; returns {split: set name}."""
    rng = np.random.default_rng(seed)
    order, start, names = rng.permutation(len(utts)), 0, {}
    if sum(sizes.values()) > len(utts):
        raise ValueError(f"mini NISQA: {sum(sizes.values())} files asked, {len(utts)} utterances available")
    for split, count in sizes.items():
        name = f"MINI_{split.upper()}"
        chosen = [utts[i] for i in order[start:start + count]]
        start += count
        rows = build_files(chosen, noises, root / name / "deg", root, "nisqa", rng, sample_rate, max_seconds)
        write_nisqa_csv(root / name / f"{name}_file.csv", rows)
        names[split] = name
    return names


def build_mini_vcc(utts, noises, total: int, root: Path, seed: int, sample_rate: int, max_seconds: float) -> Path:
    """root/wav/*.wav and root/mos_list.txt (`<wav>,<mos>` lines), VCC2018's MOS release layout."""
    rng = np.random.default_rng(seed)
    if total > len(utts):
        raise ValueError(f"mini VCC: {total} files asked, {len(utts)} utterances available")
    chosen = [utts[i] for i in rng.permutation(len(utts))[:total]]
    rows = build_files(chosen, noises, root / "wav", root, "vcc", rng, sample_rate, max_seconds)
    lines = [f"{Path(str(r['filepath_deg'])).name},{r['mos']}" for r in rows]
    (root / "mos_list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "mos_list.txt"
