"""Benchmark the data-dir tools on 1,000,000 utterances, and the audio-header check rate.

Target (foundation issue): validate, fix and split of a 1M-utterance dir under 10 s each.
wav.scp entries are `flac -c -d -s ... |` pipes (not run by validate), so no million files are
needed; the audio-header rate is measured separately on ~2,000 real small wav files.

Steps, each through the Python API, then again through the utils/*.sh wrappers:
  validate  --skip-audio-check on the valid dir
  fix       after dropping 0.1 % of text lines and repeating one utt2dur line (so it rewrites)
  split     into 32 by speaker (validates first, then writes 32 dirs)

    python tests/benchmarks/bench_datadir.py [--utts N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results" / "datadir.json"

from speechlib.data import datadir  # noqa: E402


def generate(path: Path, utts: int, per_speaker: int = 100) -> None:
    """A valid data dir: speakers of `per_speaker` utterances, pipe wav.scp, text, utt2dur, spk2gender."""
    path.mkdir(parents=True)
    speakers = (utts + per_speaker - 1) // per_speaker
    spk = [f"spk{k:06d}" for k in range(speakers)]
    ids = [f"{spk[i // per_speaker]}-utt{i:07d}" for i in range(utts)]
    owners = [spk[i // per_speaker] for i in range(utts)]

    def put(name: str, lines: list[str]) -> None:
        (path / name).write_text("\n".join(lines) + "\n")

    put("utt2spk", [f"{u} {s}" for u, s in zip(ids, owners)])
    put("wav.scp", [f"{u} flac -c -d -s /corpus/{s}/{u}.flac |" for u, s in zip(ids, owners)])
    put("text", [f"{u} THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG {i % 97}" for i, u in enumerate(ids)])
    put("utt2dur", [f"{u} {1 + (i % 150) / 10:.2f}" for i, u in enumerate(ids)])
    put("spk2gender", [f"{s} {'mf'[k % 2]}" for k, s in enumerate(spk)])
    put("spk2utt", [f"{s} " + " ".join(ids[k * per_speaker:(k + 1) * per_speaker]) for k, s in enumerate(spk)])


def damage(path: Path) -> int:
    """Drop every 1000th text line and repeat one utt2dur line: work for fix to do."""
    lines = (path / "text").read_text().splitlines()
    kept = [line for i, line in enumerate(lines) if i % 1000 != 999]
    (path / "text").write_text("\n".join(kept) + "\n")
    durations = (path / "utt2dur").read_text().splitlines()
    (path / "utt2dur").write_text("\n".join(durations[:10] + [durations[9]] + durations[10:]) + "\n")
    return len(lines) - len(kept)


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def shell(script: str, *args: object) -> float:
    """Wall time of one wrapper run; a failure stops the benchmark with its message."""
    start = time.perf_counter()
    subprocess.run([str(REPO / "utils" / script), *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def header_rate(folder: Path, files: int = 2000) -> tuple[float, float]:
    """Files/s of validate's audio check (existence + header + sample rate), cold and cached."""
    d = folder / "audio_dir"
    d.mkdir()
    tone = (0.1 * np.sin(np.arange(4000) * 0.3)).astype(np.float32)
    ids = [f"s{k % 20:02d}-{k:05d}" for k in range(files)]
    for utt in ids:
        soundfile.write(folder / f"{utt}.wav", tone, 16000, subtype="PCM_16")
    ids.sort()
    (d / "wav.scp").write_text("".join(f"{u} {folder / (u + '.wav')}\n" for u in ids))
    (d / "utt2spk").write_text("".join(f"{u} {u[:3]}\n" for u in ids))
    speakers = sorted({u[:3] for u in ids})
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in ids if u[:3] == s)}\n" for s in speakers))
    datadir._HEADER_CACHE.clear()
    cold, _ = timed(datadir.validate_data_dir, d, require_text=False)
    warm, _ = timed(datadir.validate_data_dir, d, require_text=False)
    return files / cold, files / warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utts", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=32)
    args = parser.parse_args()
    warnings.simplefilter("ignore", datadir.DataDirWarning)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "train"
        generate_s, _ = timed(generate, d, args.utts)
        validate_s, _ = timed(datadir.validate_data_dir, d, check_audio=False)
        dropped = damage(d)
        fix_s, report = timed(datadir.fix_data_dir, d)
        assert report.kept == args.utts - dropped, report.summary()
        split_s, out = timed(datadir.split_data_dir, d, args.parts)
        reuse_s, _ = timed(datadir.split_data_dir, d, args.parts)
        sizes = [sum(1 for _ in open(out / str(j) / "utt2spk")) for j in range(1, args.parts + 1)]
        # The same through the wrappers, as a user runs them (a fresh interpreter each).
        sh_validate_s = shell("validate_data_dir.sh", "--skip-audio-check", d)
        damage(d)
        sh_fix_s = shell("fix_data_dir.sh", d)
        sh_split_s = shell("split_data.sh", d, args.parts)
        cold_rate, warm_rate = header_rate(Path(tmp))
    rows = {
        f"validate --skip-audio-check, {args.utts} utts, s": validate_s,
        f"fix (dropping {dropped}, one repeated key), s": fix_s,
        f"split into {args.parts} by speaker, s": split_s,
        "split again (up to date, reused), s": reuse_s,
        "utils/validate_data_dir.sh --skip-audio-check, s": sh_validate_s,
        "utils/fix_data_dir.sh, s": sh_fix_s,
        f"utils/split_data.sh DIR {args.parts}, s": sh_split_s,
        "audio header check, files/s (cold)": cold_rate,
        "audio header check, files/s (cached)": warm_rate,
    }
    width = max(map(len, rows))
    print(f"{'step'.ljust(width)}  value   (target: validate/fix/split < 10 s)")
    for name, value in rows.items():
        print(f"{name.ljust(width)}  {value:8.2f}")
    print(f"(generating the dir took {generate_s:.1f} s; split sizes {min(sizes)}..{max(sizes)} utterances)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "utterances": args.utts, "parts": args.parts, "seconds": {
            "validate_skip_audio": round(validate_s, 3), "fix": round(fix_s, 3),
            "split_by_speaker": round(split_s, 3), "split_reused": round(reuse_s, 3)},
        "wrapper_seconds": {"validate_data_dir.sh": round(sh_validate_s, 3),
                            "fix_data_dir.sh": round(sh_fix_s, 3), "split_data.sh": round(sh_split_s, 3)},
        "fix_summary": report.summary(), "split_sizes": [min(sizes), max(sizes)],
        "audio_header_files_per_s": {"cold": round(cold_rate), "cached": round(warm_rate)},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "target_s": 10,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
