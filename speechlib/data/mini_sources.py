"""What the mini corpus takes from each Debian package, and how it labels it.

Kept apart from the builder so that the labelling decisions (which file is speech, which
AudioSet category a sound effect belongs to, which speaker recorded what) can be read and
reviewed in one place, without the processing code around them.
"""
from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

# Packages fetched by tools/make_mini_corpus.sh, with what we take and the license (from each
# package's debian/copyright). Order matters only for LICENSES.md.
PACKAGES: dict[str, tuple[str, str]] = {
    "asterisk-core-sounds-en-g722": ("CC-BY-SA-3.0", "English prompts (Allison Smith, f), 16 kHz G.722"),
    "asterisk-core-sounds-es-g722": ("CC-BY-SA-3.0", "Spanish prompts (Allison Smith, f)"),
    "asterisk-core-sounds-fr-g722": ("CC-BY-SA-3.0", "French prompts (June Wallack, f)"),
    "asterisk-core-sounds-it-g722": ("CC-BY-SA-3.0", "Italian prompts (Carlo Flora, m)"),
    "asterisk-core-sounds-ru-g722": ("CC-BY-SA-3.0", "Russian prompts (IvrvoiceRU, f)"),
    "asterisk-core-sounds-en": ("CC-BY-SA-3.0", "transcripts core-sounds-en.txt"),
    "asterisk-core-sounds-es": ("CC-BY-SA-3.0", "transcripts core-sounds-es.txt"),
    "asterisk-core-sounds-fr": ("CC-BY-SA-3.0", "transcripts core-sounds-fr.txt"),
    "asterisk-core-sounds-it": ("CC-BY-SA-3.0", "transcripts core-sounds-it.txt"),
    "asterisk-core-sounds-ru": ("CC-BY-SA-3.0", "transcripts core-sounds-ru.txt"),
    "tuxpaint-stamps-default": ("GPL-2+ (sounds partly CC-BY/CC-BY-SA/public domain, see its copyright)",
                                "spoken stamp descriptions and names (speech), sound effects with pictures"),
    "tuxpaint-plugins-default": ("GPL-2+", "magic-tool sound effects (rain, waves, lightning, ...)"),
    "tuxpaint-data": ("GPL-2+", "user-interface sound effects (giggle, harp, clicks, ...)"),
    "sound-theme-freedesktop": ("GPL-2+ / CC-BY-3.0 / CC-BY-SA-3.0", "alert sounds (bells, phone rings, beeps)"),
    "asterisk-moh-opsound-wav": ("CC-BY-SA-3.0", "5 music-on-hold tracks (8 kHz mono)"),
    "pingus-data": ("GPL-3+ (music: see its copyright)", "tracker-module music rendered to 48 kHz stereo"),
}

# Voice packages: more recorded people. The build goes on without any of them (and says which
# are missing in README.md); it fails only when the evaluation speaker protocol cannot be met.
VOICE_PACKAGES: dict[str, tuple[str, str]] = {
    "asterisk-prompt-es-co": ("GPL-2+", "Colombian Spanish prompts (one speaker)"),
    "asterisk-prompt-fr-armelle": ("GPL-2+", "French prompts (Armelle Desjardins, f)"),
    "asterisk-prompt-it-menardi-wav": ("CC-BY-SA-3.0 (Italy)", "Italian prompts (Menardi, f)"),
    "flite": ("BSD-like (CMU); some files GPL-2", "flite engine; CMU ARCTIC voices kal16, awb, rms, slt"),
    "libflite1": ("BSD-like (CMU); some files GPL-2", "flite libraries and voices"),
    "festival": ("BSD-like (CSTR, Edinburgh)", "festival engine"),
    "libestools2.5": ("BSD-like (CSTR, Edinburgh)", "festival's speech tools library"),
    "festlex-cmu": ("BSD-like", "English lexicon for festival"),
    "festlex-poslex": ("BSD-like", "English part-of-speech lexicon for festival"),
    "festlex-ifd": ("GPL-2+", "Italian lexicon for festival"),
    "festvox-kdlpc16k": ("BSD-like", "festival voice ked (US English, m)"),
    "festvox-italp16k": ("GPL-2+", "festival voice lp (Italian, f)"),
    "festvox-itapc16k": ("GPL-2+", "festival voice pc (Italian, m)"),
    "festvox-ru": ("BSD-like / GPL-3", "festival voice msu_ru_nsh (Russian, m)"),
    "festival-czech": ("GPL-2+", "Czech support for festival"),
    "festvox-czech-dita": ("GPL-3+", "festival voice dita (Czech, f)"),
    "festvox-czech-krb": ("GPL-3+", "festival voice krb (Czech, child m)"),
    "festvox-czech-machac": ("GPL-3+", "festival voice machac (Czech, m)"),
    "festvox-czech-ph": ("GPL-2+", "festival voice ph (Czech, m)"),
    "festvox-suopuhe-common": ("LGPL-2.1", "Finnish support for festival"),
    "festvox-suopuhe-lj": ("LGPL-2.1", "festival voice lj (Finnish, f)"),
    "festvox-suopuhe-mv": ("LGPL-2.1", "festival voice mv (Finnish, m)"),
    "festival-ca": ("LGPL-2.1", "Catalan support for festival"),
    "festvox-ca-ona-hts": ("LGPL-2.1+ / BSD-3-clause", "festival HTS voice ona (Catalan, f)"),
    "festival-hi": ("GPL-2+", "Hindi support for festival"),
    "festvox-hi-nsk": ("GPL-2+", "festival voice NSK (Hindi, m)"),
}

AUDIOSET_CATEGORIES = ("human", "source_ambiguous", "animal", "things", "music", "natural", "background")
AUDIOSET_NAMES = {
    "human": "Human sounds",
    "source_ambiguous": "Source-ambiguous sounds",
    "animal": "Animal",
    "things": "Sounds of things",
    "music": "Music",
    "natural": "Natural sounds",
    "background": "Channel, environment and background",
}

LANG_NAMES = {
    "en": "english", "fr": "french", "de": "german", "it": "italian", "ru": "russian", "es": "spanish",
    "zh": "mandarin", "ro": "romanian", "ca": "catalan", "bg": "bulgarian", "be": "belarusian",
    "el": "greek", "da": "danish", "lt": "lithuanian", "nl": "dutch", "ja": "japanese", "ko": "korean",
    "sv": "swedish", "pt": "portuguese", "nn": "norwegian_nynorsk", "nb": "norwegian_bokmal",
    "sl": "slovenian", "ml": "malayalam", "cs": "czech", "fi": "finnish", "hi": "hindi",
}


@dataclass
class SpeechSource:
    """One recorded utterance in a package, before decoding."""

    spk: str       # pool speaker id (no '-')
    lang: str      # ISO 639-1
    name: str      # id-safe, unique per (spk, lang)
    text: str
    path: str
    codec: str     # "g722" (raw G.722 bitstream) or "file" (anything soundfile reads)


@dataclass
class SoundSource:
    """One non-speech clip in a package."""

    name: str
    path: str
    category: str
    package: str
    image: str | None = None     # a picture of the sound's source (Tux Paint stamps)
    group: str = ""              # the stamp category path, e.g. animals/birds


def safe_id(text: str) -> str:
    """Kaldi ids must not contain '-' (the speaker/utterance separator) or white space."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "x"


def clean_transcript(text: str) -> str:
    """Drop bracketed annotations ("[ascending tones]", "(ahooga)"); what remains is what is said."""
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text)
    return " ".join(text.split())


# --- asterisk core sounds -------------------------------------------------------------------

def asterisk_speech(root: Path) -> tuple[list[SpeechSource], dict[str, str], dict[str, int]]:
    """Prompts with a transcript; returns (sources, speaker genders, skip counts).

    The voice directory names the speaker: `en_US_f_Allison` is language en, female, Allison.
    Allison Smith recorded both the English and the Spanish set: one speaker, two languages.
    """
    sources: list[SpeechSource] = []
    genders: dict[str, str] = {}
    skipped = {"no transcript": 0, "non-speech prompt": 0}
    sounds = root / "usr/share/asterisk/sounds"
    if not sounds.is_dir():
        return sources, genders, skipped
    voices: list[tuple[str, str, list[tuple[Path, str]]]] = []   # (spk, lang, [(dir, key prefix)])
    for voice in sorted(p for p in sounds.iterdir() if p.is_dir()):
        parts = voice.name.split("_")
        if len(parts) < 4:
            continue
        lang, gender, person = parts[0], parts[2], "_".join(parts[3:])
        spk = "ast_" + safe_id(person).lower()
        genders[spk] = gender
        voices.append((spk, lang, [(voice, "")]))
    # asterisk-prompt-es-co and -fr-armelle install the old flat layout (sounds/es, sounds/digits/es);
    # their file names are the core-sounds prompt names, so the core transcripts apply
    for spk, lang in (("ast_prompt_es_co", "es"), ("ast_armelle", "fr")):
        dirs = [(sounds / lang, "")] + [(sounds / sub / lang, sub + "/") for sub in ("digits", "letters", "dictate")]
        voices.append((spk, lang, [(d, prefix) for d, prefix in dirs if d.is_dir()]))
    for spk, lang, dirs in voices:
        transcripts = _asterisk_transcripts(root / f"usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz")
        for directory, prefix in dirs:
            for path in sorted(p for p in directory.rglob("*") if p.suffix in (".g722", ".gsm", ".wav")):
                if (path.suffix == ".gsm" or path.suffix == ".wav") and path.with_suffix(".g722").exists():
                    continue
                key = prefix + path.relative_to(directory).with_suffix("").as_posix()
                if key.startswith("silence/") or key in ("beep", "beeperr"):
                    skipped["non-speech prompt"] += 1
                    continue
                if key not in transcripts:
                    skipped["no transcript"] += 1
                    continue
                text = clean_transcript(transcripts[key])
                if not text:
                    skipped["non-speech prompt"] += 1
                    continue
                codec = {".g722": "g722", ".gsm": "gsm", ".wav": "file"}[path.suffix]
                sources.append(SpeechSource(spk, lang, safe_id(key), text, str(path), codec))
    return sources, genders, skipped


def _asterisk_transcripts(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    result = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(";") or ":" not in line:
                continue
            key, text = line.split(":", 1)
            result[key.strip()] = text.strip()
    return result


# --- Tux Paint ------------------------------------------------------------------------------

_DESC = re.compile(r"^(?P<stem>.+)_desc_(?P<lang>[a-z]{2}(?:_[A-Za-z]{2})?)\.ogg$")
_NAME = re.compile(r"^(?P<stem>.+)_(?P<lang>[a-z]{2}(?:_[A-Za-z]{2})?)\.ogg$")


def _stamp_texts(txt: Path) -> dict[str, str]:
    """`NAME.txt`: first line English, then `lang.utf8=text` lines."""
    texts: dict[str, str] = {}
    try:
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return texts
    for number, line in enumerate(lines):
        if "=" in line and ".utf8" in line.split("=", 1)[0]:
            key, value = line.split("=", 1)
            texts[key.split(".")[0].lower()] = value.strip()
        elif number == 0 and line.strip():
            texts["en"] = line.strip()
    return texts


def tuxpaint_speech(root: Path) -> tuple[list[SpeechSource], dict[str, int]]:
    """Spoken descriptions (`X_desc_fr.ogg`) and spoken names (`X_de.ogg`, `X_en_GB.ogg`).

    Tux Paint does not say who recorded each language. We assume one volunteer per language
    (the changelog credits one person per language for most) and give the descriptions and the
    names of a language the same speaker id, which can only merge voices, never split one.
    """
    sources: list[SpeechSource] = []
    skipped = {"no transcript": 0}
    stamps = root / "usr/share/tuxpaint/stamps"
    if not stamps.is_dir():
        return sources, skipped
    for path in sorted(stamps.rglob("*.ogg")):
        match = _DESC.match(path.name) or _NAME.match(path.name)
        if not match:
            continue
        raw_lang = match["lang"].lower()
        texts = _stamp_texts(path.parent / (match["stem"] + ".txt"))
        text = texts.get(raw_lang) or (texts.get("en") if raw_lang.startswith("en") else None)
        text = clean_transcript(text or "")
        if not text:
            skipped["no transcript"] += 1
            continue
        lang = "zh" if raw_lang.startswith("zh") else raw_lang.split("_")[0]
        spk = "tp_" + safe_id(raw_lang).lower()
        kind = "desc" if "_desc_" in path.name else "name"
        rel = path.relative_to(stamps).parent.as_posix()
        name = safe_id(f"{kind}_{rel}_{match['stem']}")
        sources.append(SpeechSource(spk, lang, name, text, str(path), "file"))
    return sources, skipped


def tuxpaint_stamp_sounds(root: Path) -> list[SoundSource]:
    """Stamp sound effects `X.ogg` (no language suffix) beside their picture `X.png`/`X.svg`.

    Spoken letters and digits under symbols/ (other than faces) are speech, not effects.
    """
    result = []
    stamps = root / "usr/share/tuxpaint/stamps"
    if not stamps.is_dir():
        return result
    for path in sorted(stamps.rglob("*.ogg")):
        if _DESC.match(path.name) or _NAME.match(path.name) or path.name.endswith(".ogg.ogg"):
            continue
        rel = path.relative_to(stamps)
        group = rel.parent.as_posix()
        if group.startswith("symbols/") and not group.startswith("symbols/faces"):
            continue
        if group.startswith("seasonal/hanukkah"):   # spoken Hebrew letters on the dreidel
            continue
        image = next((str(path.with_suffix(ext)) for ext in (".png", ".svg") if path.with_suffix(ext).exists()), None)
        result.append(SoundSource(safe_id("tp_" + rel.with_suffix("").as_posix()), str(path),
                                  _stamp_category(group), "tuxpaint-stamps-default", image, group))
    return result


def _stamp_category(group: str) -> str:
    top = group.split("/")[0]
    if top == "animals":
        return "animal"
    if group.startswith("hobbies/music"):
        return "music"
    if top in ("naturalforces", "plants"):
        return "natural"
    if top == "people" or group.startswith("symbols/faces"):
        return "human"
    return "things"


_PLUGIN_NATURAL = {"rain", "waves", "lightning", "ripples", "drip", "tornado_release", "snowflake", "snowball"}
_DATA_CATEGORY = {"giggle": "human", "harp": "music", "typewriterbell": "things", "keyclick": "things",
                  "click": "things", "eraser1": "things", "eraser2": "things"}
_FREEDESKTOP_THINGS = {"phone-incoming-call", "phone-outgoing-busy", "phone-outgoing-calling",
                       "alarm-clock-elapsed", "camera-shutter", "bell", "trash-empty", "screen-capture"}


def ui_sounds(root: Path) -> list[SoundSource]:
    """Tux Paint tool sounds and the freedesktop sound theme, labelled by name.

    Abstract interface sounds (beeps, swooshes, chimes) are AudioSet's source-ambiguous sounds;
    the freedesktop `audio-channel-*` files are speech ("front left") and are left out.
    """
    result = []
    plugins = root / "usr/share/tuxpaint/sounds/magic"
    for path in sorted(plugins.glob("*")) if plugins.is_dir() else []:
        if path.suffix in (".ogg", ".wav"):
            category = "natural" if path.stem in _PLUGIN_NATURAL else "source_ambiguous"
            result.append(SoundSource(safe_id(f"tpmagic_{path.stem}_{path.suffix[1:]}"), str(path), category,
                                      "tuxpaint-plugins-default"))
    ui = root / "usr/share/tuxpaint/sounds"
    for path in sorted(ui.glob("*.wav")) if ui.is_dir() else []:
        category = _DATA_CATEGORY.get(path.stem, "source_ambiguous")
        result.append(SoundSource(safe_id(f"tpui_{path.stem}"), str(path), category, "tuxpaint-data"))
    theme = root / "usr/share/sounds/freedesktop/stereo"
    for path in sorted(theme.glob("*.oga")) if theme.is_dir() else []:
        if path.stem.startswith("audio-channel") or path.stem == "audio-test-signal":
            continue
        category = "things" if path.stem in _FREEDESKTOP_THINGS else "source_ambiguous"
        result.append(SoundSource(safe_id(f"fd_{path.stem}"), str(path), category, "sound-theme-freedesktop"))
    return result


def music_tracks(root: Path) -> tuple[list[SoundSource], list[SoundSource]]:
    """(music on hold wavs, tracker modules)."""
    moh_dir = root / "usr/share/asterisk/moh"
    moh = [SoundSource(safe_id("moh_" + p.stem), str(p), "music", "asterisk-moh-opsound-wav")
           for p in sorted(moh_dir.glob("*.wav"))] if moh_dir.is_dir() else []
    mod_dir = root / "usr/share/games/pingus/data/music"
    mods = [SoundSource(safe_id("pingus_" + p.stem), str(p), "music", "pingus-data")
            for p in sorted(mod_dir.iterdir()) if p.suffix in (".it", ".s3m", ".xm", ".mod")] \
        if mod_dir.is_dir() else []
    return moh, mods


def relpath(path: str | os.PathLike, start: str | os.PathLike) -> str:
    return os.path.relpath(os.fspath(path), os.fspath(start))
