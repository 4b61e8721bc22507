"""Stage 3 of egs/toy: evaluate the best checkpoint on data/test and write RESULTS.md.

    python -m speechlib.tasks.toy.score conf/mini_toy.yaml --output_folder exp/toy
"""
from __future__ import annotations

import logging

from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.results.examples import write_example
from speechlib.results.tables import ResultTable, write_results
from speechlib.tasks.stage import start_stage
from speechlib.tasks.toy.train import SYSTEM, ToyBrain, build_modules, datasets, label_index
from speechlib.tasks.training import load_trained

logger = logging.getLogger("toy.score")


def listening_examples(hp: dict, exp_dir) -> list[str]:
    """One test clip per colour, as FLAC under exp/<tag>/examples/ (collect publishes them)."""
    test_dir = f"{hp['data_folder']}/test"
    wav_scp, utt2label = read_dict(f"{test_dir}/wav.scp"), read_dict(f"{test_dir}/utt2label")
    names = []
    for colour in hp["colours"]:
        utt = min(u for u, label in utt2label.items() if label == colour)
        signal, rate = load_audio(wav_scp[utt], hp["sample_rate"], utt=utt)
        names.append(str(write_example(exp_dir / "examples" / f"{colour}.flac", signal, rate).relative_to(exp_dir)))
    return names


def main() -> None:
    stage = start_stage("score", options=())
    hp = stage.hparams
    _, test = datasets(hp)
    modules = build_modules(hp)
    load_trained(stage, SYSTEM, {"model": modules["model"]}, max_key="accuracy")
    brain = ToyBrain(modules=modules, hparams=hp, run_opts=stage.run_opts, label_index=label_index(hp))
    brain.evaluate(test, test_loader_kwargs=hp["valid_dataloader_opts"])
    stats, total = brain.test_stats, len(test)
    chance = 100.0 / len(hp["colours"])
    table = ResultTable(
        title="Noise-colour classification accuracy (%) on data/test",
        columns=["accuracy (%)", "NLL", "utterances"],
        rows={"linear on mean log-mel": [100 * stats["accuracy"], stats["loss"], total],
              "chance": [chance, None, total]},
        caption="Toy task: no paper; the template recipe's sanity check.",
        headline=[("linear on mean log-mel", "accuracy (%)")])
    path = write_results(stage.exp_dir, "egs/toy", [table], corpus=str(hp["corpus"]),
                         examples=listening_examples(hp, stage.exp_dir))
    logger.info("accuracy %.1f%% on %d utterances; wrote %s", 100 * stats["accuracy"], total, path)


if __name__ == "__main__":
    exit_on_input_error("toy.score", main)
