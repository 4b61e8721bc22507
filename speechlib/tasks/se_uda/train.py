"""Stages 2-6 of egs/se_uda: every training of the paper, one `--system` per call.

    python -m speechlib.tasks.se_uda.train conf/mini_se_uda.yaml --output_folder exp/x --system dann

Systems, in dependency order: source and target (stage 2), classifier (3), dann (4), remixit
and dann_remixit (5), srst_scores (the post-DANN classifier and its scores), srst_random and
srst_similar (6). Trainings of one stage do not depend on each other (run.sh runs them at
once). Each writes
exp/<tag>/models/<system>/ (a model directory) and, through the kit (speechlib.tasks.training),
exp/<tag>/<system>/ (checkpoints, train_log.txt, loss_curve.json, throughput.json).
Training mixtures are drawn on the fly (data.RemixedMixtures); every epoch ends with a
validation pass on a fixed labelled set (source_valid; target_valid for the oracle target model).
The systems in `best_checkpoint_systems` keep the checkpoint of lowest validation loss
(Checkpointer min_key); the adapted systems keep their last epoch, since their only labelled
validation data is the source domain they are moving away from (README). Under torchrun
(`--ngpu N` through speechlib.launch.distributed) SpeechBrain trains with DDP. Re-running a
killed training resumes from its last checkpoint; a finished one does nothing; a changed config
retrains (the kit's one invalidation rule).
"""
from __future__ import annotations

import copy
import functools
import json
import math
from pathlib import Path

import numpy as np
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.distributed import if_main_process
from tqdm import tqdm

from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.tasks.se_uda import brains
from speechlib.tasks.se_uda.common import build_classifier, build_unet, load_model, mixture_dataset, model_dir, save_model
from speechlib.tasks.se_uda.data import RemixedMixtures, make_loader, unwrap
from speechlib.tasks.se_uda.selftrain import rank_source_by_similarity, random_ranking
from speechlib.tasks.stage import Option, Stage, start_stage
from speechlib.tasks.training import build_brain, fit

ORDER = ("source", "classifier", "dann", "remixit", "dann_remixit", "srst_scores", "srst_random", "srst_similar",
         "target")
NEEDS = {"classifier": "source", "dann": "classifier", "remixit": "source", "dann_remixit": "dann",
         "srst_scores": "dann", "srst_random": "srst_scores", "srst_similar": "srst_scores"}
# (speech dir, noise dir, count key, tag) of the on-the-fly training sets
DOMAINS = {"source": ("source_speech", "source_noise", "num_source_train", "src"),
           "target": ("target_speech_train", "target_noise_train", "num_target_train", "tgt"),
           "english": ("english_speech_train", "target_noise_train", "num_english_train", "eng")}


def remixed(hp: dict, domain: str, with_refs: bool, frozen: bool = False, count_key: str | None = None,
            seed_offset: int = 0) -> RemixedMixtures:
    """The on-the-fly training mixtures of one domain (a fixed pool with `frozen`)."""
    speech, noise, count, tag = DOMAINS[domain]
    data = Path(hp["data_folder"])
    return RemixedMixtures(data / speech, data / noise, hp[count_key or count], hp["segment_seconds"],
                           tuple(hp["train_snr_range"]), hp["sample_rate"], int(hp["seed"]) * 1000 + seed_offset,
                           with_refs, tag, hp["on_rate_mismatch"], frozen, hp["audio_cache_mb"])


def oracle_set(hp: dict):
    """The target model's training mixtures: target (and DNS English) speech with references."""
    target = remixed(hp, "target", True)
    if not hp["oracle_include_english"]:
        return target, [target]
    english = remixed(hp, "english", True, seed_offset=1)
    return torch.utils.data.ConcatDataset([target, english]), [target, english]


def valid_set(hp: dict, name: str = "source_valid"):
    return mixture_dataset(Path(hp["data_folder"]) / name, hp["sample_rate"], True, hp["on_rate_mismatch"])


def train_system(stage: Stage, system: str, brain_cls, modules: dict, train_set, epoch_datasets: list,
                 epochs: int, lr: float, valid=None, recoverables: dict | None = None, **dependencies):
    """Build the system's Brain with the kit (speechlib.tasks.training), train it, and restore
    the selected checkpoint: the best validation loss (best_checkpoint_systems) or the last."""
    hp = stage.hparams
    world = int(torch.distributed.get_world_size()) if torch.distributed.is_initialized() else 1
    batch = int(hp["batch_size"])
    brain = build_brain(brain_cls, stage, system, modules, optimizer=functools.partial(torch.optim.Adam, lr=lr),
                        epochs=epochs, recoverables=recoverables, epoch_datasets=epoch_datasets, base_lr=lr,
                        total_steps=epochs * math.ceil(len(train_set) / (batch * world)), **dependencies)
    best = system in hp["best_checkpoint_systems"]
    if best:
        brain.keep_best = {"min_keys": ["loss"]}
    loader = {"batch_size": batch, "shuffle": True, "num_workers": int(hp["num_workers"]), "collate_fn": PaddedBatch}
    throughput = fit(brain, train_set, valid if valid is not None else valid_set(hp), train_loader_kwargs=loader,
                     valid_loader_kwargs={"batch_size": batch})
    if best:
        brain.checkpointer.recover_if_possible(min_key="loss")
    brain.throughput = {**throughput, "train_utterances": len(train_set),
                        "selected": "best validation loss" if best else "last epoch"}
    return brain


def _finish(stage: Stage, system: str, brain, classifier=None) -> None:
    """The trained system as a model directory (exp/<tag>/models/<system>), for scoring and enhance."""
    if not if_main_process():
        return
    info = getattr(brain, "throughput", {})
    save_model(model_dir(stage.exp_dir, system), unwrap(brain.modules.unet), classifier, info=info)


def train_supervised(stage: Stage, system: str) -> None:
    hp = stage.hparams
    if system == "source":
        train_set = remixed(hp, "source", True)
        epoch_sets, epochs, valid = [train_set], hp["source_epochs"], valid_set(hp)
    else:
        train_set, epoch_sets = oracle_set(hp)
        epochs, valid = hp["target_epochs"], valid_set(hp, "target_valid")
    brain = train_system(stage, system, brains.SupervisedBrain, {"unet": build_unet(hp)}, train_set, epoch_sets,
                         epochs, hp["lr"], valid=valid)
    _finish(stage, system, brain)


def train_classifier(stage: Stage, unet, classifier, system: str, epochs: int):
    hp = stage.hparams
    source, target = remixed(hp, "source", False), remixed(hp, "target", False)
    unet.requires_grad_(False)
    return train_system(stage, system, brains.ClassifierBrain, {"unet": unet, "classifier": classifier}, source,
                        [source, target], epochs, hp["classifier_lr"], other_dataset=target,
                        valid_target=valid_set(hp, "target_valid"))


def train_dann(stage: Stage) -> None:
    hp = stage.hparams
    unet, classifier = load_model(model_dir(stage.exp_dir, "classifier"), with_classifier=True)
    unet.requires_grad_(True)
    if hp["dann_classifier"] not in ("trained", "frozen"):
        raise InputError(f"dann_classifier must be 'trained' or 'frozen', not '{hp['dann_classifier']}'")
    classifier.requires_grad_(hp["dann_classifier"] == "trained")
    source, target = remixed(hp, "source", True), remixed(hp, "target", False)
    brain = train_system(stage, "dann", brains.DANNBrain, {"unet": unet, "classifier": classifier}, source,
                         [source, target], hp["dann_epochs"], hp["dann_lr"], other_dataset=target)
    _finish(stage, "dann", brain, unwrap(brain.modules.classifier))


def train_remixit(stage: Stage, system: str) -> None:
    hp = stage.hparams
    teacher = load_model(model_dir(stage.exp_dir, NEEDS[system]))
    student = copy.deepcopy(teacher)
    target = remixed(hp, "target", False)
    brain = train_system(stage, system, brains.RemixITBrain, {"unet": student}, target, [target],
                         hp["remixit_epochs"], hp["remixit_lr"], recoverables={"teacher": teacher},
                         teacher=teacher, teacher_update=hp["teacher_update"])
    _finish(stage, system, brain)


@torch.no_grad()
def domain_scores(unet, classifier, dataset, batch_size: int, device: str) -> dict[str, float]:
    """P(target) of every utterance of a (fixed-length) mixture set."""
    unet.eval().to(device)
    classifier.eval().to(device)
    scores: dict[str, float] = {}
    for batch in tqdm(make_loader(dataset, batch_size, shuffle=False), desc="domain scores", leave=False):
        probs = torch.sigmoid(classifier(unet.encode(batch.sig[0].to(device))))
        scores.update(zip(batch.id, probs.cpu().tolist()))
    return scores


def srst_pools(hp: dict) -> tuple[RemixedMixtures, RemixedMixtures]:
    """The fixed source pool that SRST ranks and draws from, and a target pool for Figure 3."""
    return (remixed(hp, "source", True, frozen=True, count_key="num_srst_pool", seed_offset=7),
            remixed(hp, "target", False, frozen=True, count_key="num_srst_pool", seed_offset=7))


def srst_scores(stage: Stage) -> None:
    """Algorithm 1, steps 2-3 (`--system srst_scores`): a post-DANN domain classifier (the DANN
    one, fine-tuned on the frozen DANN encoder for `post_dann_classifier_epochs`) scores every
    source and target pool sample -> exp/<tag>/srst/domain_scores.json, read by both SRSTs."""
    hp = stage.hparams
    unet, classifier = load_model(model_dir(stage.exp_dir, "dann"), with_classifier=True)
    if hp["post_dann_classifier_epochs"] > 0:
        brain = train_classifier(stage, unet, classifier, "post_dann_classifier", hp["post_dann_classifier_epochs"])
        unet, classifier = unwrap(brain.modules.unet), unwrap(brain.modules.classifier)
    source, target = srst_pools(hp)
    device = str(stage.run_opts.get("device") or "cpu")
    payload = {"source": domain_scores(unet, classifier, source, int(hp["batch_size"]), device),
               "target": domain_scores(unet, classifier, target, int(hp["batch_size"]), device),
               "selected_share": hp["srst_start_share"]}
    if if_main_process():
        brains.write_json(scores_path(stage), payload)


def scores_path(stage: Stage) -> Path:
    return stage.exp_dir / "srst" / "domain_scores.json"


def train_srst(stage: Stage, system: str) -> None:
    hp = stage.hparams
    scores = json.loads(scores_path(stage).read_text())
    source_pool, _ = srst_pools(hp)
    probs = np.array([scores["source"][utt] for utt in source_pool.ids()])
    ranking = rank_source_by_similarity(probs) if system == "srst_similar" else \
        random_ranking(len(probs), int(hp["seed"]))
    teacher = load_model(model_dir(stage.exp_dir, "dann"))
    student = copy.deepcopy(teacher)
    target = remixed(hp, "target", False)
    brain = train_system(stage, system, brains.SRSTBrain, {"unet": student}, target, [target], hp["srst_epochs"],
                         hp["srst_lr"], recoverables={"teacher": teacher}, teacher=teacher, other_dataset=source_pool,
                         ranking=ranking)
    _finish(stage, system, brain)


def run(stage: Stage, system: str) -> None:
    hp = stage.hparams
    need = NEEDS.get(system)
    needed = scores_path(stage) if need == "srst_scores" else model_dir(stage.exp_dir, need or "") / "model.json"
    if need and not needed.is_file():
        raise InputError(f"--system {system} needs '{need}': run it first", str(needed))
    if system in ("source", "target"):
        train_supervised(stage, system)
    elif system == "classifier":
        unet = load_model(model_dir(stage.exp_dir, "source"))
        brain = train_classifier(stage, unet, build_classifier(hp, unet), "classifier", hp["classifier_epochs"])
        _finish(stage, "classifier", brain, unwrap(brain.modules.classifier))
    elif system == "dann":
        train_dann(stage)
    elif system in ("remixit", "dann_remixit"):
        train_remixit(stage, system)
    elif system == "srst_scores":
        srst_scores(stage)
    else:
        train_srst(stage, system)


SYSTEM = Option("system", "what to train (in dependency order)", choices=ORDER)


def main() -> None:
    stage = start_stage("train_{system}", options=(SYSTEM,))
    system = stage.options["system"]
    output = scores_path(stage) if system == "srst_scores" else model_dir(stage.exp_dir, system) / "model.json"
    if stage.is_done((output,)):
        print(f"train {system}: up to date ({output})")
        return
    run(stage, system)
    if if_main_process():
        stage.mark_done()
    print(f"train {system}: done ({output})")


if __name__ == "__main__":
    exit_on_input_error("se_uda.train", main)
