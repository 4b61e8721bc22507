"""Offline speech recognition for the WER column: pocketsphinx's English model (inside the
wheel), or a local Whisper checkpoint (`whisper_dir`) when the openai-whisper package is there.
The paper called OpenAI's Whisper service, which cannot be reached from here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from speechlib.io.errors import InputError


def pocketsphinx_recogniser(sample_rate: int = 16000) -> Callable[[np.ndarray], str]:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=sample_rate, loglevel="FATAL")

    def recognise(signal: np.ndarray) -> str:
        pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    return recognise


def whisper_recogniser(checkpoint: str | Path) -> Callable[[np.ndarray], str]:
    try:
        import whisper
    except ImportError:
        raise InputError("whisper_dir is set but the openai-whisper package is not installed "
                         "(pip install openai-whisper), or use asr: pocketsphinx") from None
    path = Path(checkpoint)
    if path.is_dir():
        candidates = sorted(path.glob("*.pt"))
        if not candidates:
            raise InputError("no Whisper .pt checkpoint in this directory", str(path))
        path = candidates[0]
    model = whisper.load_model(str(path), device="cpu")

    def recognise(signal: np.ndarray) -> str:
        return model.transcribe(np.asarray(signal, np.float32), language="en", fp16=False)["text"]

    return recognise


def text_normaliser(kind: str) -> Callable[[str], str]:
    """What WER compares. Whisper: OpenAI's English text normaliser (transformers' copy of it;
    the British-to-American spelling map, english.json, is not in the wheel, so spellings are
    left as they are), without which Whisper's punctuation, numerals and contractions count as
    errors. pocketsphinx writes bare lower-case words: the WER's own upper-casing suffices."""
    if kind == "whisper":
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

        return EnglishTextNormalizer({})
    return str


def build_recogniser(kind: str, whisper_dir: str | None, sample_rate: int) -> Callable[[np.ndarray], str]:
    if kind == "whisper":
        if not whisper_dir:
            raise InputError("asr: whisper needs whisper_dir (WHISPER_DIR in db.sh)")
        return whisper_recogniser(whisper_dir)
    if kind == "pocketsphinx":
        return pocketsphinx_recogniser(sample_rate)
    raise InputError(f"unknown asr '{kind}' (pocketsphinx or whisper)")
