"""Build the mini corpus from downloaded Debian packages (called by tools/make_mini_corpus.sh).

Why a mini corpus: every recipe must run end to end on a fresh machine with no corpus on disk,
and its demo must mean something, so the audio is real recorded speech, noise and music from
openly licensed packages; it is laid out like the real corpora (LibriSpeech, WHAM!, DNS
Challenge) so that recipe data prep runs the same code on mini and on the real thing.

The whole corpus is built in a temporary sibling directory and renamed into place with its
`.complete` marker already inside, so a killed build never leaves a directory a rerun trusts.

Real English voices are few (one US, one British speaker), while the voice-privacy ASV protocol
needs 20 female + 20 male speakers in each of dev-clean and test-clean. The other speakers are
pseudo-speakers: a real voice with its pitch and its vocal-tract length (formants) changed
(`rubberband` with formant preservation after a sample-rate change). They are marked `pseudo`
in speakers.tsv and SPEAKERS.TXT. Their gender follows their target median F0: female when the
target F0 is at least 160 Hz (drawn from 165-240 Hz), male below (drawn from 85-145 Hz), with
the formant scale drawn from the matching range (female 0.95-1.08, male 0.80-0.90 of a female
vocal tract). Real speakers whose gender the package does not state (Tux Paint) get it from
their measured median F0 with the same 160 Hz rule; speakers.tsv says which rule applied.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from speechlib.data import mini_sources as src
from speechlib.data import mini_voices as voices
from speechlib.io.atomic import atomic_directory, atomic_write_text
from speechlib.io.audio import resample
from speechlib.io.errors import InputError, exit_on_input_error

SR = 16000
FORMAT_VERSION = 3
TRAIN_BASES = ("ast_allison", "tp_en_gb", "syn_ked")   # English voices of train-clean-100
EVAL_BASES = 20          # base voices per evaluation set (each gives 1 f + 1 m speaker)
EVAL_MIN_SECONDS = 2.0   # shorter evaluation recordings are joined (speaker embeddings need speech)
FFMPEG_FORMATS = ("g722", "gsm")   # raw bitstreams ffmpeg decodes given the format
F0_GENDER_THRESHOLD = 160.0
MIN_RMS = 3e-4          # below this (-70 dBFS) a clip counts as silent
MIN_SECONDS = 0.2       # shortest utterance kept
MIN_NOISE_SECONDS = 0.1  # shortest sound effect kept (clicks shorter than this are useless as noise)


@dataclass
class Options:
    small: bool = False
    seed: int = 1234
    jobs: int = 2

    @property
    def sizes(self) -> dict[str, int]:
        """Corpus size knobs; --small keeps every promised speaker count, with fewer utterances."""
        if self.small:
            return dict(per_lang_cap=24, tp_cap=12, allison_en=120, pseudo_train_utts=4, eval_utts=4,
                        eval_utts_en=6, train_synth_utts=40, train_own_utts=8,
                        train_pseudo={"ast_allison": 24, "syn_ked": 16}, music_tracks=4, music_seconds=10, moh_clips=2, noise_clips=1, babble=2,
                        wham=(8, 3, 3), wham_seconds=3.0, dns_per_lang=6, stamp_cap=60)
        # English evaluation voices read 30 utterances per speaker (others 12), so that dev-clean and
        # test-clean hold as much English as the few English voices allow
        return dict(per_lang_cap=10_000, tp_cap=150, allison_en=10_000, pseudo_train_utts=20, eval_utts=12,
                    eval_utts_en=30, train_synth_utts=100, train_own_utts=40,
                    train_pseudo={"ast_allison": 24, "syn_ked": 16}, music_tracks=12, music_seconds=20, moh_clips=3,
                    noise_clips=2, babble=8, wham=(60, 15, 15), wham_seconds=6.0, dns_per_lang=40, stamp_cap=10_000)

    def digest(self) -> str:
        text = json.dumps({"small": self.small, "seed": self.seed, "version": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Report:
    """What was skipped and why: printed, and counted in README.md."""

    root: str = ""
    skipped: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def skip(self, reason: str, path: str, detail: str = "") -> None:
        """Count and list it; corrupt or silent files are warned about on the terminal too
        (too-short ones are a known, deliberate cut and only go to skipped.txt)."""
        self.skipped[reason] += 1
        if self.root and path.startswith(self.root):
            path = "/" + os.path.relpath(path, self.root)      # as installed by the package
        message = f"skipped {path}: {reason}" + (f" ({detail})" if detail else "")
        self.warnings.append(message)
        if reason not in ("too short", "duplicate of another source file"):
            tqdm.write(f"mini_build: warning: {message}", file=sys.stderr)


# --- audio helpers (module level: they run in worker processes) -----------------------------

def _ffmpeg(args: list[str], data: bytes | None = None) -> bytes:
    proc = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *args],
                          input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or "ffmpeg failed")
    return proc.stdout


def _decode_raw_batch(paths: list[str], fmt: str = "g722") -> list[np.ndarray | str]:
    """One ffmpeg process for many raw G.722 / GSM files (a process per file costs ~60 ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        args: list[str] = []
        for path in paths:
            args += ["-f", fmt, "-i", path]
        outs = []
        for index in range(len(paths)):
            out = os.path.join(tmp, f"{index}.wav")
            outs.append(out)
            args += ["-map", f"{index}:a", "-ar", str(SR), "-ac", "1", out]
        try:
            _ffmpeg(["-y", *args])
        except RuntimeError:
            # one corrupt file fails the batch: decode one by one to find it
            if len(paths) > 1:
                return [r for path in paths for r in _decode_raw_batch([path], fmt)]
            return [f"cannot decode {fmt}"]
        result: list[np.ndarray | str] = []
        for out in outs:
            try:
                result.append(soundfile.read(out, dtype="float32")[0])
            except Exception as err:   # noqa: BLE001 - any reader failure means a bad source
                result.append(f"cannot decode: {err}")
        return result


def _read_any(path: str, seconds: float | None = None, offset: float = 0.0) -> np.ndarray:
    """Mono 16 kHz float32 from anything soundfile reads (wav, ogg, oga)."""
    with soundfile.SoundFile(path) as handle:
        sr = handle.samplerate
        if offset:
            handle.seek(min(int(offset * sr), handle.frames))
        frames = -1 if seconds is None else int(seconds * sr)
        data = handle.read(frames, dtype="float32", always_2d=True)
    return resample(data.mean(axis=1), sr, SR).astype(np.float32)


def _problem(signal: np.ndarray, min_seconds: float = MIN_SECONDS) -> str | None:
    if signal.size == 0:
        return "empty"
    if signal.size < min_seconds * SR:
        return f"shorter than {min_seconds} s"
    if not np.all(np.isfinite(signal)):
        return "non-finite samples"
    if float(np.sqrt(np.mean(signal.astype(np.float64) ** 2))) < MIN_RMS:
        return "silent"
    return None


def _finish(signal: np.ndarray) -> np.ndarray:
    """Remove DC, keep peaks below full scale (pitch shifting can overshoot)."""
    signal = signal - np.float32(signal.mean())
    peak = float(np.max(np.abs(signal))) if signal.size else 0.0
    if peak > 0.97:
        signal = signal * np.float32(0.97 / peak)
    return signal.astype(np.float32)


def _write(path: Path, signal: np.ndarray, sr: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), signal, sr, subtype="PCM_16")


def _decode_task(task: tuple[str, list[tuple[str, str]], str]) -> list[tuple[str, str | float]]:
    """Decode a batch of (source path, output path); returns (output, duration or problem)."""
    codec, items, _ = task
    if codec in FFMPEG_FORMATS:
        decoded = _decode_raw_batch([s for s, _ in items], codec)
    else:
        decoded = []
        for source, _ in items:
            try:
                decoded.append(_read_any(source))
            except Exception as err:   # noqa: BLE001
                decoded.append(f"cannot decode: {err}")
    results: list[tuple[str, str | float]] = []
    for (source, out), signal in zip(items, decoded):
        if isinstance(signal, str):
            results.append((out, signal))
            continue
        problem = _problem(signal)
        if problem:
            results.append((out, problem))
            continue
        signal = _finish(signal)
        _write(Path(out), signal)
        results.append((out, signal.size / SR))
    return results


def _copy_task(items: list[tuple[str, str]]) -> list[tuple[str, float]]:
    """Re-encode staged wavs as 16-bit FLAC: (dest, duration in seconds) for each (source, dest)."""
    results = []
    for source, dest in items:
        data, sr = soundfile.read(source, dtype="float32")
        _write(Path(dest), data, sr)
        results.append((dest, data.shape[0] / sr))
    return results


def _effect_task(items: list[tuple[str, str]]) -> list[tuple[str, str | float]]:
    """Decode sound effects (first 30 s) to 16 kHz wav: (dest, duration or what is wrong)."""
    results: list[tuple[str, str | float]] = []
    for source, dest in items:
        try:
            signal = _read_any(source, seconds=30.0)
        except Exception as err:   # noqa: BLE001 - any reader failure means a bad source
            results.append((dest, f"cannot decode: {err}"))
            continue
        problem = _problem(signal, MIN_NOISE_SECONDS)
        if problem:
            results.append((dest, problem))
            continue
        _write(Path(dest), _finish(signal))
        results.append((dest, signal.size / SR))
    return results


def median_f0(signal: np.ndarray, sr: int = SR) -> float:
    """Median F0 of the voiced frames (normalised autocorrelation, all frames at once)."""
    frame, hop = int(0.04 * sr), int(0.01 * sr)
    if signal.size < frame:
        return float("nan")
    frames = np.lib.stride_tricks.sliding_window_view(signal, frame)[::hop].astype(np.float64)
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames ** 2).sum(axis=1)
    frames = frames[energy > 0.05 * energy.max()] * np.hanning(frame)
    if not len(frames):
        return float("nan")
    spec = np.fft.rfft(frames, n=2 * frame)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :frame]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(sr / 400), int(sr / 60)
    lags = lo + np.argmax(ac[:, lo:hi], axis=1)
    voiced = ac[np.arange(len(ac)), lags] > 0.45
    if voiced.sum() < 5:
        return float("nan")
    return float(np.median(sr / lags[voiced]))


def source_rate(item: src.SpeechSource) -> int:
    """Sample rate of a recording as the package ships it (8 kHz telephone prompts are band-limited
    to 4 kHz whatever they are resampled to)."""
    if item.codec in FFMPEG_FORMATS:
        return {"g722": 16000, "gsm": 8000}[item.codec]
    return soundfile.info(item.path).samplerate


def _pseudo_task(task: dict) -> list[tuple[str, float]]:
    """Make one pseudo-speaker: Praat change-gender on each of its source utterances."""
    results = []
    for source, dest in zip(task["inputs"], task["outputs"]):
        signal = soundfile.read(source, dtype="float32")[0]
        piece = _finish(voices.change_gender(signal, SR, task["ratio"], task["pitch"]))
        _write(Path(dest), piece, SR)
        results.append((dest, piece.size / SR))
    return results


def _colored_noise(rng: np.random.Generator, seconds: float, exponent: float) -> np.ndarray:
    """Power spectral density ~ f^-exponent (0 white, 1 pink, 2 brown, -1 blue, -2 violet)."""
    n = int(seconds * SR)
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    freqs[0] = freqs[1]
    signal = np.fft.irfft(spec * freqs ** (-exponent / 2), n)
    return (0.3 * signal / np.max(np.abs(signal))).astype(np.float32)


def _render_module(path: str, seconds: float) -> np.ndarray:
    """A tracker module (real sampled instruments) rendered to 48 kHz stereo by libopenmpt."""
    raw = _ffmpeg(["-f", "libopenmpt", "-i", path, "-t", str(seconds), "-ar", "48000", "-ac", "2",
                   "-f", "f32le", "pipe:1"])
    return np.frombuffer(raw, dtype=np.float32).reshape(-1, 2).copy()


# --- the builder ----------------------------------------------------------------------------

class Builder:
    def __init__(self, source_root: Path, out: Path, options: Options):
        self.root = source_root
        self.out = out
        self.opt = options
        self.size = options.sizes
        self.rng = np.random.default_rng(options.seed)
        self.report = Report(root=str(source_root))
        self.speakers: dict[str, dict] = {}     # pool speaker id -> info
        self.utts: list[dict] = []               # speech pool rows
        self.noise: list[dict] = []              # noise pool rows
        self.missing_voices: list[str] = []      # synthesiser voices whose package is missing
        self.missing_packages: list[str] = []    # voice packages that were not downloaded
        self.unused_bases: list[tuple[str, str]] = []
        self.joined_parts: dict[str, list[str]] = {}  # joined staged file -> the recordings in it

    # -- helpers
    def _pool_map(self, func, tasks, desc: str):
        if self.opt.jobs <= 1 or len(tasks) <= 1:
            for task in tqdm(tasks, desc=desc, unit="task", file=sys.stderr):
                yield func(task)
            return
        with Pool(self.opt.jobs) as pool:
            yield from tqdm(pool.imap(func, tasks), total=len(tasks), desc=desc, unit="task", file=sys.stderr)

    def _batched(self, func, items: list, desc: str, batch: int = 32) -> list:
        """func over `items` in batches on the worker processes; the results in order, flattened."""
        tasks = [items[i:i + batch] for i in range(0, len(items), batch)]
        return [r for results in self._pool_map(func, tasks, desc) for r in results]

    def _cap(self, items: list, cap: int) -> list:
        if len(items) <= cap:
            return items
        keep = np.sort(self.rng.choice(len(items), cap, replace=False))
        return [items[i] for i in keep]

    def _prefer(self, items: list, cap: int, preferred) -> list:
        """At most `cap` items, in their order; when capping (--small), first those `preferred(item)`
        accepts, then a random draw of the rest. Uncapped, the list is returned as it is."""
        if len(items) <= cap:
            return items
        first = [item for item in items if preferred(item)][:cap]
        rest = self._cap([item for item in items if not preferred(item)], cap - len(first))
        chosen = {id(item) for item in first + rest}
        return [item for item in items if id(item) in chosen]

    def _spoken_stamp(self, utt_or_name: str) -> str | None:
        """The stamp ('tp_<stem>') a Tux Paint spoken description or name is about, if any."""
        from speechlib.data.image_pairs import SPOKEN

        match = SPOKEN.search("_" + utt_or_name)
        return "tp_" + match["stem"] if match else None

    def _distinct_content(self, outputs: list[str], sources: list[str]) -> list[str]:
        """The decoded outputs whose audio no earlier one has; the others are deleted and counted.

        Two package files may differ in their bytes (container metadata) and still decode to the
        same samples (a Tux Paint letter under two stamp names, one sound effect for two animals);
        written the same way, equal samples make equal wav bytes."""
        seen: set[str] = set()
        kept = []
        for out, source in zip(outputs, sources):
            digest = hashlib.sha1(Path(out).read_bytes()).hexdigest()
            if digest in seen:
                self.report.skip("duplicate of another source file", source, "same decoded audio")
                os.unlink(out)
                continue
            seen.add(digest)
            kept.append(out)
        return kept

    def _unique(self, items: list) -> list:
        """Packages ship some recordings twice (a letter under two stamp folders): keep one."""
        seen: set[str] = set()
        result = []
        for item in items:
            digest = hashlib.sha1(Path(item.path).read_bytes()).hexdigest()
            if digest in seen:
                self.report.skip("duplicate of another source file", item.path)
                continue
            seen.add(digest)
            result.append(item)
        return result

    # -- speech
    def build_speech(self) -> None:
        ast, genders, skipped = src.asterisk_speech(self.root)
        tp, tp_skipped = src.tuxpaint_speech(self.root)
        for reason, count in list(skipped.items()) + list(tp_skipped.items()):
            self.report.skipped[reason] += count
        if not ast:
            raise InputError("no asterisk prompts found in the extracted packages", str(self.root))
        by_key: dict[tuple[str, str], list[src.SpeechSource]] = defaultdict(list)
        for item in self._unique(ast + tp):
            by_key[(item.spk, item.lang)].append(item)
        selected: list[src.SpeechSource] = []
        pictured = {item.name for item in src.tuxpaint_stamp_sounds(self.root)}
        for (spk, lang), items in sorted(by_key.items()):
            if spk == "ast_allison" and lang == "en":
                selected += self._cap(items, self.size["allison_en"])
            elif spk.startswith("tp_"):   # --small: descriptions of stamps with a picture first
                selected += self._prefer(items, self.size["tp_cap"],
                                         lambda item: self._spoken_stamp(item.name) in pictured)
            else:
                selected += self._cap(items, self.size["per_lang_cap"])
        # decode everything to a staging area first; the LibriSpeech tree and the pool take from it
        stage = self.out / ".stage"
        jobs: dict[str, list[tuple[str, str]]] = defaultdict(list)
        meta: dict[str, src.SpeechSource] = {}
        for item in selected:
            out = stage / item.spk / item.lang / f"{item.name}.wav"
            jobs[item.codec].append((item.path, str(out)))
            meta[str(out)] = item
        meta.update(self._synthesise(stage, jobs))
        tasks = []
        for codec, items in jobs.items():
            batch = 64 if codec in FFMPEG_FORMATS else 48
            tasks += [(codec, items[i:i + batch], "") for i in range(0, len(items), batch)]
        decoded: dict[str, float] = {}
        for results in self._pool_map(_decode_task, tasks, "decode speech"):
            for out, value in results:
                if isinstance(value, str):
                    reason = ("corrupt or undecodable" if "decode" in value else
                              "too short" if "shorter" in value else "empty or silent")
                    self.report.skip(reason, meta[out].path, value)
                else:
                    decoded[out] = value
        kept = self._distinct_content(sorted(decoded), [meta[out].path for out in sorted(decoded)])
        self.staged = [(meta[out], out, decoded[out]) for out in kept]
        # speakers: gender from the package where stated, else from measured F0
        by_spk: dict[str, list[tuple[src.SpeechSource, str]]] = defaultdict(list)
        for item, out, _ in self.staged:
            by_spk[item.spk].append((item, out))
        synth = {v.base: v for v in voices.SYNTH_VOICES}
        for spk, entries in sorted(by_spk.items()):
            outs = [out for _, out in entries]
            picked = entries[:: max(1, len(entries) // 12)][:12]
            f0 = median_f0(np.concatenate([soundfile.read(out, dtype="float32")[0] for _, out in picked]))
            rate = int(np.median([source_rate(item) for item, _ in picked]))
            if len(outs) < 5:
                for out in outs:
                    self.report.skip("speaker with fewer than 5 utterances", meta[out].path)
                continue
            if spk in synth:
                gender, rule, kind = synth[spk].gender, "package description", "synthesised"
                source = f"{synth[spk].package} ({synth[spk].engine} voice {synth[spk].voice})"
                transform = f"{synth[spk].engine} text-to-speech"
            else:
                kind, transform = "real", "none"
                if spk in genders:
                    gender, rule = genders[spk], "package"
                else:
                    gender, rule = ("f" if f0 >= F0_GENDER_THRESHOLD else "m"), "f0"
                source = "asterisk-core-sounds" if spk.startswith("ast_") else "tuxpaint-stamps-default"
                if spk in ("ast_prompt_es_co", "ast_armelle") or "menardi" in spk:
                    source = {"ast_prompt_es_co": "asterisk-prompt-es-co", "ast_armelle": "asterisk-prompt-fr-armelle"}.get(
                        spk, "asterisk-prompt-it-menardi-wav")
            self.speakers[spk] = dict(spk=spk, gender=gender, gender_rule=rule, kind=kind, source=source,
                                      f0=f0, langs=set(), libri_id="", subset="", base=spk, transform=transform,
                                      rate=rate)
        self.staged = [s for s in self.staged if s[0].spk in self.speakers]

    def _synthesise(self, stage: Path, jobs: dict[str, list[tuple[str, str]]]) -> dict[str, src.SpeechSource]:
        """Recorded-voice synthesisers read real text (Tux Paint translations); decoded like files.

        English voices get the English stamp names/descriptions, each voice a disjoint slice: the
        evaluation voices `eval_utts_en` per speaker plus the DNS English test sentences, the
        training voice (syn_ked) `train_synth_utts`. A voice whose package is missing is reported
        and left out.
        """
        voices.relocate_festival(self.root)
        texts = {lang: voices.reading_texts(voices.tuxpaint_texts(self.root, lang), self.rng)
                 for lang in sorted({v.lang for v in voices.SYNTH_VOICES})}
        used = Counter()
        tasks, meta = [], {}
        for voice in voices.SYNTH_VOICES:
            if not voices.available(self.root, voice):
                self.missing_voices.append(f"{voice.base} ({voice.package})")
                continue
            if voice.base in TRAIN_BASES:
                count = self.size["train_synth_utts"]
            elif voice.lang == "en":
                count = 2 * self.size["eval_utts_en"] + self.size["dns_per_lang"] // 2
            else:
                count = 2 * self.size["eval_utts"]
            pool = texts[voice.lang][used[voice.lang]: used[voice.lang] + count]
            used[voice.lang] += len(pool)
            items = []
            for index, text in enumerate(pool):
                raw = stage / ".synth" / voice.base / f"{index:04d}.wav"
                out = stage / voice.base / voice.lang / f"s{index:04d}.wav"
                items.append((text, str(raw)))
                jobs["file"].append((str(raw), str(out)))
                meta[str(out)] = src.SpeechSource(voice.base, voice.lang, f"s{index:04d}", text, str(raw), "file")
            tasks.append(dict(root=str(self.root), voice=asdict(voice), items=items))
        failed = set()
        for results in self._pool_map(voices.synthesise, tasks, "synthesise"):
            for raw, problem in results:
                if problem:
                    failed.add(raw)
                    self.report.skip("synthesis failed", raw, problem)
        jobs["file"] = [(raw, out) for raw, out in jobs["file"] if raw not in failed]
        return {out: item for out, item in meta.items() if item.path not in failed}

    def build_librispeech(self) -> None:
        """The LibriSpeech tree: English training voices in train, base voices split over dev/test.

        train-clean-100: the real English voices (Allison, Tux Paint en_GB) and the festival
        voice ked, as they are and as same-gender pseudo-speakers (English only, for ASR).
        dev-clean / test-clean: every other base voice (real or synthesised) gives two speakers
        to exactly one set: itself, and one pseudo-speaker of the other gender made from
        *other* utterances of it. So each set has one female and one male per base voice, no
        base voice is in two sets, and same-gender trials always compare different people.
        These sets hold several languages: utt2lang (per subset) says which; English ones
        are spread over both sets first and read more, then the others by bandwidth of their
        source recordings (8 kHz telephone prompts last: they fill a set only when the wideband
        voices run out) and by amount of speech.
        """
        ls = self.out / "LibriSpeech"
        self.libri: list[dict] = []
        self.used_staged: set[str] = set()
        next_id = {"train-clean-100": 1000, "dev-clean": 2000, "test-clean": 3000}
        by_spk: dict[str, list] = defaultdict(list)
        for entry in self.staged:
            by_spk[entry[0].spk].append(entry)
        pseudo_tasks: list[dict] = []
        plans: list[tuple[str, str]] = []

        def speaker(subset: str, pool_spk: str, items: list, lang: str) -> int:
            libri_id = next_id[subset]
            next_id[subset] += 1
            for index, (item, staged, _) in enumerate(items):
                dest = self._libri_path(ls, subset, libri_id, index)
                self.libri.append(dict(subset=subset, libri_id=libri_id, index=index, text=item.text, lang=lang,
                                       dest=str(dest), pool_spk=pool_spk, origin=staged))
                self.used_staged.update(self.joined_parts.get(staged, [staged]))
            return libri_id

        def keep(spk: str, items: list, subset: str) -> None:
            info = self.speakers[spk]
            info["libri_id"], info["subset"] = str(speaker(subset, spk, items, items[0][0].lang)), subset
            plans.extend((staged, self.libri[-len(items) + i]["dest"]) for i, (_, staged, _) in enumerate(items))

        def pseudo(base: str, items: list, subset: str, gender: str, ratio: float, pitch: float) -> None:
            base_info = self.speakers[base]
            libri_id = next_id[subset]
            spk = f"ps{libri_id}"
            speaker(subset, spk, items, items[0][0].lang)
            self.speakers[spk] = dict(
                spk=spk, gender=gender, gender_rule="target F0 (Praat change gender)", kind="pseudo",
                source=base_info["source"], f0=pitch, langs={items[0][0].lang}, libri_id=str(libri_id),
                subset=subset, base=base, transform=f"praat change-gender formants x{ratio:.3f} median F0 {pitch:.0f} Hz")
            pseudo_tasks.append(dict(inputs=[staged for _, staged, _ in items], ratio=ratio, pitch=pitch,
                                     outputs=[r["dest"] for r in self.libri[-len(items):]]))

        # training voices: English only
        for base in TRAIN_BASES:
            items = [e for e in by_spk.get(base, []) if e[0].lang == "en"]
            if base not in self.speakers or len(items) < 5:
                continue
            gender = self.speakers[base]["gender"]
            own = items[: max(5, len(items) // 4)] if base == "ast_allison" else items[: self.size["train_own_utts"]]
            keep(base, own, "train-clean-100")
            rest = items[len(own):] or items
            for k in range(self.size["train_pseudo"].get(base, 0)):
                new_gender = ("f", "m")[k % 2]
                if new_gender == gender:
                    ratio, pitch = voices.same_gender_target(self.rng, gender)
                else:
                    new_gender, ratio, pitch = voices.flip_target(self.rng, gender)
                pick = np.sort(self.rng.choice(len(rest), min(self.size["pseudo_train_utts"], len(rest)), replace=False))
                pseudo(base, [rest[i] for i in pick], "train-clean-100", new_gender, ratio, pitch)
        # evaluation voices: every other base with enough utterances in one language
        need = 2 * 3
        candidates = []
        for base in sorted(self.speakers):
            if base in TRAIN_BASES or self.speakers[base]["kind"] == "pseudo":
                continue
            langs = Counter(e[0].lang for e in by_spk[base])
            lang, count = max(sorted(langs.items()), key=lambda kv: kv[1])
            if count >= need:
                seconds = sum(e[2] for e in by_spk[base] if e[0].lang == lang)
                bandwidth = min(self.speakers[base]["rate"], SR)     # 8 kHz prompts last
                candidates.append((-bandwidth, -min(seconds, 4 * self.size["eval_utts"] * 4.0), base, lang))
        candidates = [(base, lang) for _, _, base, lang in sorted(candidates)]
        sets = assign_eval_bases(candidates, self.rng, self.missing_packages + self.missing_voices)
        self.unused_bases = sorted(set(candidates) - {c for v in sets.values() for c in v})
        for subset, chosen in sets.items():
            for base, lang in chosen:
                # the longest utterances (a speaker embedding needs speech; one-word recordings are
                # joined), alternately to the voice itself and to its pseudo-speaker
                items = [e for e in by_spk[base] if e[0].lang == lang]
                joined = self._join_short(items) if self.speakers[base]["kind"] == "real" else items
                items = sorted(joined if len(joined) >= need else items, key=lambda e: (-e[2], e[1]))
                half = min(self.size["eval_utts_en" if lang == "en" else "eval_utts"], len(items) // 2)
                keep(base, items[0: 2 * half: 2], subset)
                gender, ratio, pitch = voices.flip_target(self.rng, self.speakers[base]["gender"])
                pseudo(base, items[1: 2 * half: 2], subset, gender, ratio, pitch)
        durations: dict[str, float] = dict(self._batched(_copy_task, plans, "LibriSpeech copies"))
        for results in self._pool_map(_pseudo_task, pseudo_tasks, "pseudo-speakers"):
            durations.update(dict(results))
        # transcripts, utt2lang and SPEAKERS.TXT
        chapters: dict[tuple[str, int], list[dict]] = defaultdict(list)
        utt2lang: dict[str, list[str]] = defaultdict(list)
        for row in self.libri:
            row["duration"] = durations[row["dest"]]
            chapters[(row["subset"], row["libri_id"])].append(row)
            utt2lang[row["subset"]].append(f"{Path(row['dest']).stem} {row['lang']}\n")
        for (subset, libri_id), rows in chapters.items():
            chapter = libri_id * 10 + 1
            lines = [f"{libri_id}-{chapter}-{r['index']:04d} {_libri_text(r['text'])}\n"
                     for r in sorted(rows, key=lambda r: r["index"])]
            atomic_write_text(ls / subset / str(libri_id) / str(chapter) / f"{libri_id}-{chapter}.trans.txt",
                              "".join(lines))
        for subset, lines in utt2lang.items():
            atomic_write_text(ls / subset / "utt2lang", "".join(sorted(lines)))
        minutes = Counter()
        for row in self.libri:
            minutes[row["libri_id"]] += row["duration"] / 60
        lines = [";ID  |SEX| SUBSET           |MINUTES| NAME\n"]
        for info in sorted(self.speakers.values(), key=lambda i: int(i["libri_id"] or 0)):
            if not info["libri_id"]:
                continue
            lid = int(info["libri_id"])
            name = (f"{info['kind']}: {info['spk']} base {info['base']}, {info['transform']}, "
                    f"gender by {info['gender_rule']} ({info['source']})")
            lines.append(f"{lid:<5}| {info['gender'].upper()} | {info['subset']:<17}| {minutes[lid]:5.2f} | "
                         f"{name.replace('|', '/')}\n")
        atomic_write_text(ls / "SPEAKERS.TXT", "".join(lines))
        for row in self.libri:
            self.speakers[row["pool_spk"]]["langs"].add(row["lang"])

    def _join_short(self, items: list) -> list:
        """Join consecutive recordings shorter than EVAL_MIN_SECONDS (spoken names: about half a
        second each) into utterances of at least that length, 0.2 s of silence between them."""
        result, group = [], []
        for entry in sorted(items, key=lambda e: e[1]) + [None]:
            if entry is not None and entry[2] >= EVAL_MIN_SECONDS and not group:
                result.append(entry)
                continue
            if entry is not None:
                group.append(entry)
            total = sum(e[2] for e in group) + 0.2 * max(0, len(group) - 1)
            if group and (entry is None or total >= EVAL_MIN_SECONDS):
                if len(group) == 1 or (entry is None and total < EVAL_MIN_SECONDS / 2 and result):
                    result.extend(group)
                else:
                    gap = np.zeros(int(0.2 * SR), np.float32)
                    audio = np.concatenate([x for e in group for x in (soundfile.read(e[1], dtype="float32")[0], gap)])
                    first = group[0][0]
                    dest = Path(group[0][1]).with_name(f"joined_{Path(group[0][1]).stem}.wav")
                    _write(dest, audio[: -gap.size])
                    joined = src.SpeechSource(first.spk, first.lang, "joined_" + first.name,
                                              " ".join(e[0].text for e in group), first.path, first.codec)
                    result.append((joined, str(dest), (audio.size - gap.size) / SR))
                    self.joined_parts[str(dest)] = [e[1] for e in group]
                group = []
        return result

    @staticmethod
    def _libri_path(ls: Path, subset: str, libri_id: int, index: int) -> Path:
        chapter = libri_id * 10 + 1
        return ls / subset / str(libri_id) / str(chapter) / f"{libri_id}-{chapter}-{index:04d}.flac"

    def build_pool_index(self) -> None:
        """The speech pool: real and synthesised utterances the LibriSpeech tree did not take.

        The DNS clean speech is held out of every list: in English the leftovers of the
        evaluation voices (no training voice), in every other language `dns_per_lang` leftovers
        drawn before the rest becomes the pool (a recipe may train on the pool, e.g. audio2image
        on spoken stamp descriptions, and test on DNS: no file may be in both).
        """
        speech = self.out / "speech"
        eval_bases = {info["base"] for info in self.speakers.values()
                      if info["subset"] in ("dev-clean", "test-clean")}
        leftovers = [entry for entry in self.staged if entry[1] not in self.used_staged]
        by_lang: dict[str, list[tuple[src.SpeechSource, str, float]]] = defaultdict(list)
        for entry in leftovers:
            if entry[0].lang == "en":
                if entry[0].spk in eval_bases:
                    by_lang["en"].append(entry)
            else:
                by_lang[entry[0].lang].append(entry)
        self.heldout_dns = {lang: self._cap(entries, self.size["dns_per_lang"])
                            for lang, entries in sorted(by_lang.items())}
        held = {staged for entries in self.heldout_dns.values() for _, staged, _ in entries}
        copies = []
        for item, staged, dur in leftovers:
            if staged in held or (item.lang == "en" and item.spk in eval_bases):
                continue
            dest = speech / item.lang / item.spk / f"{item.spk}-{item.lang}_{item.name}.flac"
            copies.append((staged, str(dest)))
            self.speakers[item.spk]["langs"].add(item.lang)
            self.utts.append(dict(utt=f"{item.spk}-{item.lang}_{item.name}", spk=item.spk, lang=item.lang,
                                  path=src.relpath(dest, self.out), duration=dur, text=item.text,
                                  split="pool"))
        self._batched(_copy_task, copies, "speech pool")
        for row in self.libri:
            utt_name = Path(row["dest"]).stem.replace("-", "_")
            self.utts.append(dict(utt=f"{row['pool_spk']}-{row['lang']}_{utt_name}", spk=row["pool_spk"],
                                  lang=row["lang"], path=src.relpath(row["dest"], self.out),
                                  duration=row["duration"], text=row["text"], split=row["subset"]))
        self.utts.sort(key=lambda r: r["utt"])

    # -- noise, music, pictures
    def build_noise(self) -> None:
        noise_dir = self.out / "noise"
        described = {self._spoken_stamp(row["utt"]) for row in self.utts if row["split"] == "pool"}
        # --small: stamps whose description the speech pool holds first, so pairs of both kinds exist
        stamps = self._prefer(self._unique(src.tuxpaint_stamp_sounds(self.root)), self.size["stamp_cap"],
                              lambda item: item.name in described)
        ui = self._unique(src.ui_sounds(self.root))
        moh, mods = src.music_tracks(self.root)
        self.pairs = []
        effects = stamps + ui
        decoded = self._batched(_effect_task, [(item.path, str(noise_dir / item.category / f"{item.name}.wav"))
                                               for item in effects], "sound effects")
        written = [dest for dest, value in decoded if not isinstance(value, str)]
        distinct = set(self._distinct_content(written, [item.path for item, (_, value) in zip(effects, decoded)
                                                        if not isinstance(value, str)]))
        for item, (dest, value) in zip(effects, decoded):
            if isinstance(value, str):
                reason = ("corrupt or undecodable" if "decode" in value else
                          "too short" if "shorter" in value else "empty or silent")
                self.report.skip(reason, item.path, value)
                continue
            if dest not in distinct:
                continue
            dest = Path(dest)
            self._add_noise(item.name, dest, item.category, item.package, value)
            if item.image:
                self.pairs.append((item, dest))
        for item in moh:
            for clip in range(self.size["moh_clips"]):
                try:
                    signal = _read_any(item.path, seconds=20.0, offset=15.0 + 40.0 * clip)
                except Exception as err:   # noqa: BLE001
                    self.report.skip("corrupt or undecodable", item.path, str(err))
                    break
                if _problem(signal):
                    continue
                name = f"{item.name}_{clip}"
                dest = noise_dir / "music" / f"{name}.wav"
                _write(dest, _finish(signal))
                self._add_noise(name, dest, "music", item.package, signal.size / SR)
        music48 = self.out / "music48k"
        self.music48 = []
        for item in mods[: self.size["music_tracks"]]:
            try:
                stereo = _render_module(item.path, self.size["music_seconds"])
            except RuntimeError as err:
                self.report.skip("corrupt or undecodable", item.path, str(err))
                continue
            if _problem(stereo.mean(axis=1)):
                self.report.skip("empty or silent", item.path)
                continue
            peak = float(np.max(np.abs(stereo)))
            stereo = stereo * np.float32(min(1.0, 0.97 / max(peak, 1e-9)))
            dest = music48 / f"{item.name}.flac"
            dest.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(str(dest), stereo, 48000, subtype="PCM_16")
            self.music48.append(dict(name=item.name, path=src.relpath(dest, self.out),
                                     duration=stereo.shape[0] / 48000, package=item.package))
            mono = resample(stereo.mean(axis=1), 48000, SR)
            pool_dest = noise_dir / "music" / f"{item.name}.wav"
            _write(pool_dest, _finish(mono))
            self._add_noise(item.name, pool_dest, "music", item.package, mono.size / SR)
        # coloured noise (channel/environment/background) and babble (human group sounds)
        for colour, exponent in (("white", 0), ("pink", 1), ("brown", 2), ("blue", -1), ("violet", -2)):
            for clip in range(self.size["noise_clips"]):
                name = f"noise_{colour}_{clip}"
                dest = noise_dir / "background" / f"{name}.wav"
                _write(dest, _colored_noise(self.rng, 10.0 if not self.opt.small else 4.0, exponent))
                self._add_noise(name, dest, "background", "synthetic (numpy)", 10.0 if not self.opt.small else 4.0)
        talkers = [u for u in self.utts if u["split"] == "pool"]
        for clip in range(self.size["babble"]):
            seconds = 6.0 if not self.opt.small else 3.0
            mix = np.zeros(int(seconds * SR), np.float32)
            for pick in self.rng.choice(len(talkers), 6, replace=False):
                signal = soundfile.read(self.out / talkers[pick]["path"], dtype="float32")[0]
                signal = np.tile(signal, int(np.ceil(mix.size / signal.size)))[: mix.size]
                mix += np.roll(signal, int(self.rng.integers(mix.size))) / max(1e-3, float(np.std(signal)))
            name = f"babble_{clip}"
            dest = noise_dir / "human" / f"{name}.wav"
            _write(dest, _finish(0.3 * mix / float(np.max(np.abs(mix)))))
            self._add_noise(name, dest, "human", "speech pool (6 talkers mixed)", seconds)
        self.noise.sort(key=lambda r: r["clip"])

    def _add_noise(self, name: str, dest: Path, category: str, package: str, duration: float) -> None:
        self.noise.append(dict(clip=name, category=category, path=src.relpath(dest, self.out),
                               source=package, duration=duration))

    def build_pairs(self) -> None:
        """Tux Paint sound effects with their pictures: audio_image/<category>/<name>.{wav,png}."""
        root = self.out / "audio_image"
        rows = []
        for item, wav in self.pairs:
            group = item.group.replace("/", "_")
            dest_dir = root / group
            dest_dir.mkdir(parents=True, exist_ok=True)
            audio = dest_dir / wav.name
            os.link(wav, audio) if _same_fs(wav, dest_dir) else shutil.copyfile(wav, audio)
            image = dest_dir / (wav.stem + Path(item.image).suffix)
            shutil.copyfile(item.image, image)
            rows.append(f"{wav.stem}\t{item.group}\t{item.category}\t{src.relpath(audio, self.out)}\t"
                        f"{src.relpath(image, self.out)}\n")
        atomic_write_text(root / "index.tsv", "name\tgroup\tcategory\taudio\timage\n" + "".join(sorted(rows)))

    def build_wham(self) -> None:
        """WHAM!-style noise: ambient scenes (babble or coloured noise + events), tr/cv/tt.

        Every source clip belongs to exactly one split (by a hash of its name), so the scenes
        of two splits never share a recording.
        """
        root = self.out / "wham_noise"
        by_split: dict[str, list[dict]] = defaultdict(list)
        for row in self.noise:
            bucket = int(hashlib.md5(row["clip"].encode()).hexdigest(), 16) % 10
            by_split["tt" if bucket == 0 else "cv" if bucket == 1 else "tr"].append(row)
        seconds = self.size["wham_seconds"]
        n = int(seconds * SR)
        for split, count in zip(("tr", "cv", "tt"), self.size["wham"]):
            pool = by_split[split]
            beds = [r for r in pool if r["category"] in ("background", "human") or r["clip"].startswith("moh_")]
            events = [r for r in pool if r not in beds]
            if not beds:
                beds = pool
            lines = ["utterance_id,duration,sample_rate,components\n"]
            for index in range(count):
                parts = [beds[int(self.rng.integers(len(beds)))]] + \
                    [events[int(i)] for i in self.rng.choice(len(events), min(2, len(events)), replace=False)]
                mix = np.zeros(n, np.float32)
                for k, row in enumerate(parts):
                    signal = soundfile.read(self.out / row["path"], dtype="float32")[0]
                    if signal.size < n:
                        signal = np.tile(signal, int(np.ceil(n / signal.size))) if k == 0 else \
                            np.pad(signal, (int(self.rng.integers(n - signal.size + 1)), 0))
                    signal = signal[:n]
                    signal = np.pad(signal, (0, n - signal.size))
                    gain = 1.0 if k == 0 else 10 ** (self.rng.uniform(-12, 0) / 20)
                    mix += gain * signal / max(1e-4, float(np.sqrt(np.mean(signal ** 2))))
                mix = _finish(0.1 * mix / max(1e-4, float(np.sqrt(np.mean(mix ** 2)))))
                name = f"{split}_{index:04d}"
                _write(root / split / f"{name}.wav", mix)
                lines.append(f"{name},{seconds},{SR},{'+'.join(r['clip'] for r in parts)}\n")
            atomic_write_text(root / "metadata" / f"noise_meta_{split}.csv", "".join(lines))

    def build_dns(self) -> None:
        """DNS-Challenge-style: datasets/clean/<language>/*.flac and datasets/noise/*.wav.

        The clean speech is the held-out utterances of build_pool_index (in no other list; in
        English read by evaluation voices only). File names carry the speaker (English
        `<spk>_<name>`, others `<spk>-<lang>_<name>` as in the pool), so recipes split by reader.
        """
        root = self.out / "dns" / "datasets"
        copies = []
        for lang, entries in self.heldout_dns.items():
            folder = root / "clean" / src.LANG_NAMES.get(lang, lang)
            for item, staged, _ in entries:
                name = f"{item.spk}_{item.name}" if lang == "en" else f"{item.spk}-{item.lang}_{item.name}"
                copies.append((staged, str(folder / f"{name}.flac")))
        self._batched(_copy_task, copies, "DNS clean speech")
        for row in self.noise:
            if row["category"] != "music":
                _link(self.out / row["path"], root / "noise" / Path(row["path"]).name)
        shutil.rmtree(self.out / ".stage")

    # -- metadata
    def write_metadata(self) -> None:
        header = "utt\tspk\tlang\tsplit\tduration\tpath\ttext\n"
        atomic_write_text(self.out / "speech" / "index.tsv", header + "".join(
            f"{r['utt']}\t{r['spk']}\t{r['lang']}\t{r['split']}\t{r['duration']:.3f}\t{r['path']}\t{r['text']}\n"
            for r in self.utts))
        atomic_write_text(self.out / "noise" / "index.tsv", "clip\tcategory\tduration\tpath\tsource\n" + "".join(
            f"{r['clip']}\t{r['category']}\t{r['duration']:.3f}\t{r['path']}\t{r['source']}\n" for r in self.noise))
        atomic_write_text(self.out / "music48k" / "index.tsv", "name\tduration\tpath\tsource\n" + "".join(
            f"{r['name']}\t{r['duration']:.3f}\t{r['path']}\t{r['package']}\n" for r in self.music48))
        used = {r["spk"] for r in self.utts}
        rows = []
        for spk in sorted(used):
            info = self.speakers[spk]
            rows.append(f"{spk}\t{info['gender']}\t{','.join(sorted(info['langs']))}\t{info['kind']}\t"
                        f"{info['gender_rule']}\t{info['f0']:.1f}\t{info['libri_id'] or '-'}\t"
                        f"{info['subset'] or '-'}\t{info['source']}\t{info['base']}\t{info['transform']}\t"
                        f"{self.speakers[info['base']]['rate']}\n")
        atomic_write_text(self.out / "speakers.tsv",
                          "spk\tgender\tlangs\tkind\tgender_rule\tmedian_f0\tlibri_id\tlibri_subset\tsource\tbase"
                          "\ttransform\tsource_rate\n"
                          + "".join(rows))
        self._write_readme(used)
        self._write_licenses()

    def _write_readme(self, used: set[str]) -> None:
        hours = sum(r["duration"] for r in self.utts) / 3600
        by_lang = Counter(r["lang"] for r in self.utts)
        dur_lang = Counter()
        for r in self.utts:
            dur_lang[r["lang"]] += r["duration"] / 60
        kinds = Counter((self.speakers[s]["kind"], self.speakers[s]["gender"]) for s in used)
        kind_names = ("real", "synthesised", "pseudo")
        bases = {self.speakers[s]["base"] for s in used}
        english = sorted({item.spk for item, _, _ in self.staged if item.lang == "en"})
        lines = [
            "# Mini corpus", "",
            f"Built by `tools/make_mini_corpus.sh`{' --small' if self.opt.small else ''} "
            f"(format {FORMAT_VERSION}, seed {self.opt.seed}). Real recorded speech, noise and music from "
            "Debian packages (see LICENSES.md), recorded-voice synthesisers (festival, flite) reading real "
            "text, and pseudo-speakers (Praat change-gender of one base voice).", "",
            "## Speech", "",
            f"- utterances: {len(self.utts)}, hours: {hours:.2f}",
            f"- speakers: {len(used)} from {len(bases)} base voices (recorded people) = "
            + ", ".join(f"{k} {g}: {kinds[(k, g)]}" for k in kind_names for g in ("f", "m")),
            f"- languages ({len(by_lang)}): " + ", ".join(f"{l} {by_lang[l]} utts / {dur_lang[l]:.1f} min"
                                                         for l in sorted(by_lang)),
            "- missing voice packages: " + (", ".join(self.missing_packages) or "none")
            + "; voices left out: " + (", ".join(self.missing_voices) or "none"),
            "", "LibriSpeech layout. train-clean-100 is English only; dev-clean and test-clean hold 20 base voices "
            "each (one female and one male speaker per base voice: the voice itself and a pseudo-speaker of the "
            "other gender), in several languages: `<subset>/utt2lang` says which, compute WER on `en` only. "
            f"The packages hold {len(english)} recorded people who speak English ({', '.join(english)}), "
            "and the speaker protocol needs 40 distinct base voices, so the evaluation sets cannot be English "
            "only: the English voices are dealt to them first and read "
            f"{self.size['eval_utts_en']} utterances per speaker (the others {self.size['eval_utts']}). Voices "
            "recorded below 16 kHz (the 8 kHz telephone prompts; speakers.tsv `source_rate`; resampling cannot "
            "restore the band they lack) are dealt last: they fill an evaluation set only when the wideband "
            "voices run out, and otherwise go to the speech pool. "
            "Speaker-verification figures (resemblyzer EER, same-gender pairs / VoicePrivacy-style trial lists) "
            "and DistillMOS means are added below by `python -m speechlib.data.mini_quality` "
            "(tests/benchmarks/bench_mini_corpus.py).", "",
            "| subset | speakers f | speakers m | real | synthesised | pseudo | base voices | English speakers "
            "| utterances | English utts | minutes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for subset in ("train-clean-100", "dev-clean", "test-clean"):
            spks = {r["pool_spk"] for r in self.libri if r["subset"] == subset}
            g = Counter(self.speakers[s]["gender"] for s in spks)
            k = Counter(self.speakers[s]["kind"] for s in spks)
            rows = [r for r in self.libri if r["subset"] == subset]
            eng = {r["pool_spk"] for r in rows if r["lang"] == "en"}
            lines.append(f"| {subset} | {g['f']} | {g['m']} | {k['real']} | {k['synthesised']} | {k['pseudo']} | "
                         f"{len({self.speakers[s]['base'] for s in spks})} | {len(eng)} | {len(rows)} | "
                         f"{sum(r['lang'] == 'en' for r in rows)} | {sum(r['duration'] for r in rows) / 60:.1f} |")
        lines += ["", "Kinds: `real` = a recording of a person; `synthesised` = festival/flite voice built from one "
                  "person's recordings, reading real text (Tux Paint stamp texts); `pseudo` = Praat change-gender "
                  "(PSOLA pitch + formant shift) of one base voice's other utterances. Gender: stated by the package "
                  "(asterisk voice directories, festvox package descriptions, CMU ARCTIC notes for flite voices); "
                  "from the median F0 (>= 160 Hz: f) for Tux Paint volunteers and the unlabelled asterisk prompt "
                  "voices; from the target F0 for pseudo-speakers. Tux Paint is assumed to have one volunteer per "
                  "language. No base voice is in two of train/dev/test; the DNS clean speech is held out of every "
                  "other list (English: utterances of dev/test voices that dev/test do not hold). Base voices not needed (in the speech pool): "
                  + (", ".join(b for b, _ in self.unused_bases) or "none") + ".", "",
                  "## Noise and music", "", "| AudioSet category | clips | minutes |", "|---|---|---|"]
        cats = Counter(r["category"] for r in self.noise)
        for cat in src.AUDIOSET_CATEGORIES:
            mins = sum(r["duration"] for r in self.noise if r["category"] == cat) / 60
            lines.append(f"| {src.AUDIOSET_NAMES[cat]} (`{cat}`) | {cats[cat]} | {mins:.1f} |")
        lines += ["", f"Stereo 48 kHz music (music48k/): {len(self.music48)} tracks.",
                  f"Sound/picture pairs (audio_image/): {len(self.pairs)}.",
                  f"WHAM!-style noise scenes (wham_noise/): tr/cv/tt = {'/'.join(map(str, self.size['wham']))}.",
                  "", "## Skipped source files", ""]
        if self.report.skipped:
            lines += [f"- {reason}: {count}" for reason, count in sorted(self.report.skipped.items())]
        else:
            lines.append("- none")
        lines += ["", "## Layout", "",
                  "- `LibriSpeech/{train-clean-100,dev-clean,test-clean}/<spk>/<chapter>/*.flac`, `*.trans.txt`, "
                  "`SPEAKERS.TXT`",
                  "- `speech/<lang>/<spk>/*.flac` (the pool), `speech/index.tsv` (the pool and the LibriSpeech "
                  "tree; not the held-out DNS speech)",
                  "- `speakers.tsv`: spk, gender, langs, kind (real|synthesised|pseudo), gender rule, median F0, "
                  "LibriSpeech id and subset, source package, base voice, transform, sample rate of the base "
                  "voice's source recordings",
                  "- `noise/<category>/*.wav` (16 kHz mono, AudioSet top-level category), `noise/index.tsv`",
                  "- `music48k/*.flac` (48 kHz stereo), `audio_image/<group>/<name>.{wav,png|svg}`",
                  "- `wham_noise/{tr,cv,tt}/*.wav`, `wham_noise/metadata/noise_meta_*.csv`",
                  "- `dns/datasets/clean/<language>/*.flac` (held-out files, in no other list; English read by "
                  "evaluation voices only), `dns/datasets/noise/*.wav` (hard links to noise/)", "",
                  "Python: `speechlib.data.mini` writes Kaldi data dirs from these indexes."]
        atomic_write_text(self.out / "README.md", "\n".join(lines) + "\n")

    def _write_licenses(self) -> None:
        lines = ["# Sources and licenses", "",
                 "Every file here derives from these Debian (bookworm) packages; licenses are those of each "
                 "package's `debian/copyright`.", "", "| package | license | what was taken |", "|---|---|---|"]
        for package, (license_, what) in {**src.PACKAGES, **src.VOICE_PACKAGES}.items():
            lines.append(f"| {package} | {license_} | {what} |")
        lines += ["", "Coloured noise is generated (numpy); babble mixes speech-pool utterances; pseudo-speakers "
                  "are transformed copies of their base voice (the base voice's license applies)."]
        atomic_write_text(self.out / "LICENSES.md", "\n".join(lines) + "\n")

    def run(self) -> None:
        self.build_speech()
        self.build_librispeech()
        self.build_pool_index()
        self.build_noise()
        self.build_pairs()
        self.build_wham()
        self.build_dns()
        self.write_metadata()
        if self.report.warnings:
            atomic_write_text(self.out / "skipped.txt", "\n".join(self.report.warnings) + "\n")


def assign_eval_bases(candidates: list[tuple[str, str]], rng: np.random.Generator,
                      missing: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Deal (base voice, language) pairs to dev-clean / test-clean, EVAL_BASES each, disjoint.

    English voices are dealt first so that both sets hold English speech; then the others in the
    order given (the builder lists the voices with most speech first, so that what is left out
    is the one-word recordings). Raises InputError naming the shortfall when there are too few.
    """
    english = [c for c in candidates if c[1] == "en"]
    others = [c for c in candidates if c[1] != "en"]
    order = [english[i] for i in rng.permutation(len(english))] + others
    sets: dict[str, list[tuple[str, str]]] = {"dev-clean": [], "test-clean": []}
    for candidate in order:
        subset = min(sets, key=lambda s: (len(sets[s]), s))
        if len(sets[subset]) < EVAL_BASES:
            sets[subset].append(candidate)
    short = {s: EVAL_BASES - len(v) for s, v in sets.items() if len(v) < EVAL_BASES}
    if short:
        raise InputError(
            f"cannot meet the speaker protocol ({EVAL_BASES} f + {EVAL_BASES} m per evaluation set from "
            f"{EVAL_BASES} distinct base voices, disjoint sets): "
            + ", ".join(f"{s} is {n} base voice(s) short" for s, n in short.items())
            + f" ({len(candidates)} usable base voices besides the training ones)"
            + (f"; missing: {', '.join(missing)}" if missing else ""))
    return sets


def find_debs(debs_dir: Path) -> tuple[list[Path], list[str]]:
    """(the .deb files to unpack, the voice packages that are missing); a missing required package
    is an InputError."""
    debs, missing = [], []
    for package in sorted(src.PACKAGES) + sorted(src.VOICE_PACKAGES):
        found = sorted(debs_dir.glob(f"{package}_*.deb"))
        if found:
            debs.append(found[-1])
        elif package in src.VOICE_PACKAGES:
            missing.append(package)
            print(f"mini_build: warning: voice package {package} not downloaded; building without it",
                  file=sys.stderr)
        else:
            raise InputError(f"package {package} not downloaded; run tools/make_mini_corpus.sh, or point "
                             f"--from-dir at a directory holding {package}_*.deb", str(debs_dir))
    return debs, missing


def _libri_text(text: str) -> str:
    """LibriSpeech style: upper case words, apostrophes kept, other punctuation dropped."""
    cleaned = "".join(ch if ch.isalnum() or ch == "'" else " " for ch in text.upper())
    return " ".join(cleaned.split())


def _same_fs(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def _link(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def extract_debs(debs: list[Path], dest: Path, jobs: int = 2) -> None:
    """Unpack the packages, `jobs` dpkg-deb processes at a time, largest first (they are I/O and
    decompression bound; the two largest alone take most of the time)."""
    queue = sorted(debs, key=lambda d: -d.stat().st_size)
    running: list[tuple[Path, subprocess.Popen]] = []
    with tqdm(total=len(queue), desc="extract packages", unit="deb", file=sys.stderr) as bar:
        while queue or running:
            while queue and len(running) < max(1, jobs):
                deb = queue.pop(0)
                running.append((deb, subprocess.Popen(["dpkg-deb", "-x", str(deb), str(dest)],
                                                      stderr=subprocess.PIPE)))
            deb, proc = running.pop(0)
            _, err = proc.communicate()
            bar.update()
            if proc.returncode != 0:
                for _, other in running:
                    other.wait()
                raise InputError(f"cannot unpack: {err.decode(errors='replace').strip()} "
                                 "(delete it and run tools/make_mini_corpus.sh again to re-download)", str(deb))


def is_complete(out: Path, options: Options) -> bool:
    marker = out / ".complete"
    return marker.is_file() and marker.read_text().strip() == options.digest()


def build(debs_dir: Path, out: Path, options: Options) -> bool:
    """Build `out` unless a complete corpus with the same options is there; True if built."""
    if is_complete(out, options):
        return False
    for pattern in (f".{out.name}.*.tmp", ".mini-src.*"):   # left by a killed build
        for stale in out.parent.glob(pattern):
            shutil.rmtree(stale, ignore_errors=True)
    debs, missing = find_debs(debs_dir)
    with atomic_directory(out) as tmp, tempfile.TemporaryDirectory(dir=out.parent, prefix=".mini-src.") as unpack:
        extract_debs(debs, Path(unpack), options.jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            builder = Builder(Path(unpack), tmp, options)
            builder.missing_packages = missing
            builder.run()
        (tmp / ".complete").write_text(options.digest() + "\n")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--debs", required=True, type=Path, help="directory with the downloaded .deb files")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--small", action="store_true", help="few utterances per speaker (CI)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--check", action="store_true", help="exit 0 if complete, 1 if not; build nothing")
    args = parser.parse_args()
    options = Options(small=args.small, seed=args.seed, jobs=args.jobs)
    out = args.out.resolve()
    if args.check:
        return 0 if is_complete(out, options) else 1
    if build(args.debs.resolve(), out, options):
        print(f"mini_build: built {out}", file=sys.stderr)
    else:
        print(f"mini_build: {out} is complete, nothing to do", file=sys.stderr)
    return 0


if __name__ == "__main__":
    exit_on_input_error("mini_build", main)
