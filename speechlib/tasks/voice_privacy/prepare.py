"""Stage 0 of egs/voice_privacy: Kaldi data dirs for training and evaluation.

    python -m speechlib.tasks.voice_privacy.prepare conf/mini_voice_privacy.yaml --output_folder exp/x \
        --librispeech_path "$LIBRISPEECH" --voxceleb_path "$VOXCELEB"

data/train: the LibriSpeech training subsets (generator/remover training, and the speaker models
when no VoxCeleb is given); data/speaker_train: VoxCeleb1+2 when given, else a copy of data/train;
data/<eval subset> for each evaluation subset, with utt2lang (from the mini corpus's index; "en"
for LibriSpeech) so that WER is computed on English only; data/noise: the mini corpus's noise pool for the
speaker models' augmentation (when the mini corpus is there).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from speechlib.data import librispeech, mini, voxceleb
from speechlib.data.corpora import resolve_corpus
from speechlib.data.datadir import combine_data_dirs, subset_data_dir
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.tasks.stage import start_stage


def mini_languages(hp: dict) -> dict[str, str]:
    """{LibriSpeech-style utterance id: language} of the mini corpus's LibriSpeech layout."""
    root = hp.get("mini_root") or mini.default_root()
    return {Path(row["path"]).stem: row["lang"] for row in mini.speech_index(root)
            if row["path"].startswith("LibriSpeech/")}


def main() -> None:
    stage = start_stage("prepare")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    train_subsets, eval_subsets = list(hp["train_subsets"]), list(hp["eval_subsets"])
    outputs = tuple(data / d / "wav.scp" for d in ["train", "speaker_train", *eval_subsets])
    if stage.is_done(outputs):
        print(f"prepare: {data} is up to date")
        return
    libri, is_mini = resolve_corpus("LIBRISPEECH", hp.get("librispeech_path"), "LibriSpeech",
                                  mini_root=hp.get("mini_root") or mini.default_root())
    available = [s for s in train_subsets if (libri / s).is_dir()]
    if is_mini:
        train_subsets = available  # the mini corpus has train-clean-100 only
    elif available != train_subsets:
        missing = sorted(set(train_subsets) - set(available))
        raise InputError(f"db.sh: LIBRISPEECH={libri}: subset(s) {', '.join(missing)} missing")
    if not train_subsets:
        raise InputError(f"no training subset of {hp['train_subsets']} under {libri}")
    languages = mini_languages(hp) if is_mini else {}
    parts = []
    for subset in train_subsets + eval_subsets:
        limit = hp.get("max_train_utts_per_speaker" if subset in train_subsets else "max_eval_utts_per_speaker")
        full = data / f"{subset}_all" if limit else data / subset
        count = librispeech.prepare(libri / subset, full)
        if limit:  # CI configs: a few utterances per speaker
            count = subset_data_dir(full, data / subset, per_spk=int(limit))
        print(f"prepare: {subset}: {count} utterances")
        if subset in train_subsets:
            parts.append(data / subset)
        else:
            utts = read_dict(data / subset / "utt2spk")
            write_table(data / subset / "utt2lang", {u: languages.get(u, "unknown") if is_mini else "en" for u in utts})
    combine_data_dirs(data / "train", parts)
    if hp.get("voxceleb_path"):
        count = voxceleb.prepare(Path(hp["voxceleb_path"]), data / "speaker_train")
        print(f"prepare: speaker models train on VoxCeleb ({count} utterances)")
    else:
        shutil.rmtree(data / "speaker_train", ignore_errors=True)
        shutil.copytree(data / "train", data / "speaker_train")
        print("prepare: VOXCELEB is empty: speaker models train on the LibriSpeech training data")
    try:
        mini.noise_pool(data / "noise", root=hp.get("mini_root") or mini.default_root())
    except InputError as err:
        print(f"prepare: no noise pool for augmentation ({err}); speaker training uses reverb only")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.prepare", main)
