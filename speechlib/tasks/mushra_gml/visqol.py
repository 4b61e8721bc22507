"""Stage 4 of egs/mushra_gml: the ViSQOL v3 baseline (visqol-python, audio mode, 48 kHz).

    python -m speechlib.tasks.mushra_gml.visqol conf/mini_mushra_gml.yaml --output_folder exp/x \
        --job 1 --nj 2

Scores every item of the held-out tests and `visqol_train_items` items of the training tests
(drawn with the seed; they fit our ViSQOL -> MUSHRA mapping, stage 5). An (reference, coded)
pair shared by several tests is scored once. Job `job` of `nj` takes every nj-th pair and writes
exp/<tag>/visqol/part.<job>.tsv (pair key, MOS-LQO). ViSQOL v3 scores one channel: stereo is
mixed to mono, as the C++ ViSQOL does with multi-channel input.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from speechlib.data.listening_tests import load_test_dir
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.mushra_gml.features import load_pair
from speechlib.tasks.stage import start_stage

log = logging.getLogger("mushra_gml.visqol")


def visqol_pairs(hp: dict) -> list[tuple[str, str]]:
    """The (reference, coded) pairs ViSQOL scores, in a fixed order."""
    data = Path(hp["data_folder"])
    roles = json.loads((data / "tests.json").read_text())
    pairs: set[tuple[str, str]] = set()
    train: list[tuple[str, str]] = []
    for test, info in sorted(roles.items()):
        items = load_test_dir(data / test)
        both = list(zip(items.reference, items.coded))
        if info["role"] == "train":
            train += both
        else:
            pairs.update(both)
    train = sorted(set(train))
    pick = np.random.default_rng(hp["seed"]).permutation(len(train))[: hp["visqol_train_items"]]
    pairs.update(train[i] for i in sorted(pick))
    return sorted(pairs)


def pair_key(reference: str, coded: str) -> str:
    return f"{reference}\t{coded}"


def main() -> None:
    stage = start_stage("visqol.{job}of{nj}", options=(), jobs=True)
    hp = stage.hparams
    job, nj = stage.job, stage.nj
    out = Path(stage.exp_dir) / "visqol" / f"part.{job}.tsv"
    if stage.is_done((out,)):
        log.info("%s is up to date", out)
        return
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")
    mine = visqol_pairs(hp)[job - 1::nj]
    rows = []
    for index, (reference, coded) in enumerate(mine, start=1):
        ref, cod = load_pair(reference, coded, hp["sample_rate"], Path(coded).name)
        score = api.measure_from_arrays(ref.mean(axis=0).astype(np.float64), cod.mean(axis=0).astype(np.float64),
                                        hp["sample_rate"]).moslqo
        rows.append(f"{pair_key(reference, coded)}\t{score:.6f}\n")
        if index % 10 == 0 or index == len(mine):
            log.info("progress: %d/%d pairs done", index, len(mine))
    atomic_write_text(out, "".join(rows))
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("mushra_gml.visqol", main)
