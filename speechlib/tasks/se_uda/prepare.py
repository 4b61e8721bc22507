"""Stage 0 of egs/se_uda: the source and target domains as Kaldi data dirs.

    python -m speechlib.tasks.se_uda.prepare conf/mini_se_uda.yaml --output_folder exp/x \
        --librispeech "$LIBRISPEECH" --wham "$WHAM" --dns "$DNS"

Source: LibriSpeech speech + WHAM! noise. Target: DNS non-English speech + DNS noise; DNS
English speech is prepared too (Table 2). An empty corpus variable means the mini corpus:
English (LibriSpeech layout) + one set of AudioSet noise categories as source, the other
languages (DNS layout) + other noise categories as target, so language AND noise differ.
"""
from __future__ import annotations

from pathlib import Path

from speechlib.data import dns, librispeech, mini, wham
from speechlib.data.corpora import resolve_corpus
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.tasks.stage import start_stage

OUTPUT_DIRS = ("source_speech", "source_noise", "target_speech_train", "target_speech_test",
               "english_speech_train", "english_speech_test", "target_noise_train", "target_noise_test")


def _value(hp: dict, key: str) -> str:
    value = hp.get(key)
    return "" if value is None else str(value)


def prepare(hp: dict) -> str:
    """Write every data dir under data_folder; return the corpus label ("mini" or "real")."""
    data = Path(hp["data_folder"])
    mini_root = mini.default_root()
    libri, libri_mini = resolve_corpus("LIBRISPEECH", _value(hp, "librispeech"), "LibriSpeech", mini_root,
                                       expect=(hp["source_speech_subset"],))
    librispeech.prepare(libri / hp["source_speech_subset"], data / "source_speech")

    dns_root, dns_mini = resolve_corpus("DNS", _value(hp, "dns"), "dns", mini_root,
                                        expect=(hp["dns_clean_subdir"], hp["dns_noise_subdir"]))
    dns.prepare_speech(dns_root, dict(hp["target_languages"]), data / "target_speech_train",
                       data / "target_speech_test", hp["test_percent"], hp["dns_clean_subdir"])
    dns.prepare_speech(dns_root, dict(hp["english_language"]), data / "english_speech_train",
                       data / "english_speech_test", hp["test_percent"], hp["dns_clean_subdir"])
    keep = None
    if dns_mini:
        # The mini DNS noise folder holds every non-music category; keep the target ones only.
        category = {Path(row["path"]).name: row["category"] for row in mini.noise_index(mini_root)}
        wanted = set(hp["target_noise_categories"])
        keep = lambda path: category.get(path.name) in wanted  # noqa: E731
    dns.prepare_noise(dns_root, data / "target_noise_train", data / "target_noise_test",
                      hp["dns_noise_subdir"], hp["test_percent"], keep)

    wham_value = _value(hp, "wham")
    if wham_value.strip():
        wham_root, _ = resolve_corpus("WHAM", wham_value, "wham_noise", mini_root)
        wham.prepare_noise(wham_root, "tr", data / "source_noise")
        wham_mini = False
    else:
        overlap = set(hp["source_noise_categories"]) & set(hp["target_noise_categories"])
        if overlap:
            raise InputError(f"source and target noise categories overlap: {sorted(overlap)}")
        mini.noise_pool(data / "source_noise", mini_root, categories=hp["source_noise_categories"])
        wham_mini = True
    flags = {libri_mini, dns_mini, wham_mini}
    return "mini" if flags == {True} else "real" if flags == {False} else "mixed (mini + real)"


def main() -> None:
    stage = start_stage("prepare")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    outputs = tuple(data / name / "wav.scp" for name in OUTPUT_DIRS)
    if stage.is_done(outputs):
        print(f"prepare: {data} is up to date")
        return
    corpus = prepare(hp)
    atomic_write_text(data / "corpus.txt", corpus + "\n")
    stage.mark_done()
    counts = {name: sum(1 for _ in open(data / name / "wav.scp")) for name in OUTPUT_DIRS}
    print(f"prepare: corpus {corpus}; " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    exit_on_input_error("se_uda.prepare", main)
