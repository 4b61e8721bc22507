"""What the audio2image stages share: pictures as tensors, BriVL's augmentation, the tokenizer,
the datasets, one Brain for every contrastive training, embeddings, and the model directories.

Pictures are tensors in [-1, 1] (the VQGAN decoder's range), so the image tower sees generated
and real pictures the same way. Every trained module is exported in the project's one model
directory format (speechlib.tasks.model_dir): model.json records each module's builder and
config values, so the stages after training and the user commands build from it, never from a
config file (layout below, "model directories").
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
import torch.nn.functional as F

from speechlib.data.image_pairs import load_rgb
from speechlib.io.errors import InputError
from speechlib.io.inference import equal_length_batches
from speechlib.io.kaldi import read_dict
from speechlib.nn.audio_image import Wav2CLIPEncoder, WavBriVLEncoder
from speechlib.nn.brivl import build_image_tower, build_text_tower
from speechlib.nn.vqgan import VQModel
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.model_dir import MANIFEST, ModelDir, load_model_dir, save_model_dir

log = logging.getLogger(__name__)
RECIPE = "audio2image"
SYSTEMS = ("wavbrivl", "wav2clip")
_SAID_MODES: set[str] = set()


def picture_tensor(path: str, size: int) -> torch.Tensor:
    """(3, size, size) float in [-1, 1]; non-RGB pictures converted (said once)."""
    array = load_rgb(path, size, _SAID_MODES)
    return torch.from_numpy(array).permute(2, 0, 1).float().div(127.5).sub(1.0)


def augment(picture: torch.Tensor, generator: torch.Generator, grayscale_p: float, jitter: float) -> torch.Tensor:
    """BriVL's augmentation: random grayscale, then colour jitter (brightness, contrast, saturation
    each scaled by a factor in [1 - jitter, 1 + jitter])."""
    x = (picture + 1) / 2
    factors = 1 + jitter * (2 * torch.rand(3, generator=generator) - 1)
    x = x * factors[0]
    x = (x - x.mean()) * factors[1] + x.mean()
    gray = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
    x = gray + (x - gray) * factors[2]
    if float(torch.rand(1, generator=generator)) < grayscale_p:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0).expand(3, -1, -1)
    return x.clamp(0, 1) * 2 - 1


# --- tokenizer --------------------------------------------------------------------------------

def train_tokenizer(texts: list[str], prefix: Path, vocab_size: int) -> Path:
    """A sentencepiece unigram model over the (multilingual) descriptions; returns the .model."""
    import sentencepiece as spm

    prefix.parent.mkdir(parents=True, exist_ok=True)
    corpus = prefix.with_suffix(".txt")
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=vocab_size,
                                   model_type="unigram", character_coverage=1.0, pad_id=0, unk_id=1,
                                   bos_id=-1, eos_id=-1, hard_vocab_limit=False, minloglevel=2,
                                   num_threads=1)
    return prefix.with_suffix(".model")


class Tokenizer:
    def __init__(self, model: str | Path, max_len: int):
        import sentencepiece as spm

        if not Path(model).is_file():
            raise InputError("tokenizer model missing (run stage 1)", str(model))
        self.sp = spm.SentencePieceProcessor(model_file=str(model))
        self.max_len = max_len

    def __call__(self, text: str) -> torch.Tensor:
        ids = self.sp.encode(text)[: self.max_len] or [1]
        return torch.tensor(ids, dtype=torch.long)


# --- datasets ---------------------------------------------------------------------------------

def read_pairs(data_dir: str | Path) -> dict[str, dict[str, str]]:
    """utt -> {wav, image, label, text, kind, stamp} from a pairs data dir."""
    data_dir = Path(data_dir)
    if not (data_dir / "wav.scp").is_file():
        raise InputError("no such data dir (run stage 0)", str(data_dir))
    tables = {name: read_dict(data_dir / f) for name, f in
              (("wav", "wav.scp"), ("image", "utt2image"), ("label", "utt2label"), ("text", "text"),
               ("kind", "utt2kind"), ("stamp", "utt2spk"))}
    return {utt: {name: table.get(utt, "") for name, table in tables.items()} for utt in sorted(tables["wav"])}


def stable_id(name: str) -> int:
    """A 62-bit integer id of a picture's name, the same in every split and process."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)


def crop_or_pad(signal: torch.Tensor, samples: int, generator: torch.Generator | None) -> torch.Tensor:
    """A random window of `samples` (train) or the first `samples` (eval); short clips stay short."""
    if signal.shape[0] <= samples:
        return signal
    start = int(torch.randint(signal.shape[0] - samples + 1, (1,), generator=generator)) if generator else 0
    return signal[start:start + samples]


def category_words(label: str) -> str:
    """A class label as caption words: 'animals/birds' -> 'animals birds'."""
    return label.replace("/", " ")


def category_captions(pairs: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Image-text pre-training captions that name what the picture shows, as BriVL's web captions
    do: every text prefixed by its stamp's category words ("animals birds: Un canard."), plus one
    caption of the category alone per picture (an item `<stamp>-category`). Without them the
    texts (a stamp's own name, in 9 languages) share nothing between two pictures of one class,
    so the towers can only learn each picture apart (README, "The frozen tower")."""
    out = {utt: dict(row, text=f"{category_words(row['label'])}: {row['text']}") for utt, row in pairs.items()}
    for row in {row["stamp"]: row for row in pairs.values()}.values():
        out[f"{row['stamp']}-category"] = dict(row, text=category_words(row["label"]))
    return out


def pretraining_pairs(data_dir: str | Path, hp: dict) -> dict[str, dict[str, str]]:
    """A split's image-text pairs, with category captions when the config asks (`caption_category`)."""
    pairs = read_pairs(data_dir)
    return category_captions(pairs) if hp["caption_category"] else pairs


def pairs_dataset(data_dir: str | Path, hp: dict, train: bool, tokenizer: Tokenizer | None = None,
                  audio: bool = True, unique_pictures: bool = False, extra_keys: tuple[str, ...] = (),
                  pairs: dict[str, dict[str, str]] | None = None):
    """DynamicItemDataset with `id`, `image` (augmented when training), and `sig` (audio) and/or
    `ids` (tokens of the text), plus the pairs' `extra_keys` (e.g. label). `unique_pictures`: one
    item per picture, with every text of the picture drawn at random (else one item per pair).
    `pairs`: the rows to use instead of the data dir's (e.g. with category captions)."""
    from speechlib.io.audio import load_audio

    pairs = read_pairs(data_dir) if pairs is None else pairs
    if unique_pictures:
        texts: dict[str, list[str]] = {}
        for row in pairs.values():
            texts.setdefault(row["image"], []).append(row["text"])
        pairs = {row["stamp"]: dict(row, texts="\t".join(sorted(set(texts[row["image"]]))))
                 for row in pairs.values()}
    generator = torch.Generator().manual_seed(int(hp["seed"])) if train else None
    size, samples = int(hp["image_size"]), int(hp["max_seconds"] * hp["sample_rate"])
    data = {utt: {("image_path" if key == "image" else key): value for key, value in row.items()}
            for utt, row in pairs.items()}
    dataset = sb.dataio.dataset.DynamicItemDataset(data)
    keys = ["id", "image"]
    decoded: dict[str, torch.Tensor] = {}

    def cached(key: str, decode) -> torch.Tensor:
        """Decode once per process when the config says so (`cache_decoded`: a mini set fits in
        memory, and decoding every picture and clip again each epoch cost ~15 % of stage 1)."""
        if not hp["cache_decoded"]:
            return decode()
        if key not in decoded:
            decoded[key] = decode()
        return decoded[key]

    @sb.utils.data_pipeline.takes("image_path")
    @sb.utils.data_pipeline.provides("image")
    def read_picture(path: str) -> torch.Tensor:
        picture = cached(path, lambda: picture_tensor(path, size))
        if generator is not None:
            picture = augment(picture, generator, hp["grayscale_p"], hp["colour_jitter"])
        return picture

    dataset.add_dynamic_item(read_picture)

    @sb.utils.data_pipeline.takes("stamp")
    @sb.utils.data_pipeline.provides("pair_id")
    def pair_id(stamp: str) -> torch.Tensor:
        return torch.tensor([stable_id(stamp)])   # 1-D: PaddedBatch pads along a dimension

    dataset.add_dynamic_item(pair_id)
    keys.append("pair_id")
    if audio:
        @sb.utils.data_pipeline.takes("id", "wav")
        @sb.utils.data_pipeline.provides("sig")
        def read_signal(utt: str, wav: str) -> torch.Tensor:
            def decode() -> torch.Tensor:
                signal, _ = load_audio(wav, hp["sample_rate"], utt=utt)
                return torch.from_numpy(np.ascontiguousarray(signal if signal.ndim == 1 else signal.mean(axis=1)))

            return crop_or_pad(cached(f"{utt}\t{wav}", decode), samples, generator)

        dataset.add_dynamic_item(read_signal)
        keys.append("sig")
    if tokenizer is not None:
        @sb.utils.data_pipeline.takes("texts" if unique_pictures else "text")
        @sb.utils.data_pipeline.provides("ids")
        def read_text(text: str) -> torch.Tensor:
            options = text.split("\t")
            pick = int(torch.randint(len(options), (1,), generator=generator)) if generator else 0
            return tokenizer(options[pick])

        dataset.add_dynamic_item(read_text)
        keys.append("ids")
    dataset.set_output_keys(keys + list(extra_keys))
    return dataset


# --- training ---------------------------------------------------------------------------------

class ContrastiveBrain(RecipeBrain):
    """One Brain for every contrastive training here: the model module computes its own loss.

    `modules.model` is BriVL (images, token ids), AudioImageMoCo or AudioImageCLIP (audio,
    lengths, images); the momentum updates and queue updates happen inside their forward.
    The learning rate rises linearly over the first `warmup_steps` updates (hparams `lr`,
    `warmup_steps`). The last epoch is kept (see train_contrastive).
    """

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        images, pair_ids = batch.image.data, batch.pair_id.data[:, 0]
        if hasattr(batch, "ids"):
            return self.modules.model(images, batch.ids.data, pair_ids)
        wavs, relative = batch.sig
        lengths = (relative * wavs.shape[1]).round().long()
        return self.modules.model(wavs, lengths, images, pair_ids)

    def compute_objectives(self, loss, batch, stage):
        return loss

    def fit_batch(self, batch):
        warmup = int(self.hparams.warmup_steps)
        scale = min(1.0, (self.optimizer_step + 1) / warmup) if warmup > 0 else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = float(self.hparams.lr) * scale
        return super().fit_batch(batch)


def train_contrastive(stage, system: str, model: torch.nn.Module, train, valid, epochs: int,
                      lr: float) -> torch.nn.Module:
    """Train `model` as exp/<tag>/<system>/ (the kit's layout; a killed training resumes, a
    changed config retrains) for its fixed number of epochs and keep the last one: at mini scale
    the validation pairs are stamps (pictures, words, sounds) never seen in training, so their
    loss measures transfer that ~60 training pictures cannot give, and choosing by it would keep
    the least-trained model; the validation loss is logged (loss_curve.png) all the same."""
    from speechlib.tasks.training import build_brain, fit, optimizer_from_config  # TensorBoard: not for user commands

    hp = stage.hparams
    optimizer = optimizer_from_config({"name": "AdamW", "lr": lr, "weight_decay": hp["weight_decay"]})
    brain = build_brain(ContrastiveBrain, stage, system, {"model": model}, optimizer=optimizer, epochs=epochs,
                        hparams={"lr": lr, "warmup_steps": hp["warmup_steps"]})
    # drop_last keeps every batch >= 2 pairs (in-batch losses) and the queue's FIFO order simple
    fit(brain, train, valid, train_loader_kwargs={"batch_size": hp["batch_size"], "shuffle": True, "drop_last": True},
        valid_loader_kwargs={"batch_size": hp["batch_size"]})
    return model.eval()


# --- model directories (speechlib.tasks.model_dir) ------------------------------------------------
# exp/<tag>/brivl/model            kind image_text:    image_tower, text_tower (+ tokenizer.model)
# exp/<tag>/<system>_seed<N>/model kind audio_encoder: audio, image_tower
# exp/<tag>/vqgan/model            kind vqgan:         vqgan
# exp/<tag>/model                  kind audio2image:   image_tower, vqgan, audio_<system> (the `seed`
#                                  seed of each system): what generate and retrieve load

BUILDERS = {"image_tower": build_image_tower, "text_tower": build_text_tower, "wavbrivl": WavBriVLEncoder,
            "wav2clip": Wav2CLIPEncoder, "vqgan": VQModel}
GENERATION_KEYS = ("image_size", "max_seconds", "latent_size", "gen_steps", "gen_lr", "gen_cutouts",
                   "gen_min_fraction", "gen_cut_size", "temperature", "max_text_len")


def tower_dir(exp_dir: str | Path) -> Path:
    return Path(exp_dir) / "brivl" / "model"


def audio_dir(exp_dir: str | Path, system: str, seed: int) -> Path:
    return Path(exp_dir) / f"{system}_seed{seed}" / "model"


def vqgan_dir(exp_dir: str | Path) -> Path:
    return Path(exp_dir) / "vqgan" / "model"


def user_dir(exp_dir: str | Path) -> Path:
    return Path(exp_dir) / "model"


def build(name: str, config: dict) -> torch.nn.Module:
    """A module of the recipe from its config values (`name`: a key of BUILDERS)."""
    return BUILDERS[name](**config)


def export(stage, path: Path, kind: str, system: str, modules: dict[str, tuple[str, torch.nn.Module]]) -> Path:
    """Write a model directory; `modules`: weight name -> (builder name, module). The builder's
    config values and the generation settings go into model.json."""
    from speechbrain.utils.distributed import ddp_barrier, if_main_process

    hp = stage.hparams
    configs = {name: {"builder": builder, "args": hp[builder]} for name, (builder, _) in modules.items()}
    if if_main_process():   # under DDP one process writes, the others wait for it
        save_model_dir(path, recipe=RECIPE, kind=kind, system=system, sample_rate=hp["sample_rate"],
                       modules={name: module for name, (_, module) in modules.items()}, configs=configs,
                       corpus=hp["corpus"], extra={key: hp[key] for key in GENERATION_KEYS})
    ddp_barrier()
    return path


def load(path: str | Path, kind: str | tuple[str, ...]) -> ModelDir:
    return load_model_dir(path, RECIPE, kind)


def load_module(model: ModelDir, name: str, frozen: bool = True) -> torch.nn.Module:
    """Weight `name` of a model directory built by its recorded builder (strict), eval mode."""
    if not model.has(name):
        raise InputError(f"{model.describe()} has no '{name}'", str(model.path))
    spec = model.config[name]
    module = model.build(name, lambda **_: build(spec["builder"], spec["args"]))
    if frozen:
        for param in module.parameters():
            param.requires_grad_(False)
    return module


# --- embeddings -------------------------------------------------------------------------------

@torch.no_grad()
def embed_pictures(tower: torch.nn.Module, paths: list[str], size: int, batch_size: int = 64) -> torch.Tensor:
    """L2-normalised tower embeddings of pictures (on the CPU, whatever the tower's device)."""
    tower.eval()
    device = next(tower.parameters()).device
    out = []
    for start in range(0, len(paths), batch_size):
        pictures = torch.stack([picture_tensor(p, size) for p in paths[start:start + batch_size]])
        out.append(F.normalize(tower(pictures.to(device)), dim=-1).cpu())
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def embed_sounds(model: torch.nn.Module, signals: list[torch.Tensor], batch_size: int = 16) -> torch.Tensor:
    """L2-normalised audio embeddings of a list of 1-D signals, in input order. Only signals of equal
    length share a batch (nothing is zero-padded), so each equals the signal's embedding alone."""
    model.eval()
    out: list[torch.Tensor | None] = [None] * len(signals)
    for chunk in equal_length_batches([s.shape[0] for s in signals], batch_size):
        for index, row in zip(chunk, model.embed_audio(torch.stack([signals[i] for i in chunk]))):
            out[index] = row
    return torch.stack(out) if out else torch.empty(0)  # type: ignore[arg-type]


def load_signal(spec: str, sample_rate: int, max_seconds: float, name: str | None = None) -> torch.Tensor:
    """The first max_seconds of a recording (a file or a wav.scp entry, pipes included) at
    `sample_rate`, mono (channels averaged)."""
    from speechlib.io.audio import load_audio

    signal, _ = load_audio(spec, sample_rate, utt=name, on_rate_mismatch="resample")
    signal = signal if signal.ndim == 1 else signal.mean(axis=1)
    return torch.from_numpy(np.ascontiguousarray(signal[: int(max_seconds * sample_rate)]))


def read_signals(wavs: list[str], hp: dict, names: list[str] | None = None) -> list[torch.Tensor]:
    """First max_seconds of each file at the recipe's rate, mono."""
    return [load_signal(wav, hp["sample_rate"], hp["max_seconds"], names[i] if names else None)
            for i, wav in enumerate(wavs)]


# --- statistics -------------------------------------------------------------------------------

def bootstrap_ci(values: np.ndarray, statistic=np.mean, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(estimate, low, high): percentile bootstrap over the rows of `values`."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n_boot, len(values)))
    stats = np.array([statistic(values[d]) for d in draws])
    alpha = (1 - level) / 2
    return float(statistic(values)), float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def t_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval over independent runs (seeds)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def fmt_ci(estimate: float, low: float, high: float, scale: float = 100.0, decimals: int = 1) -> str:
    return f"{estimate * scale:.{decimals}f} [{low * scale:.{decimals}f}, {high * scale:.{decimals}f}]"
