"""What the se_uda stages share: mixture datasets, model files, an endless second loader."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch

from speechlib.data.dataset import load_datadir_dataset
from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError
from speechlib.nn.unet import DomainClassifier, SpeechNoiseUNet
from speechlib.tasks.model_dir import load_model_dir, save_model_dir

SYSTEMS = ("source", "remixit", "dann", "dann_remixit", "srst_random", "srst_similar", "target")


def mixture_dataset(data_dir: str | Path, sample_rate: int, with_refs: bool, policy: str = "error"):
    """DynamicItemDataset of a mixture dir: `id`, `sig` (mixture) and, with refs, `speech`, `noise`."""
    import speechbrain as sb

    extra = ("utt2speech", "utt2noise") if with_refs else ()
    if with_refs and not (Path(data_dir) / "utt2speech").is_file():
        raise InputError("this data dir has no references (utt2speech)", str(data_dir))
    dataset = load_datadir_dataset(data_dir, sample_rate, extra, on_rate_mismatch=policy)
    if not with_refs:
        return dataset

    def reader(key: str):
        @sb.utils.data_pipeline.takes("id", key)
        @sb.utils.data_pipeline.provides(f"{key}_sig")
        def read(utt: str, path: str) -> torch.Tensor:
            return torch.from_numpy(load_audio(path, sample_rate, utt=utt, on_rate_mismatch=policy)[0])
        return read

    dataset.add_dynamic_item(reader("speech"))
    dataset.add_dynamic_item(reader("noise"))
    dataset.set_output_keys(["id", "sig", "speech_sig", "noise_sig"])
    return dataset


def endless(loader) -> Iterator:
    """Cycle through a DataLoader forever (the second domain's batches in paired training)."""
    while True:
        yield from loader


def build_unet(hp: dict) -> SpeechNoiseUNet:
    return SpeechNoiseUNet(**hp["unet"])


def build_classifier(hp: dict, unet: SpeechNoiseUNet) -> DomainClassifier:
    channels, bins = unet.bottleneck_shape
    return DomainClassifier(channels, bins, **hp["classifier"])


def model_dir(exp_dir: str | Path, system: str) -> Path:
    return Path(exp_dir) / "models" / system


def save_model(path: Path, unet: SpeechNoiseUNet, classifier: DomainClassifier | None = None,
               info: dict | None = None, sample_rate: int = 16000, corpus: str = "not recorded") -> None:
    """The system's model directory (speechlib.tasks.model_dir, kind "enhancer"): the U-Net (and
    domain classifier) weights and configs, `info` (throughput) and provenance."""
    modules, configs = {"unet": unet}, {"unet": unet.config}
    if classifier is not None:
        modules["classifier"], configs["classifier"] = classifier, classifier.config
    save_model_dir(path, recipe="se_uda", kind="enhancer", system=Path(path).name, sample_rate=sample_rate,
                   modules=modules, configs=configs, corpus=corpus, extra={"info": info or {}})


def load_model(path: str | Path, with_classifier: bool = False):
    """A system's model directory -> the U-Net, or (U-Net, classifier); both in eval mode."""
    model = load_model_dir(path, "se_uda", "enhancer")
    unet = model.build("unet", SpeechNoiseUNet)
    if not with_classifier:
        return unet
    if not model.has("classifier"):
        raise InputError("this model has no domain classifier", str(path))
    return unet, model.build("classifier", DomainClassifier)
