"""Stage 3 of egs/toy: evaluate the best checkpoint on data/test and write RESULTS.md.

    python -m speechlib.tasks.toy.score conf/mini_toy.yaml --output_folder exp/toy
"""
from __future__ import annotations

import logging

from speechlib.io.errors import exit_on_input_error
from speechlib.results.tables import ResultTable, write_results
from speechlib.tasks.stage import start_stage
from speechlib.tasks.toy.train import SYSTEM, ToyBrain, build_modules, datasets, label_index
from speechlib.tasks.training import load_trained

logger = logging.getLogger("toy.score")


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
        caption="Toy task: no paper; the template recipe's sanity check.")
    path = write_results(stage.exp_dir, "egs/toy", [table], corpus=str(hp["corpus"]))
    logger.info("accuracy %.1f%% on %d utterances; wrote %s", 100 * stats["accuracy"], total, path)


if __name__ == "__main__":
    exit_on_input_error("toy.score", main)
