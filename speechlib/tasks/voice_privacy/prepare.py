"""Stage 0 of egs/voice_privacy: Kaldi data dirs for training and evaluation.

    python -m speechlib.tasks.voice_privacy.prepare conf/mini_voice_privacy.yaml --output_folder exp/x \
        --librispeech "$LIBRISPEECH" --voxceleb "$VOXCELEB"

data/train: the LibriSpeech training subsets (generator/remover training); data/speaker_train:
VoxCeleb1+2 when given, else data/train plus `speaker_train_extra_subsets` (the mini corpus's
training set has only 3 base voices, so its speaker models also learn dev-clean's 20, which then
leaves Table 1: test-clean only);
data/<eval subset> for each evaluation subset (with utt2lang, so that WER is computed on English
only); data/noise: the mini corpus's noise pool for the
speaker models' augmentation (when the mini corpus is there).
"""
from __future__ import annotations

import logging
from pathlib import Path

from speechlib.data import librispeech, mini, voxceleb
from speechlib.data.corpora import resolve_corpus
from speechlib.data.datadir import combine_data_dirs, subset_data_dir
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.tasks.stage import start_stage

logger = logging.getLogger("voice_privacy.prepare")


def main() -> None:
    stage = start_stage("prepare", options=())
    hp = stage.hparams
    data = Path(hp["data_folder"])
    train_subsets, eval_subsets = list(hp["train_subsets"]), list(hp["eval_subsets"])
    outputs = tuple(data / d / "wav.scp"
                    for d in ["train", "speaker_train", *eval_subsets, *hp["speaker_train_extra_subsets"]])
    if stage.is_done(outputs):
        logger.info(f"prepare: {data} is up to date")
        return
    libri, is_mini = resolve_corpus("LIBRISPEECH", hp["librispeech"], "LibriSpeech",
                                  mini_root=hp["mini_root"] or mini.default_root())
    available = [s for s in train_subsets if (libri / s).is_dir()]
    if is_mini:
        train_subsets = available  # the mini corpus has train-clean-100 only
    elif available != train_subsets:
        missing = sorted(set(train_subsets) - set(available))
        raise InputError(f"db.sh: LIBRISPEECH={libri}: subset(s) {', '.join(missing)} missing")
    if not train_subsets:
        raise InputError(f"no training subset of {hp['train_subsets']} under {libri}")
    extra = list(hp["speaker_train_extra_subsets"])
    overlap = sorted(set(extra) & set(eval_subsets))
    if overlap:
        raise InputError(f"speaker_train_extra_subsets and eval_subsets share {', '.join(overlap)}: "
                         "a speaker model must not know the evaluation speakers")
    parts = []
    for subset in train_subsets + eval_subsets + extra:
        limit = hp["max_train_utts_per_speaker" if subset in train_subsets else "max_eval_utts_per_speaker"]
        full = data / f"{subset}_all" if limit else data / subset
        count = librispeech.prepare(libri / subset, full)
        if limit:  # CI configs: a few utterances per speaker
            count = subset_data_dir(full, data / subset, per_spk=int(limit))
        logger.info(f"prepare: {subset}: {count} utterances")
        if subset in train_subsets:
            parts.append(data / subset)

    combine_data_dirs(data / "train", parts)
    if hp["voxceleb"]:
        count = voxceleb.prepare(Path(hp["voxceleb"]), data / "speaker_train")
        logger.info(f"prepare: speaker models train on VoxCeleb ({count} utterances)")
    else:
        count = combine_data_dirs(data / "speaker_train", [data / "train", *(data / s for s in extra)])
        logger.info(f"prepare: VOXCELEB is empty: speaker models train on train + {extra} ({count} utterances)")
    try:
        mini.noise_pool(data / "noise", root=hp["mini_root"] or mini.default_root())
    except InputError as err:
        logger.info(f"prepare: no noise pool for augmentation ({err}); speaker training uses reverb only")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.prepare", main)
