"""Stage 3 of egs/toy: evaluate the best checkpoint on data/test and write RESULTS.md.

    python -m speechlib.tasks.toy.score conf/mini_toy.yaml --output_folder exp/toy
"""
from __future__ import annotations

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.errors import exit_on_input_error
from speechlib.results.tables import ResultTable, write_results
from speechlib.tasks.stage import start_stage
from speechlib.tasks.toy.train import build_brain


def main() -> None:
    stage = start_stage("score")
    hp = stage.hparams
    test = load_datadir_dataset(f"{hp['data_folder']}/test", hp["sample_rate"], ("utt2label",))
    brain = build_brain(stage)
    brain.evaluate(test, max_key="accuracy", test_loader_kwargs=hp["valid_dataloader_opts"],
                   progressbar=True)
    stats = brain.test_stats
    chance = 100.0 / len(hp["colours"])
    table = ResultTable(
        title="Noise-colour classification accuracy (%) on data/test",
        columns=["accuracy (%)", "NLL", "utterances"],
        rows={"linear on mean log-mel": [100 * stats["accuracy"], stats["loss"], brain.total],
              "chance": [chance, None, brain.total]},
        caption="Toy task: no paper; the template recipe's sanity check.")
    path = write_results(stage.exp_dir, "egs/toy", [table], corpus=str(hp["corpus"]))
    print(f"score: accuracy {100 * stats['accuracy']:.1f}% on {brain.total} utterances; wrote {path}")


if __name__ == "__main__":
    exit_on_input_error("toy.score", main)
