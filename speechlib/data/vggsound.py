"""VGG-Sound prep: vggsound.csv + local video files -> 16 kHz audio and one square frame per clip.

`vggsound.csv` (from the VGG-Sound release) has no header; each line is
`YouTube id, start seconds, label, split` with split `train` or `test`. The video of a line is
looked up as `<id>_<start, 6 digits>.mp4` (the usual naming of the downloaded clips) or
`<id>.mp4` in the video directory. As in the paper, one random frame per video is taken, cut to
a centre square and resized (64x64); the audio is 16 kHz mono.

Videos without an audio stream, without a decodable frame, or missing are skipped, named in the
log and counted; the prep goes on with the rest.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechlib.io.atomic import atomic_path
from speechlib.io.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VggRow:
    ytid: str
    start: int
    label: str
    split: str

    @property
    def clip(self) -> str:
        return f"{self.ytid}_{self.start:06d}"


def read_vggsound_csv(path: str | os.PathLike) -> list[VggRow]:
    """Parse vggsound.csv; a malformed line is an error naming the file and the line."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, fields in enumerate(csv.reader(handle), 1):
            if not fields:
                continue
            if len(fields) != 4:
                raise InputError(f"expected 4 fields (id, start seconds, label, split), got {len(fields)}",
                                 str(path), number)
            ytid, start, label, split = (field.strip() for field in fields)
            try:
                start_s = int(float(start))
            except ValueError:
                raise InputError(f"start seconds '{start}' is not a number", str(path), number) from None
            if split not in ("train", "test"):
                raise InputError(f"split '{split}' is neither train nor test", str(path), number)
            rows.append(VggRow(ytid, start_s, label, split))
    if not rows:
        raise InputError("no lines", str(path))
    return rows


def find_video(video_dir: Path, row: VggRow) -> Path | None:
    for name in (f"{row.clip}.mp4", f"{row.ytid}.mp4"):
        if (video_dir / name).is_file():
            return video_dir / name
    return None


def probe(video: Path) -> dict:
    """ffprobe's streams and duration of a file."""
    proc = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type:format=duration",
                           "-of", "json", str(video)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"streams": [], "format": {}}
    return json.loads(proc.stdout or "{}")


def extract_audio(video: Path, dest: Path, sample_rate: int = 16000) -> None:
    with atomic_path(dest, suffix=".wav") as tmp:
        proc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-vn", "-ac", "1",
                               "-ar", str(sample_rate), "-f", "wav", str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise InputError(f"ffmpeg could not decode the audio: {proc.stderr.strip()[-200:]}", str(video))


def extract_frame(video: Path, dest: Path, seconds: float, size: int) -> bool:
    """One frame at `seconds`, centre square crop, `size` x `size` PNG; False if none decodes."""
    with atomic_path(dest, suffix=".png") as tmp:
        crop = f"crop='min(iw,ih)':'min(iw,ih)',scale={size}:{size}:flags=bicubic"
        proc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", f"{seconds:.3f}", "-i", str(video),
                               "-frames:v", "1", "-vf", crop, "-pix_fmt", "rgb24", str(tmp)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            return False
    return True


def prepare_vggsound(csv_path: str | os.PathLike, video_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     image_size: int, seed: int) -> tuple[list[dict], dict[str, list[str]]]:
    """Extract audio and one random frame per listed clip. Returns the usable clips (clip, label,
    split, audio, image, duration) and the skipped ones by reason (each named in the log)."""
    video_dir, out = Path(video_dir), Path(out_dir)
    if not video_dir.is_dir():
        raise InputError("VGG-Sound video directory does not exist", str(video_dir))
    rng = np.random.default_rng(seed)
    rows = read_vggsound_csv(csv_path)
    clips, skipped = [], {"missing video": [], "no audio stream": [], "no decodable frame": []}
    for row in rows:
        video = find_video(video_dir, row)
        if video is None:
            skipped["missing video"].append(row.clip)
            continue
        info = probe(video)
        kinds = {stream.get("codec_type") for stream in info.get("streams", [])}
        if "audio" not in kinds:
            skipped["no audio stream"].append(str(video))
            log.warning("skipped %s: no audio stream", video)
            continue
        duration = float(info.get("format", {}).get("duration") or 0.0)
        image = out / "frames" / f"{row.clip}.png"
        if "video" not in kinds or not extract_frame(video, image, rng.uniform(0, max(duration - 0.1, 0.0)),
                                                     image_size):
            skipped["no decodable frame"].append(str(video))
            log.warning("skipped %s: no decodable frame", video)
            continue
        audio = out / "audio" / f"{row.clip}.wav"
        extract_audio(video, audio)
        clips.append(dict(clip=row.clip, label=row.label, split=row.split, audio=str(audio.resolve()),
                          image=str(image.resolve()), duration=duration))
    return clips, skipped
