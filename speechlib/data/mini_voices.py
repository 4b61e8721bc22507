"""Voices of the mini corpus beyond plain recordings: recorded-voice synthesisers and pseudo-speakers.

Why: a speaker-verification evaluation set needs 20 female + 20 male speakers that a real
speaker model can tell apart. The packages hold about 30 distinct recorded people (asterisk
prompt voices, Tux Paint volunteers); the diphone / unit-selection / HTS synthesisers of
festival and flite add about 16 more recorded people (each voice is built from one person's
recordings), and they can read any real text. Each of these *base voices* then gives at most
one pseudo-speaker of the other gender (Praat's change-gender: PSOLA pitch change plus a
formant shift by resampling), so a base voice contributes at most 2 speakers to one set.

The synthesisers run from the unpacked .deb files (no installed festival or flite needed):
flite with LD_LIBRARY_PATH at the unpacked libflite, festival with its library path set in
the Scheme prelude (its compiled-in /usr/share path is rewritten in the unpacked copy).
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16000


@dataclass(frozen=True)
class SynthVoice:
    """One recorded-voice synthesiser: who it is, which engine, which package carries it."""

    base: str          # base voice id (one recorded person)
    engine: str        # "flite" or "festival"
    voice: str         # flite -voice name or festival voice_<name>
    lang: str          # ISO 639-1 of the text it reads
    gender: str        # as stated by the package description / the voice's documentation
    package: str       # Debian package holding the voice
    encoding: str = "utf-8"   # of the text festival's front end expects


# Gender as stated by each package's description (festvox-*) or by the CMU ARCTIC voice notes
# (flite: awb, rms, kal male; slt female). kal and slt exist in both engines: they are one
# person each, so only one engine's copy is used. krb is a boy's voice (package: "child male").
SYNTH_VOICES: tuple[SynthVoice, ...] = (
    SynthVoice("syn_kal", "flite", "kal16", "en", "m", "flite"),
    SynthVoice("syn_awb", "flite", "awb", "en", "m", "flite"),
    SynthVoice("syn_rms", "flite", "rms", "en", "m", "flite"),
    SynthVoice("syn_slt", "flite", "slt", "en", "f", "flite"),
    SynthVoice("syn_ked", "festival", "ked_diphone", "en", "m", "festvox-kdlpc16k"),
    SynthVoice("syn_lp", "festival", "lp_diphone", "it", "f", "festvox-italp16k", "latin-1"),
    SynthVoice("syn_pc", "festival", "pc_diphone", "it", "m", "festvox-itapc16k", "latin-1"),
    SynthVoice("syn_nsh", "festival", "msu_ru_nsh_clunits", "ru", "m", "festvox-ru"),
    SynthVoice("syn_dita", "festival", "czech_dita", "cs", "f", "festvox-czech-dita", "iso-8859-2"),
    SynthVoice("syn_krb", "festival", "czech_krb", "cs", "m", "festvox-czech-krb", "iso-8859-2"),
    SynthVoice("syn_machac", "festival", "czech_machac", "cs", "m", "festvox-czech-machac", "iso-8859-2"),
    SynthVoice("syn_ph", "festival", "czech_ph", "cs", "m", "festvox-czech-ph", "iso-8859-2"),
    SynthVoice("syn_lj", "festival", "suo_fi_lj_diphone", "fi", "f", "festvox-suopuhe-lj", "latin-1"),
    SynthVoice("syn_mv", "festival", "hy_fi_mv_diphone", "fi", "m", "festvox-suopuhe-mv", "latin-1"),
    SynthVoice("syn_ona", "festival", "upc_ca_ona_hts", "ca", "f", "festvox-ca-ona-hts", "latin-1"),
    SynthVoice("syn_nsk", "festival", "hindi_NSK_diphone", "hi", "m", "festvox-hi-nsk"),
)


def _festival_prelude(root: Path) -> str:
    lib = f"{root}/usr/share/festival/"
    return (f'(set! libdir "{lib}")\n(set! datadir "{lib}")\n(set! lexdir "{lib}dicts/")\n'
            f'(set! system-voice-path \'("{lib}voices/"))\n(set! voice-path \'("{lib}voices/"))\n'
            f'(set! load-path \'("{lib}"))\n(load "{lib}init.scm")\n')


def relocate_festival(root: Path) -> None:
    """Point the unpacked festival's Scheme files at the unpacked tree (voices hard-code paths)."""
    lib = root / "usr/share/festival"
    if not lib.is_dir():
        return
    for path in lib.rglob("*.scm"):
        text = path.read_bytes()
        if b"/usr/share/festival" in text:
            path.write_bytes(text.replace(b"/usr/share/festival", str(lib).encode()))


def available(root: Path, voice: SynthVoice) -> bool:
    """True when the unpacked packages hold the engine and this voice."""
    if voice.engine == "flite":
        return (root / "usr/bin/flite").is_file() and any((root / "usr/lib").rglob("libflite_cmu_us_*.so*"))
    return (root / "usr/bin/festival").is_file() and \
        any((root / "usr/share/festival/voices").glob(f"*/{voice.voice}"))


def _env(root: Path) -> dict[str, str]:
    libs = [str(p) for p in (root / "usr/lib").glob("*-linux-gnu")] + [str(root / "usr/lib")]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(libs + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    return env


def _scheme_string(text: str) -> str:
    """A Scheme string literal of the text to speak. Quotation marks, brackets and dashes are not
    spoken; they go, and so does the space before a punctuation mark (the Russian voice's
    letter-to-sound rules fail on a token that is only punctuation: `«Г»,`, `(«пенни»)`, `—`)."""
    text = re.sub(r'[\\"«»„“”()\[\]—–]', " ", text)
    return '"' + " ".join(re.sub(r"\s+([,.!?;:])", r"\1", text).split()) + '"'


def synthesise(task: dict) -> list[tuple[str, str | None]]:
    """Speak each (text, wav path) with one voice; returns (path, problem or None).

    festival reads all sentences in one process (start-up costs ~0.3 s); flite is started per
    sentence (it starts in milliseconds).
    """
    root, voice = Path(task["root"]), SynthVoice(**task["voice"])
    env = _env(root)
    results: list[tuple[str, str | None]] = []
    if voice.engine == "flite":
        for text, out in task["items"]:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run([str(root / "usr/bin/flite"), "-voice", voice.voice, "-t", text, "-o", out],
                                  env=env, capture_output=True)
            results.append((out, None if proc.returncode == 0 and os.path.isfile(out)
                            else f"flite failed: {proc.stderr.decode(errors='replace').strip()[-200:]}"))
        return results
    lines = [_festival_prelude(root), f"(voice_{voice.voice})\n"]
    for text, out in task["items"]:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        # unwind-protect: a sentence the voice's front end cannot read loses that sentence only
        # (an uncaught error used to end the batch: the Russian voice lost 19 of 24 sentences)
        lines.append(f"(unwind-protect (utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "
                     f"\"{out}\" 'riff) nil)\n")
    with tempfile.NamedTemporaryFile("wb", suffix=".scm", delete=False) as handle:
        handle.write("".join(lines).encode(voice.encoding, errors="replace"))
        script = handle.name
    try:
        proc = subprocess.run([str(root / "usr/bin/festival"), "-b", script], env=env, capture_output=True,
                              timeout=600)
        error = proc.stderr.decode(errors="replace").replace(
            "Initialization file /usr/share/festival/init.scm not found", "").strip()
    finally:
        os.unlink(script)
    for _, out in task["items"]:
        results.append((out, None if os.path.isfile(out) else f"festival failed: {error[-200:] or proc.returncode}"))
    return results


def change_gender(signal: np.ndarray, sr: int, formant_ratio: float, pitch_median: float) -> np.ndarray:
    """Praat's "Change gender" (PSOLA pitch change, formant shift by resampling), duration kept."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(signal.astype(np.float64), sampling_frequency=sr)
    out = call(sound, "Change gender", 75, 600, formant_ratio, pitch_median, 1.0, 1.0)
    values = out.values[0]
    if out.sampling_frequency != sr:
        from speechlib.io.audio import resample
        values = resample(values, int(out.sampling_frequency), sr)
    return np.asarray(values, dtype=np.float32)


def flip_target(rng: np.random.Generator, gender: str) -> tuple[str, float, float]:
    """(new gender, formant ratio, target median F0) for a pseudo-speaker of the other gender.

    Ranges: typical adult medians (f 180-230 Hz, m 95-130 Hz) and a formant shift of about
    15 % (vocal-tract length ratio of women to men), far enough from the base voice that
    GE2E separates them, small enough that PSOLA keeps the speech clean.
    """
    if gender == "f":
        return "m", float(rng.uniform(0.84, 0.90)), float(rng.uniform(95, 130))
    return "f", float(rng.uniform(1.12, 1.20)), float(rng.uniform(180, 230))


def same_gender_target(rng: np.random.Generator, gender: str) -> tuple[float, float]:
    """(formant ratio, target median F0) for a training pseudo-speaker of the base's gender."""
    if gender == "f":
        return float(rng.uniform(0.92, 1.08)), float(rng.uniform(165, 250))
    return float(rng.uniform(0.90, 1.10)), float(rng.uniform(85, 145))


def tuxpaint_texts(root: Path, lang: str) -> list[str]:
    """Every stamp description text of one language (real sentences written by translators)."""
    stamps = root / "usr/share/tuxpaint/stamps"
    texts: set[str] = set()
    if not stamps.is_dir():
        return []
    key = re.compile(rf"^{lang}(_[A-Za-z]+)?\.utf8=(.+)$")
    for txt in stamps.rglob("*.txt"):
        try:
            lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines):
            if lang == "en" and number == 0 and "=" not in line and line.strip():
                texts.add(line.strip())
            match = key.match(line.strip())
            if match and lang != "en":
                texts.add(match[2].strip())
    return sorted(t for t in texts if 2 <= len(t.split()) <= 30 and "\ufffd" not in t)


def reading_texts(texts: list[str], rng: np.random.Generator, min_words: int = 4) -> list[str]:
    """Texts long enough for a speaker embedding: the long ones as they are, the short ones
    (stamp names, "Red apple.") read three at a time as one utterance; in a seeded order."""
    long = [t for t in texts if len(t.split()) >= min_words]
    short = [texts[i] for i in rng.permutation(len(texts)) if len(texts[i].split()) < min_words]
    grouped = [" ".join(t if t[-1] in ".!?" else t + "." for t in short[i:i + 3]) for i in range(0, len(short), 3)]
    result = long + grouped
    return [result[i] for i in rng.permutation(len(result))]
