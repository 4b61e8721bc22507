"""Stages 2-4 of egs/mos_pretrain: pre-train the encoders of one group of systems.

    python -m speechlib.tasks.mos_pretrain.pretrain conf/mini_mos_pretrain.yaml --output_folder exp/x \\
        --group pase --job 1 --nj 2

Group `pase` (Table I and the PASE rows of Tables II/III), `masked` (Mockingjay-style encoder)
or `plus` (PASE+ baseline). Job j of nj trains the group's systems j, j+nj, ... one after the
other in this process, once per pre-training seed (`pretrain_seeds`; a system's `seeds: N` keeps
the first N). Each run is built and trained by the kit (speechlib.tasks.training: build_brain,
fit) under exp/<tag>/encoders/<system>/seed<k>/ (save/, train_log.txt, tensorboard/, loss curve,
throughput.json, config.fingerprint: a killed run resumes from its last checkpoint, a run whose
settings changed is retrained, a finished one is skipped) and ends with encoder.pt + meta.json
(parameter counts, throughput). `--ngpu N` (run.sh -> utils/recipe_init.sh train_job) runs this
stage under torchrun/srun with DDP; the batch size is per process.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process

from speechlib.io.audio import load_audio
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.nn.masked_encoder import mask_frames
from speechlib.nn.workers import WorkerSet
from speechlib.signal import features
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.mos_pretrain.distortions import distort
from speechlib.tasks.mos_pretrain.noisy import LABEL_KEYS, DrawPlan, PretrainDataset
from speechlib.tasks.mos_pretrain.systems import (TARGET_DIMS, build_encoder, count_params, encoder_kwargs,
                                                  file_identity, fingerprint, run_dir, run_name, save_encoder,
                                                  system_names, system_seeds)
from speechlib.tasks.stage import Option, set_seed, start_stage
from speechlib.tasks.training import build_brain, fit, invalidate_if_changed
from speechlib.tasks.training import system_dir as training_dir

log = logging.getLogger("mos_pretrain")


def spectral_targets(wav: torch.Tensor, names: list[str], sample_rate: int) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in names:
        base = name.removesuffix("_long")
        if base == "lps":
            value = features.lps(wav)
        elif base == "mfcc":
            value = features.mfcc(wav, sample_rate)
        elif base == "fbank":
            value = features.log_mel(wav, sample_rate)
        else:
            continue
        out[name] = features.long_context(value) if name.endswith("_long") else value
    return out


class TargetNorm(torch.nn.Module):
    """Per-dimension z-normalisation of the regression targets (PASE normalises with precomputed
    statistics); statistics from the first training utterances, kept with the checkpoint."""

    def __init__(self, dims: dict[str, int]):
        super().__init__()
        for name, dim in dims.items():
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))

    def fit(self, samples: dict[str, torch.Tensor]) -> None:
        for name, value in samples.items():
            flat = value.reshape(-1, value.shape[-1])
            getattr(self, f"{name}_mean").copy_(flat.mean(0))
            getattr(self, f"{name}_std").copy_(flat.std(0).clamp_min(1e-3))

    def forward(self, name: str, value: torch.Tensor) -> torch.Tensor:
        return (value - getattr(self, f"{name}_mean")) / getattr(self, f"{name}_std")


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module itself under DDP's wrapper (for methods other than forward)."""
    return getattr(module, "module", module)


class PretrainBrain(RecipeBrain):
    """Encoder + workers (+ the masked encoder's reconstruction layer), one Adam for all.

    Dependencies (build_brain): `train_set` (told the epoch, so every epoch draws fresh crops,
    noise clips and SNRs), `kind` (pase | masked), `mask_proportion`, `sample_rate`.
    """

    needs = ("train_set", "kind", "mask_proportion", "sample_rate")

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wav = batch.inp[0]
        if self.kind == "masked":
            feats = unwrap(self.modules.encoder).features(wav)
            # masked in validation too, so that its loss is the same objective
            masked, mask, _ = mask_frames(feats, self.mask_proportion)
            return self.modules.encoder(feats=masked), feats, mask
        return self.modules.encoder(wav), None, None

    def compute_objectives(self, predictions, batch, stage):
        emb, feats, mask = predictions
        target_wav = batch.target[0]
        names = unwrap(self.modules.workers).regression_targets()
        raw = spectral_targets(target_wav, names, self.sample_rate)
        if "prosody" in names:
            raw["prosody"] = batch.prosody[0]
        targets = {name: self.modules.norm(name, value) for name, value in raw.items()}
        targets["waveform"] = target_wav
        for key in LABEL_KEYS:
            targets[key] = torch.tensor([int(v) for v in getattr(batch, key)], device=self.device)
        loss, parts = self.modules.workers(emb, targets)
        if feats is not None:
            recon = self.modules.recon(emb)
            parts["reconstruction"] = (recon - feats).abs()[mask].mean()
            loss = loss + parts["reconstruction"]
        for name, value in parts.items():
            self.add_stat(name, float(value.detach()))
        return loss

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        if stage == sb.Stage.TRAIN:
            self.train_set.epoch = int(epoch)  # fresh crops, noise clips and SNRs every epoch

    def _wrap_distributed(self):
        """DDP as SpeechBrain does it, but BatchNorm becomes SyncBatchNorm only on CUDA: PASE's
        BatchNorm layers would otherwise stop a CPU (gloo) DDP run, SyncBatchNorm being GPU-only.
        On CPU each process normalises with its own batch statistics (batch size is per process)."""
        if not self.distributed_launch or str(self.device).startswith("cuda"):
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = torch.nn.parallel.DistributedDataParallel(
                    module, device_ids=None, find_unused_parameters=self.find_unused_parameters)


def make_dataset(hp: dict, spec: dict, split: str, seed: int) -> PretrainDataset:
    """Input signal (`inp`), the clean crop the SSL targets come from (`target`), prosody, labels:
    drawn afresh for every epoch (noisy.DrawPlan); the validation split keeps epoch 0's draws."""
    data = Path(hp["data_folder"])
    sr = hp["sample_rate"]
    plan = DrawPlan.from_data(data, split, hp, seed, noisy=spec.get("data", "noisy") == "noisy")
    noises, others = [], []
    if spec.get("plus"):
        noises = [load_audio(w, sr, on_rate_mismatch="resample")[0]
                  for w in read_dict(data / "noise_train" / "wav.scp").values()]
        others = [load_audio(w, sr)[0] for _, w in sorted(read_dict(data / f"pretrain_{split}" / "wav.scp").items())[:64]]
    need_prosody = "prosody" in spec["workers"]

    def transform(item: dict, rng: np.random.Generator) -> dict:
        clean = item["target"]
        inp = distort(clean, rng, sr, noises, others) if spec.get("plus") else item["inp"]
        item.update(inp=torch.from_numpy(np.ascontiguousarray(inp, dtype=np.float32)),
                    target=torch.from_numpy(np.ascontiguousarray(clean, dtype=np.float32)),
                    prosody=torch.from_numpy(features.prosody(clean, sr)) if need_prosody else torch.zeros(1, 4))
        return item

    return PretrainDataset(plan, transform)


def data_fingerprint(hp: dict) -> str:
    """What the pre-training data is made of: the utterance and noise lists with each file's size
    and modification time (content, not counts: a rebuilt corpus under the same names retrains)."""
    data = Path(hp["data_folder"])
    return fingerprint(*(file_identity(sorted(read_dict(data / part / "wav.scp").items()))
                         for part in ("pretrain_train", "pretrain_eval", "noise_train")),
                       read_dict(data / "noise_train" / "utt2category"), hp["chunk_seconds"], hp["sample_rate"])


@torch.no_grad()
def calibrate_batchnorm(encoder: torch.nn.Module, train: PretrainDataset, batch_size: int) -> None:
    """Running BatchNorm statistics of an untrained encoder from one pass over the training data,
    so the random-initialisation control sees normalised activations (no weight is updated)."""
    encoder.train()
    train.epoch = 1
    for start in range(0, len(train), batch_size):
        encoder(torch.stack([train[i]["inp"] for i in range(start, min(len(train), start + batch_size))]))
    encoder.eval()


def train_system(name: str, seed: int, stage, hp: dict) -> None:
    spec = dict(hp["systems"][name])
    kind = spec["encoder"]
    folder = run_dir(stage.exp_dir, name, seed)
    kwargs = encoder_kwargs(hp, spec)
    # the run's own recipe: the system's number of seeds is not part of it
    stamp = fingerprint({k: v for k, v in spec.items() if k != "seeds"}, kwargs, hp["pretrain"], seed,
                        hp["noise_weights"], hp["noise_mode"],
                        hp["waveform_decoder"], data_fingerprint(hp))
    done = folder / ".done"
    if done.is_file() and done.read_text().strip() == stamp and (folder / "encoder.pt").is_file():
        log.info("pretrain: %s seed %d is up to date (%s)", name, seed, folder)
        return
    set_seed(seed)
    opts = hp["pretrain"]
    encoder = build_encoder(kind, kwargs)
    base_meta = {"system": name, "seed": seed, "spec": spec, "emb_dim": encoder.emb_dim,
                 "encoder_params": count_params(encoder), "chunk_seconds": hp["chunk_seconds"]}
    if not spec.get("train", True):  # controls: random initialisation, log-mel (no Brain, same rule)
        invalidate_if_changed(training_dir(stage.exp_dir, run_name(name, seed)), stamp)
        if count_params(encoder):
            calibrate_batchnorm(encoder, make_dataset(hp, spec, "train", seed), opts["batch_size"])
        save_encoder(folder, encoder, kind, kwargs, {**base_meta, "worker_params": 0, "train_utts": 0,
                                                     "epochs": 0, "train_seconds": 0.0, "device": "cpu"},
                     sample_rate=hp["sample_rate"], corpus=str(hp["corpus"]))
        atomic_write_text(done, stamp + "\n")
        log.info("pretrain: %s seed %d: untrained control saved", name, seed)
        return
    workers_list = list(spec["workers"])
    dims = {n: TARGET_DIMS[n] for n in workers_list if n in TARGET_DIMS}
    workers = WorkerSet(workers_list, encoder.emb_dim, dims, hp["noise_weights"], hp["noise_mode"],
                        waveform_decoder=hp["waveform_decoder"])
    modules = {"encoder": encoder, "workers": workers, "norm": TargetNorm(dims)}
    if kind == "masked":
        modules["recon"] = torch.nn.Linear(encoder.emb_dim, encoder.n_mels)
    train = make_dataset(hp, spec, "train", seed)
    valid = make_dataset(hp, spec, "eval", seed + 1000)
    # target statistics from the first training utterances (epoch 1's draws)
    train.epoch = 1
    sample = [train[i] for i in range(min(len(train), opts["norm_utts"]))]
    wav = torch.stack([s["target"] for s in sample])
    stats = spectral_targets(wav, workers.regression_targets(), hp["sample_rate"])
    if "prosody" in dims:
        stats["prosody"] = torch.stack([s["prosody"] for s in sample])
    modules["norm"].fit(stats)
    lr = opts["lr_masked"] if kind == "masked" else opts["lr"]
    log.info("pretrain: %s seed %d (%s, %s data, workers %s)", name, seed, kind, spec.get("data", "noisy"),
             ", ".join(workers_list))
    brain = build_brain(PretrainBrain, stage, run_name(name, seed), modules,
                        optimizer=functools.partial(torch.optim.Adam, lr=lr), epochs=opts["epochs"], fingerprint=stamp,
                        train_set=train, kind=kind, mask_proportion=hp["mask_proportion"],
                        sample_rate=hp["sample_rate"])
    collate = {"collate_fn": sb.dataio.batch.PaddedBatch}
    throughput = fit(brain, train, valid, train_loader_kwargs={"batch_size": opts["batch_size"], "shuffle": True,
                                                               **collate},
                     valid_loader_kwargs={"batch_size": opts["batch_size"], **collate})
    if not if_main_process():
        return
    seconds = float(throughput["train_seconds"])
    utts = len(train) * opts["epochs"]
    meta = {**base_meta, "worker_params": count_params(workers) + (count_params(modules["recon"]) if "recon" in modules
                                                                   else 0),
            "train_utts": len(train), "epochs": opts["epochs"], "train_seconds": round(seconds, 2),
            "throughput_utts_per_s": round(utts / seconds, 3) if seconds else None, "device": str(brain.device)}
    save_encoder(folder, unwrap(brain.modules.encoder).cpu(), kind, kwargs, meta, sample_rate=hp["sample_rate"],
                 corpus=str(hp["corpus"]))
    atomic_write_text(done, stamp + "\n")
    log.info("pretrain: %s seed %d done, %d encoder parameters, %s utterances/s on %s", name, seed,
             meta["encoder_params"], meta["throughput_utts_per_s"], meta["device"])


GROUP = Option("group", "which systems to pre-train", choices=("pase", "control", "masked", "plus"))


def main() -> None:
    stage = start_stage("pretrain_{group}.{job}", options=(GROUP,), jobs=True)
    hp, group, job, nj = stage.hparams, stage.options["group"], stage.job, stage.nj
    units = [(name, seed) for name in system_names(hp, group) for seed in system_seeds(hp, name)][job - 1::nj]
    for name, seed in units:
        train_system(name, seed, stage, hp)
    log.info("pretrain: group %s, job %d/%d: %d (system, seed) run(s) ready", group, job, nj, len(units))


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.pretrain", main)
