"""Stage 0 of egs/se_uda: the source and target domains as Kaldi data dirs.

    python -m speechlib.tasks.se_uda.prepare conf/mini_se_uda.yaml --output_folder exp/x \
        --librispeech "$LIBRISPEECH" --wham "$WHAM" --dns "$DNS"

Source: LibriSpeech speech (train-clean-100 / dev-clean / test-clean) + WHAM! noise (tr / cv / tt).
Target: DNS non-English speech + DNS noise, split by reader (speechlib.data.dns); DNS English
speech for Table 2, its test readers held out the same way. An empty corpus variable means the
mini corpus: its LibriSpeech tree and DNS layout, and (for WHAM!) one set of noise categories
split into tr/cv/tt by clip, the other categories being the target noise, so that language AND
noise differ between the domains.

Every training list is then checked against every test and validation list by inode and content
(speechlib.data.leakage): a speaker with a file in a held-out list leaves the training list (all
their utterances; the count is logged), so a corpus built from links (the mini corpus's DNS
English files are LibriSpeech files) cannot leak a test recording or voice into training. Last,
every listed file is hard-linked under data/<dir>/audio/, so that a corpus rebuilt in place while
the recipe runs cannot take a prepared data dir's files away.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from speechlib.data import dns, librispeech, mini, wham
from speechlib.data.corpora import resolve_corpus
from speechlib.data.leakage import audio_files, shared_files
from speechlib.data.writer import spk2utt_from
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.tasks.stage import start_stage

TRAIN_DIRS = ("source_speech", "source_noise", "target_speech_train", "english_speech_train", "target_noise_train")
HELD_OUT_DIRS = ("source_speech_valid", "source_noise_valid", "source_speech_test", "source_noise_test",
                 "target_speech_valid", "target_speech_test", "english_speech_test", "target_noise_test")
OUTPUT_DIRS = TRAIN_DIRS + HELD_OUT_DIRS


def _value(hp: dict, key: str) -> str:
    value = hp[key]
    return "" if value is None else str(value)


def _source_noise(hp: dict, data: Path, mini_root: Path) -> bool:
    """WHAM! tr/cv/tt, or on the mini corpus the source noise categories split by clip; True if mini."""
    wham_value = _value(hp, "wham")
    outputs = {"train": data / "source_noise", "valid": data / "source_noise_valid", "test": data / "source_noise_test"}
    if wham_value.strip():
        wham_root, _ = resolve_corpus("WHAM", wham_value, "wham_noise", mini_root)
        for split, name in (("tr", "train"), ("cv", "valid"), ("tt", "test")):
            wham.prepare_noise(wham_root, split, outputs[name])
        return False
    overlap = set(hp["source_noise_categories"]) & set(hp["target_noise_categories"])
    if overlap:
        raise InputError(f"source and target noise categories overlap: {sorted(overlap)}")
    pool = mini.noise_pool(data / "source_noise_pool", mini_root, categories=hp["source_noise_categories"])
    dns.write_noise_dirs(read_dict(pool / "wav.scp"), outputs,
                         {"test": hp["test_percent"], "valid": hp["valid_percent"]})
    return True


def drop_utterances(data_dir: Path, utts: set[str]) -> None:
    """Remove utterances from every per-utterance table of a data dir (spk2utt rebuilt)."""
    for table in sorted(data_dir.iterdir()):
        if table.is_file() and table.name not in ("spk2utt", "spk2gender") and not table.name.startswith("."):
            write_table(table, {k: v for k, v in read_dict(table).items() if k not in utts})
    utt2spk = read_dict(data_dir / "utt2spk")
    if not utt2spk:
        raise InputError("every utterance of this training list is also held out for testing", str(data_dir))
    write_table(data_dir / "spk2utt", spk2utt_from(utt2spk))


def keep_language(data_dir: Path, language: str) -> int:
    """Keep only the utterances of one language (utt2lang); returns how many were dropped.

    The source domain is English speech, but the mini corpus's dev-clean and test-clean hold
    several languages (their utt2lang says which), some of them target languages: left in, the
    source-domain test and validation sets would score target-language speech."""
    langs = read_dict(data_dir / "utt2lang")
    other = {utt for utt, lang in langs.items() if lang != language}
    if len(other) == len(langs):
        raise InputError(f"no utterance in language {language!r} (utt2lang)", str(data_dir))
    if other:
        drop_utterances(data_dir, other)
        spk2gender = read_dict(data_dir / "spk2gender")
        speakers = set(read_dict(data_dir / "spk2utt"))
        write_table(data_dir / "spk2gender", {k: v for k, v in spk2gender.items() if k in speakers})
    return len(other)


def remove_leaks(data: Path) -> dict[str, int]:
    """Hold out of training every speaker (or noise clip) that has a file in a held-out list
    (same inode or same bytes). Held-out lists are never changed, so test sets stay fixed."""
    held_out = audio_files(data / name for name in HELD_OUT_DIRS)
    dropped = {}
    for name in TRAIN_DIRS:
        wav, utt2spk = read_dict(data / name / "wav.scp"), read_dict(data / name / "utt2spk")
        shared = shared_files(held_out, wav.values())
        if shared:
            speakers = {utt2spk[utt] for utt, path in wav.items() if path in shared}
            utts = {utt for utt, spk in utt2spk.items() if spk in speakers}
            drop_utterances(data / name, utts)
            dropped[name] = len(utts)
    return dropped


def snapshot_audio(data: Path) -> None:
    """Hard-link (copy across file systems) every listed file under data/<dir>/audio/ and point
    wav.scp there: a corpus rebuilt in place while the recipe runs (the mini corpus is) must not
    take the files of a prepared data dir away. Links cost no space."""
    for name in OUTPUT_DIRS:
        folder = data / name / "audio"
        folder.mkdir(parents=True, exist_ok=True)
        wav = read_dict(data / name / "wav.scp")
        for utt, path in wav.items():
            target = folder / f"{utt}{Path(path).suffix}"
            if not target.exists():
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copyfile(path, target)
            wav[utt] = str(target.resolve())
        write_table(data / name / "wav.scp", wav)


def prepare(hp: dict) -> tuple[str, dict[str, int]]:
    """Write every data dir under data_folder; return (corpus label, leaked files dropped per list)."""
    data = Path(hp["data_folder"])
    mini_root = mini.default_root()
    subsets = {"source_speech": hp["source_speech_subset"], "source_speech_valid": hp["source_valid_subset"],
               "source_speech_test": hp["source_test_subset"]}
    libri, libri_mini = resolve_corpus("LIBRISPEECH", _value(hp, "librispeech"), "LibriSpeech", mini_root,
                                       expect=tuple(subsets.values()))
    for name, subset in subsets.items():
        librispeech.prepare(libri / subset, data / name)
        dropped = keep_language(data / name, hp["source_language"])
        if dropped:
            print(f"prepare: {name}: {dropped} utterances not in {hp['source_language']!r} left out (utt2lang)")

    dns_root, dns_mini = resolve_corpus("DNS", _value(hp, "dns"), "dns", mini_root,
                                        expect=(hp["dns_clean_subdir"], hp["dns_noise_subdir"]))
    pattern = hp["dns_speaker_pattern"]
    dns.prepare_speech(dns_root, dict(hp["target_languages"]), data / "target_speech_train",
                       data / "target_speech_test", hp["test_percent"], hp["dns_clean_subdir"], pattern,
                       data / "target_speech_valid", hp["valid_percent"])
    dns.prepare_speech(dns_root, dict(hp["english_language"]), data / "english_speech_train",
                       data / "english_speech_test", hp["test_percent"], hp["dns_clean_subdir"], pattern)
    keep = None
    if dns_mini:
        # The mini DNS noise folder holds every non-music category; keep the target ones only.
        category = {Path(row["path"]).name: row["category"] for row in mini.noise_index(mini_root)}
        wanted = set(hp["target_noise_categories"])
        keep = lambda path: category.get(path.name) in wanted  # noqa: E731
    dns.prepare_noise(dns_root, data / "target_noise_train", data / "target_noise_test",
                      hp["dns_noise_subdir"], hp["test_percent"], keep)
    wham_mini = _source_noise(hp, data, mini_root)
    flags = {libri_mini, dns_mini, wham_mini}
    corpus = "mini" if flags == {True} else "real" if flags == {False} else "mixed (mini + real)"
    dropped = remove_leaks(data)
    snapshot_audio(data)
    return corpus, dropped


def main() -> None:
    stage = start_stage("prepare", options=())
    hp = stage.hparams
    data = Path(hp["data_folder"])
    outputs = tuple(data / name / "wav.scp" for name in OUTPUT_DIRS)
    if stage.is_done(outputs):
        print(f"prepare: {data} is up to date")
        return
    corpus, dropped = prepare(hp)
    atomic_write_text(data / "corpus.txt", corpus + "\n")
    stage.mark_done()
    counts = {name: sum(1 for _ in open(data / name / "wav.scp")) for name in OUTPUT_DIRS}
    print(f"prepare: corpus {corpus}; " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print("prepare: training utterances of speakers/clips found in a held-out list, dropped: "
          + (", ".join(f"{k} {v}" for k, v in dropped.items()) or "none"))


if __name__ == "__main__":
    exit_on_input_error("se_uda.prepare", main)
