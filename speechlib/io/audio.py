"""Audio I/O for wav.scp entries: a file path, or a Kaldi `command |` pipe.

Everything returns float32 NumPy arrays shaped (samples,) for mono or (samples, channels).
Resampling uses a polyphase filter (scipy.signal.resample_poly): exact rational ratios,
vectorised, no Python loop over samples.
"""
from __future__ import annotations

import io
import math
import os
import shutil
import struct
import subprocess
import warnings
from typing import NamedTuple

import numpy as np
import soundfile

from speechlib.io.atomic import atomic_path
from speechlib.io.errors import InputError


class AudioInfo(NamedTuple):
    sample_rate: int
    frames: int
    channels: int
    format: str = "WAV"  # libsndfile's major format: WAV, FLAC, MP3, OGG, ...

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def is_pipe(spec: str) -> bool:
    """Kaldi's convention: an rxfilename ending in `|` is a shell command writing audio."""
    return spec.rstrip().endswith("|")


def _open_source(spec: str, utt: str | None):
    """Return what soundfile can open: the path, or the bytes a pipe produced."""
    label = f"utterance '{utt}': " if utt else ""
    if is_pipe(spec):
        command = spec.rstrip()[:-1].strip()
        proc = subprocess.run(["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            detail = proc.stderr.decode(errors="replace").strip().splitlines()
            reason = detail[-1] if detail else f"exit code {proc.returncode}"
            raise InputError(f"{label}command failed: {command!r}: {reason}")
        return io.BytesIO(proc.stdout)
    if not os.path.isfile(spec):
        raise InputError(f"{label}audio file does not exist: {spec}")
    return spec


class Audio(NamedTuple):
    """A whole recording as decoded: (frames, channels) float32 and its sample rate."""

    data: np.ndarray
    sample_rate: int
    tags: dict  # the file's text metadata (title, comment, ...), as soundfile names them

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])


# Formats libsndfile may not decode (or decodes only in some builds): ffmpeg decodes them.
FFMPEG_SUFFIXES = (".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".webm", ".mp4")


def _wav_truncation(head: bytes, total: int) -> str | None:
    """For a RIFF/WAVE byte string: why its header promises more audio than the file holds."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(head):
        chunk, size = head[offset:offset + 4], struct.unpack("<I", head[offset + 4:offset + 8])[0]
        if chunk == b"data":
            # Streaming writers (ffmpeg, sox to a pipe) leave 0 or 0xFFFFFFFF: length unknown.
            available = total - offset - 8
            if size in (0, 0xFFFFFFFF) or size <= available:
                return None
            return (f"truncated: the header announces {size} bytes of audio, the file holds "
                    f"{max(available, 0)}")
        offset += 8 + size + (size & 1)
    return None


def _ffmpeg_decode(spec: str, label: str) -> bytes:
    if shutil.which("ffmpeg") is None:
        raise InputError(f"{label}cannot decode {spec}: ffmpeg is not installed (needed for this format)")
    proc = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", spec, "-f", "wav", "-c:a", "pcm_f32le", "-"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"{label}cannot decode {spec}: {detail[-1] if detail else 'ffmpeg failed'}")
    return proc.stdout


def read_audio(spec: str, utt: str | None = None) -> Audio:
    """Decode a whole file or `cmd |` pipe, refusing what would silently give wrong audio.

    A truncated file (header longer than the data), non-finite samples and zero samples are
    InputErrors naming the entry. Formats libsndfile cannot read (mp3/ogg in some builds, m4a)
    go through ffmpeg.
    """
    label = f"utterance '{utt}': " if utt else f"{spec}: " if is_pipe(spec) else ""
    name = spec if not is_pipe(spec) else f"command {spec.rstrip()[:-1].strip()!r}"
    source = _open_source(spec, utt)
    if isinstance(source, io.BytesIO):
        raw = source.getvalue()
    else:
        with open(source, "rb") as handle:
            raw = handle.read(1 << 16)
        size = os.path.getsize(source)
    problem = _wav_truncation(raw, len(raw) if isinstance(source, io.BytesIO) else size)
    if problem:
        raise InputError(f"{label}{name}: {problem}")
    try:
        with soundfile.SoundFile(source) as handle:
            sample_rate, expected = int(handle.samplerate), handle.frames
            data = handle.read(dtype="float32", always_2d=True)
            tags = handle.copy_metadata()
            if handle.format in ("MP3", "MPEG", "OGG"):  # frame counts of compressed streams are estimates
                expected = len(data)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        if isinstance(source, io.BytesIO) or not spec.lower().endswith(FFMPEG_SUFFIXES):
            raise InputError(f"{label}cannot read audio {name}: {_reason(err)}") from None
        decoded = _ffmpeg_decode(spec, label)
        with soundfile.SoundFile(io.BytesIO(decoded)) as handle:
            sample_rate, data = int(handle.samplerate), handle.read(dtype="float32", always_2d=True)
        expected, tags = len(data), {}
    if len(data) < expected:
        raise InputError(f"{label}{name}: truncated: {len(data)} of {expected} frames could be decoded")
    if len(data) == 0:
        raise InputError(f"{label}{name}: empty (0 samples)")
    if not np.isfinite(data).all():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise InputError(f"{label}{name}: {bad} non-finite sample(s) (NaN or inf)")
    return Audio(data, sample_rate, tags)


def _reason(err: Exception) -> str:
    """libsndfile's own words, without soundfile's 'Error opening <object repr>' prefix."""
    return getattr(err, "error_string", None) or str(err)


def audio_info(spec: str, utt: str | None = None) -> AudioInfo:
    """Header information; for pipes the command is run. A WAV whose header promises more
    audio than the file holds is an InputError (libsndfile would silently report less)."""
    label = f"utterance '{utt}': " if utt else ""
    name = f"the output of {spec.rstrip()[:-1].strip()!r}" if is_pipe(spec) else spec
    source = _open_source(spec, utt)
    if isinstance(source, io.BytesIO):
        problem = _wav_truncation(source.getvalue(), len(source.getvalue()))
    else:
        with open(source, "rb") as handle:
            problem = _wav_truncation(handle.read(1 << 16), os.path.getsize(source))
    if problem:
        raise InputError(f"{label}{name}: {problem}")
    try:
        info = soundfile.info(source)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise InputError(f"{label}cannot read audio {name}: {_reason(err)}") from None
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels), str(info.format))


def resample(signal: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling along the first axis (polyphase, Kaiser window)."""
    if orig_sr == target_sr:
        return signal
    from scipy.signal import resample_poly

    gcd = math.gcd(orig_sr, target_sr)
    return resample_poly(signal, target_sr // gcd, orig_sr // gcd, axis=0).astype(np.float32)


RESAMPLE_BLOCK = 32  # outputs per row of a resample_channels product (at least; a multiple of U)
RESAMPLE_MATRIX_LIMIT = 1 << 20  # floats in its block matrix; beyond (rates with a small common divisor): resample
RESAMPLE_ROWS = 1024  # block rows per product, so the window copies stay small whatever the length


def resample_channels(signals: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """`resample` of every row of (channels, samples), as float32 matrix products (user commands).

    The same filter and alignment as `resample` (zero outside the signal): for the ratio U / D in
    lowest terms and H = 10 max(U, D), output n is sum_m h[n D - m U + H] x[m], h being
    resample_poly's low-pass (firwin(2H + 1, 1 / max(U, D), window=("kaiser", 5.0)) times U),
    written out (a Kaiser-windowed sinc with unit gain at 0 Hz) so that a command never imports
    scipy.signal, which takes longer than a minute of audio. Outputs k U apart read inputs k D
    apart through the same weights, so each block of k U outputs is one window of the input times
    one matrix T[j, i] = h[i D - (j + first) U + H]: a matrix product runs a block where
    resample_poly loops per sample, several times faster (torch's, on the threads torch is set
    to). Equal to `resample` within float32 rounding (tested); ratios whose T would be large use
    `resample` row by row. Returns (channels, target samples); the rows themselves when the rates
    agree.
    """
    if orig_sr == target_sr:
        return signals
    gcd = math.gcd(orig_sr, target_sr)
    up, down = target_sr // gcd, orig_sr // gcd
    half = 10 * max(up, down)
    outs = up * -(-RESAMPLE_BLOCK // up)
    ins = outs // up * down
    first = -(half // up)  # input index, relative to a block's start, of its window's first sample
    width = ((outs - 1) * down + half) // up - first + 1
    if width * outs > RESAMPLE_MATRIX_LIMIT:
        return np.stack([resample(row, orig_sr, target_sr) for row in signals])
    import torch

    offsets = np.arange(-half, half + 1)
    taps = np.sinc(offsets / max(up, down)) * np.kaiser(2 * half + 1, 5.0)
    taps = (taps / taps.sum()).astype(np.float32) * np.float32(up)
    index = np.arange(outs)[None, :] * down - (np.arange(width)[:, None] + first) * up + half
    matrix = torch.from_numpy(np.where((index >= 0) & (index <= 2 * half), taps[np.clip(index, 0, 2 * half)],
                                       np.float32(0)))
    channels, length = signals.shape
    n_out = -(-length * up // down)
    blocks = -(-n_out // outs)
    padded = np.zeros((channels, (blocks - 1) * ins + width), np.float32)
    kept = min(length, padded.shape[1] + first)  # inputs past the last window weigh nothing
    padded[:, -first:-first + kept] = signals[:, :kept]
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)[:, ::ins]
    out = np.empty((channels, blocks, outs), np.float32)
    for channel in range(channels):
        for start in range(0, blocks, RESAMPLE_ROWS):
            rows = windows[channel, start:start + RESAMPLE_ROWS].copy()
            torch.mm(torch.from_numpy(rows), matrix, out=torch.from_numpy(out[channel, start:start + len(rows)]))
    return out.reshape(channels, -1)[:, :n_out]


def load_audio(spec: str, sample_rate: int | None = None, utt: str | None = None,
               start: float = 0.0, end: float | None = None, mono: bool = True,
               on_rate_mismatch: str = "error") -> tuple[np.ndarray, int]:
    """Read a wav.scp entry (optionally the [start, end) seconds of it).

    `sample_rate`: the rate the caller expects. On a mismatch, `on_rate_mismatch` decides:
    "error" (an InputError naming the utterance and file), "resample" (with a warning),
    or "ignore" (return the native rate).
    """
    label = f"utterance '{utt}': " if utt else ""
    source = _open_source(spec, utt)
    try:
        with soundfile.SoundFile(source) as handle:
            native_sr = int(handle.samplerate)
            first = int(round(start * native_sr))
            last = handle.frames if end is None else int(round(end * native_sr))
            if first < 0 or last > handle.frames + int(0.01 * native_sr) or last <= first:
                raise InputError(f"{label}segment [{start}, {end}] s lies outside {spec} "
                                 f"({handle.frames / native_sr:.3f} s)")
            handle.seek(first)
            data = handle.read(min(last, handle.frames) - first, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise InputError(f"{label}cannot read audio {spec}: {_reason(err)}") from None
    data = data.mean(axis=1) if mono else data
    if data.shape[-1] == 1 and data.ndim == 2:
        data = data[:, 0]
    if sample_rate is not None and native_sr != sample_rate:
        if on_rate_mismatch == "error":
            raise InputError(f"{label}{spec} has sample rate {native_sr} Hz, expected {sample_rate} Hz")
        if on_rate_mismatch == "resample":
            warnings.warn(f"{label}resampling {spec} from {native_sr} to {sample_rate} Hz", stacklevel=2)
            return resample(data, native_sr, sample_rate), sample_rate
    return data, native_sr


def check_not_silent(signal: np.ndarray, name: str, threshold: float = 1e-4) -> None:
    """Silent (or all-zero) audio is refused: it breaks SNR mixing and every metric."""
    if signal.size == 0 or float(np.max(np.abs(signal))) < threshold:
        raise InputError(f"{name}: audio is empty or silent (peak below {threshold})")


def write_audio(path: str | os.PathLike, signal: np.ndarray, sample_rate: int,
                subtype: str = "PCM_16", tags: dict[str, str] | None = None) -> None:
    """Write atomically; the format follows the extension (.wav, .flac). Clipping warns (user
    commands decide before writing: see speechlib.io.inference). `tags`: text metadata by
    soundfile's names (title, comment, software, ...), stored in the file itself."""
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    if peak > 1.0 and subtype.startswith("PCM"):
        warnings.warn(f"{path}: peak {peak:.2f} > 1 clipped when writing {subtype}", stacklevel=2)
        signal = np.clip(signal, -1.0, 1.0)
    suffix = os.path.splitext(os.fspath(path))[1]
    with atomic_path(path, suffix=suffix) as tmp:
        channels = 1 if signal.ndim == 1 else signal.shape[1]
        with soundfile.SoundFile(tmp, "w", sample_rate, channels, subtype=subtype) as handle:
            for key, value in (tags or {}).items():
                setattr(handle, key, value)
            handle.write(signal)
