"""Stages 2-7 of egs/se_uda: every training of the paper, one `--system` per call.

    python -m speechlib.tasks.se_uda.train conf/mini_se_uda.yaml --output_folder exp/x --system dann

Systems, in dependency order: source (stage 2), classifier (3), dann (4), remixit and
dann_remixit (5), srst_random and srst_similar (6), target (7). Each writes
exp/<tag>/models/<system>/model.pt. Re-running a killed training resumes from its last
checkpoint (exp/<tag>/save/<system>); a finished one does nothing; a changed config retrains.
"""
from __future__ import annotations

import copy
import functools
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger, TensorboardLogger
from tqdm import tqdm

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.tasks.se_uda import brains
from speechlib.tasks.se_uda.common import (build_classifier, build_unet, load_model, mixture_dataset,
                                           model_dir, save_model)
from speechlib.tasks.se_uda.selftrain import rank_source_by_similarity, random_ranking
from speechlib.tasks.stage import Stage, announce_resume, start_stage

ORDER = ("source", "classifier", "dann", "remixit", "dann_remixit", "srst_random", "srst_similar", "target")
NEEDS = {"classifier": "source", "dann": "classifier", "remixit": "source", "dann_remixit": "dann",
         "srst_random": "dann", "srst_similar": "dann"}


def _fresh_save_dir(save_dir: Path, fingerprint: str) -> None:
    """Checkpoints of another config must not be resumed: wipe them when the config changed."""
    stamp = save_dir / "config.fingerprint"
    if save_dir.exists() and (not stamp.is_file() or stamp.read_text().strip() != fingerprint):
        shutil.rmtree(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, fingerprint + "\n")


def _data(hp: dict, name: str, with_refs: bool):
    return mixture_dataset(Path(hp["data_folder"]) / name, hp["sample_rate"], with_refs)


def fit(stage: Stage, system: str, brain_cls, modules: dict, train_set, epochs: int, lr: float,
        extra_recoverables: dict | None = None, setup=None):
    """Build the Brain with its checkpointer and loggers, train, and return it."""
    hp = dict(stage.hparams)
    save_dir = stage.exp_dir / "save" / system
    _fresh_save_dir(save_dir, stage.fingerprint)
    counter = EpochCounter(epochs)
    recoverables = {**modules, "counter": counter, **(extra_recoverables or {})}
    checkpointer = Checkpointer(save_dir, recoverables=recoverables)
    text_log = stage.exp_dir / "log" / f"train_{system}.txt"
    if checkpointer.find_checkpoint() is None and text_log.exists():
        text_log.unlink()  # a fresh training starts a fresh per-epoch log (a resumed one appends)
    hp.update(train_logger=FileTrainLogger(str(text_log)),
              tensorboard_logger=TensorboardLogger(str(stage.exp_dir / "tensorboard" / system)))
    brain = brain_cls(modules=modules, opt_class=functools.partial(torch.optim.Adam, lr=lr), hparams=hp,
                      run_opts=stage.run_opts, checkpointer=checkpointer)
    if setup is not None:
        setup(brain)
    announce_resume(checkpointer)
    start = time.time()
    brain.fit(counter, train_set, train_loader_kwargs=hp["train_dataloader_opts"])
    seconds = time.time() - start
    samples = len(train_set) * epochs
    brain.throughput = {"train_seconds": round(seconds, 2), "epochs": epochs,
                        "utterances_per_second": round(samples / max(seconds, 1e-9), 2)}
    return brain


def _finish(stage: Stage, system: str, brain, classifier=None) -> None:
    unet = brain.modules.unet
    save_model(model_dir(stage.exp_dir, system), unet, classifier, info=getattr(brain, "throughput", {}))
    brains.write_json(model_dir(stage.exp_dir, system) / "info.json", getattr(brain, "throughput", {}))


def train_supervised(stage: Stage, system: str) -> None:
    hp = stage.hparams
    name, epochs = ("source_train", hp["source_epochs"]) if system == "source" else \
        ("target_train_oracle", hp["target_epochs"])
    brain = fit(stage, system, brains.SupervisedBrain, {"unet": build_unet(hp)}, _data(hp, name, True),
                epochs, hp["lr"])
    _finish(stage, system, brain)


def train_classifier(stage: Stage, unet, classifier, system: str, epochs: int):
    hp = stage.hparams

    def setup(brain):
        brain.other_dataset = _data(hp, "target_train", False)
    brain = fit(stage, system, brains.ClassifierBrain, {"unet": unet, "classifier": classifier},
                _data(hp, "source_train", False), epochs, hp["classifier_lr"], setup=setup)
    return brain


def train_dann(stage: Stage) -> None:
    hp = stage.hparams
    unet, classifier = load_model(model_dir(stage.exp_dir, "classifier"), with_classifier=True)

    def setup(brain):
        brain.other_dataset = _data(hp, "target_train", False)
    brain = fit(stage, "dann", brains.DANNBrain, {"unet": unet, "classifier": classifier},
                _data(hp, "source_train", True), hp["dann_epochs"], hp["dann_lr"], setup=setup)
    _finish(stage, "dann", brain, brain.modules.classifier)


def train_remixit(stage: Stage, system: str) -> None:
    hp = stage.hparams
    teacher = load_model(model_dir(stage.exp_dir, NEEDS[system]))
    student = copy.deepcopy(teacher)

    def setup(brain):
        brain.teacher = teacher
    brain = fit(stage, system, brains.RemixITBrain, {"unet": student}, _data(hp, "target_train", False),
                hp["remixit_epochs"], hp["remixit_lr"], extra_recoverables={"teacher": teacher}, setup=setup)
    _finish(stage, system, brain)


@torch.no_grad()
def domain_scores(unet, classifier, dataset, batch_size: int) -> dict[str, float]:
    """P(target) of every utterance of a (fixed-length) mixture set."""
    import speechbrain as sb

    unet.eval()
    classifier.eval()
    loader = sb.dataio.dataloader.make_dataloader(dataset, batch_size=batch_size)
    scores: dict[str, float] = {}
    for batch in tqdm(loader, desc="domain scores", leave=False):
        probs = torch.sigmoid(classifier(unet.encode(batch.sig[0])))
        scores.update(zip(batch.id, probs.tolist()))
    return scores


def srst_scores(stage: Stage) -> dict:
    """Algorithm 1, steps 2-3: a post-DANN domain classifier (the DANN one, fine-tuned on the
    frozen DANN encoder for `post_dann_classifier_epochs`) scores every source and target sample."""
    hp = stage.hparams
    path = stage.exp_dir / "srst" / "domain_scores.json"
    marker = stage.exp_dir / "srst" / "domain_scores.fingerprint"
    if path.is_file() and marker.is_file() and marker.read_text().strip() == stage.fingerprint:
        import json
        return json.loads(path.read_text())
    unet, classifier = load_model(model_dir(stage.exp_dir, "dann"), with_classifier=True)
    if hp["post_dann_classifier_epochs"] > 0:
        brain = train_classifier(stage, unet, classifier, "post_dann_classifier", hp["post_dann_classifier_epochs"])
        unet, classifier = brain.modules.unet.cpu(), brain.modules.classifier.cpu()
    batch = hp["train_dataloader_opts"]["batch_size"]
    payload = {"source": domain_scores(unet, classifier, _data(hp, "source_train", False), batch),
               "target": domain_scores(unet, classifier, _data(hp, "target_train", False), batch),
               "selected_share": hp["srst_start_share"]}
    brains.write_json(path, payload)
    atomic_write_text(marker, stage.fingerprint + "\n")
    return payload


def train_srst(stage: Stage, system: str) -> None:
    hp = stage.hparams
    scores = srst_scores(stage)
    source_set = _data(hp, "source_train", True)
    source_ids = sorted(scores["source"])
    probs = np.array([scores["source"][utt] for utt in source_ids])
    ranking = rank_source_by_similarity(probs) if system == "srst_similar" else \
        random_ranking(len(source_ids), int(hp["seed"]))
    teacher = load_model(model_dir(stage.exp_dir, "dann"))
    student = copy.deepcopy(teacher)

    def setup(brain):
        brain.teacher, brain.other_dataset = teacher, source_set
        brain.ranking, brain.source_ids = ranking, source_ids
        brain.hparams.teacher_update = "none"  # Algorithm 1: the teacher stays the DANN model
    brain = fit(stage, system, brains.SRSTBrain, {"unet": student}, _data(hp, "target_train", False),
                hp["srst_epochs"], hp["srst_lr"], extra_recoverables={"teacher": teacher}, setup=setup)
    _finish(stage, system, brain)


def run(stage: Stage, system: str) -> None:
    hp = stage.hparams
    torch.set_num_threads(int(hp.get("train_threads", 1)))
    if system in NEEDS and not (model_dir(stage.exp_dir, NEEDS[system]) / "model.json").is_file():
        raise InputError(f"--system {system} needs the '{NEEDS[system]}' model: run its stage first",
                         str(model_dir(stage.exp_dir, NEEDS[system])))
    if system in ("source", "target"):
        train_supervised(stage, system)
    elif system == "classifier":
        unet = load_model(model_dir(stage.exp_dir, "source"))
        brain = train_classifier(stage, unet, build_classifier(hp, unet), "classifier", hp["classifier_epochs"])
        _finish(stage, "classifier", brain, brain.modules.classifier)
    elif system == "dann":
        train_dann(stage)
    elif system in ("remixit", "dann_remixit"):
        train_remixit(stage, system)
    else:
        train_srst(stage, system)


def _pop_system(argv: list[str]) -> tuple[str, list[str]]:
    if "--system" not in argv or argv.index("--system") + 1 >= len(argv):
        raise InputError(f"--system is required (one of {', '.join(ORDER)})")
    index = argv.index("--system")
    system = argv[index + 1]
    if system not in ORDER:
        raise InputError(f"unknown --system '{system}' (one of {', '.join(ORDER)})")
    return system, argv[:index] + argv[index + 2:]


def main() -> None:
    system, argv = _pop_system(sys.argv[1:])
    stage = start_stage(f"train_{system}", argv)
    if stage.is_done((model_dir(stage.exp_dir, system) / "model.json",)):
        print(f"train {system}: up to date ({model_dir(stage.exp_dir, system)})")
        return
    run(stage, system)
    stage.mark_done()
    print(f"train {system}: done, model in {model_dir(stage.exp_dir, system)}")


if __name__ == "__main__":
    exit_on_input_error("se_uda.train", main)
