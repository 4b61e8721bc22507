"""Audio towers aligned to a frozen image tower: WavBriVL (WavLM + MoCo queues) and Wav2CLIP.

WavBriVL (Fang et al.): transformers' WavLM, a learnable softmax-weighted sum of all its layer
outputs (embedding output included), a self-attention block of 4 Transformer layers, mean
pooling and a 2-layer MLP into the image tower's joint space. Trained by :class:`AudioImageMoCo`
with BriVL's cross-modal loss over two queues, in the paper's cross-projection form
CXLoss = L(f(Image), Audio) + L(Image, g(Audio)):

    a2i: query = g(audio) (the online audio tower), positive = the clip's image embedding
         (frozen tower), negatives = the image queue
    i2a: query = f(image) (a trainable 2-layer MLP on the frozen image embedding), positive =
         the momentum audio encoder's key, negatives = the audio queue of momentum keys

As in BriVL/MoCo every key (positive or queued) of a direction comes from the same encoder; the
image tower stays frozen, so the i2a direction trains through f and, via the momentum keys'
targets, shapes what the audio queue holds. Retrieval and generation use g(audio) only.

Wav2CLIP (Wu et al.): ResNet-18 over log-mel spectrograms, projected to the joint space, with
CLIP's symmetric in-batch loss (learnable temperature initialised at 0.07).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from speechlib.io.errors import InputError
from speechlib.nn.brivl import (FakeTransformer, enqueue, freeze, gather_all, momentum_copy_of, momentum_update,
                               new_queue, queue_contrastive_loss, self_attention_block)
from speechlib.nn.pretrained import load_strict, read_checkpoint, sub_state


def _wavlm_config(config: dict):
    from transformers import WavLMConfig

    return WavLMConfig(**config)


class WavBriVLEncoder(nn.Module):
    """WavLM -> softmax layer weights -> SA block (4 layers) -> masked mean -> 2-layer MLP."""

    def __init__(self, wavlm: dict, embed_dim: int, sa_layers: int = 4, sa_heads: int = 4,
                 freeze_backbone: bool = False, dropout: float = 0.1):
        super().__init__()
        from transformers import WavLMModel

        self.backbone = WavLMModel(_wavlm_config(wavlm))
        cfg = self.backbone.config
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            freeze(self.backbone)
        self.layer_logits = nn.Parameter(torch.zeros(cfg.num_hidden_layers + 1))
        self.attention = self_attention_block(cfg.hidden_size, sa_heads, sa_layers, dropout)
        self.mlp = FakeTransformer(cfg.hidden_size, cfg.hidden_size, embed_dim)
        self.receptive_field = self._receptive_field(cfg)

    @staticmethod
    def _receptive_field(cfg) -> int:
        field = 1
        for kernel, stride in zip(reversed(cfg.conv_kernel), reversed(cfg.conv_stride)):
            field = (field - 1) * stride + kernel
        return field

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def layer_weights(self) -> torch.Tensor:
        return torch.softmax(self.layer_logits, dim=0)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """wavs (B, samples); lengths as samples (None: all full). Shorter than the receptive
        field is padded with zeros up to it (one WavLM frame)."""
        if wavs.shape[1] < self.receptive_field:
            wavs = F.pad(wavs, (0, self.receptive_field - wavs.shape[1]))
        if lengths is None:
            lengths = torch.full((wavs.shape[0],), wavs.shape[1], device=wavs.device)
        lengths = lengths.clamp(min=self.receptive_field)
        mask = (torch.arange(wavs.shape[1], device=wavs.device)[None] < lengths[:, None]).long()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            hidden = self.backbone(wavs, attention_mask=mask, output_hidden_states=True).hidden_states
        stacked = torch.stack(hidden, dim=0)                                   # (L+1, B, T, H)
        mixed = (self.layer_weights()[:, None, None, None] * stacked).sum(0)   # (B, T, H)
        frames = self.backbone._get_feat_extract_output_lengths(lengths).clamp(min=1, max=mixed.shape[1])
        valid = torch.arange(mixed.shape[1], device=wavs.device)[None] < frames[:, None]
        mixed = self.attention(mixed, src_key_padding_mask=~valid)
        pooled = (mixed * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True)
        return self.mlp(pooled)


def load_wavlm(encoder: WavBriVLEncoder, directory: str) -> WavBriVLEncoder:
    """Pretrained WavLM from a local transformers directory (config.json + pytorch_model.bin or
    model.safetensors), strict=True; a `wavlm.` prefix (WavLMFor* checkpoints) is stripped and
    task heads dropped."""
    path = Path(directory)
    weights = next((path / name for name in ("model.safetensors", "pytorch_model.bin") if (path / name).is_file()),
                   None)
    if weights is None:
        raise InputError("no model.safetensors or pytorch_model.bin in the WavLM directory", str(path))
    state = read_checkpoint(weights)
    if any(key.startswith("wavlm.") for key in state):
        state = sub_state(state, "wavlm.")
    load_strict(encoder.backbone, state, str(weights), "WavLM backbone")
    return encoder


def wavlm_config_from(directory: str) -> dict:
    """The architecture of a local pretrained WavLM (its config.json), for the config to build."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise InputError("WavLM directory has no config.json", str(path))
    return json.loads(path.read_text())


class AudioImageMoCo(nn.Module):
    """WavBriVL training: audio encoder + momentum copy, frozen image tower, two queues."""

    def __init__(self, audio_encoder: nn.Module, image_tower: nn.Module, embed_dim: int,
                 queue_size: int = 9600, momentum: float = 0.99, temperature: float = 0.07):
        super().__init__()
        self.audio = audio_encoder
        self.audio_mom = momentum_copy_of(audio_encoder)
        self.image = freeze(image_tower)
        self.image_projection = FakeTransformer(embed_dim, embed_dim, embed_dim)   # f
        self.m, self.T = momentum, temperature
        self.register_buffer("img_queue", new_queue(embed_dim, queue_size))
        self.register_buffer("img_queue_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("audio_queue", new_queue(embed_dim, queue_size))
        self.register_buffer("audio_queue_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("queue_ids", torch.full((queue_size,), -1, dtype=torch.long))

    def train(self, mode: bool = True):
        super().train(mode)
        self.image.eval()   # frozen: BatchNorm statistics and dropout never change
        return self

    def embed_audio(self, wavs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.audio(wavs, lengths), dim=-1)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor, images: torch.Tensor,
                pair_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Both directions' loss; `pair_ids` (B,) name each clip's picture, so that the queues'
        keys of the same picture (its other sounds) are not counted as negatives."""
        audio_q = self.embed_audio(wavs, lengths)
        with torch.no_grad():
            image = F.normalize(self.image(images), dim=-1)
            if self.training:
                momentum_update(self.audio, self.audio_mom, self.m)
            audio_k = F.normalize(self.audio_mom(wavs, lengths), dim=-1)
        image_q = F.normalize(self.image_projection(image), dim=-1)
        queue_ids = self.queue_ids.clone()
        loss = (queue_contrastive_loss(audio_q, image, self.img_queue.clone().detach(), self.T, pair_ids, queue_ids)
                + queue_contrastive_loss(image_q, audio_k, self.audio_queue.clone().detach(), self.T, pair_ids,
                                         queue_ids))
        if self.training:
            gathered = gather_all(pair_ids) if pair_ids is not None else None
            enqueue(self.img_queue, self.img_queue_ptr, gather_all(image))
            enqueue(self.audio_queue, self.audio_queue_ptr, gather_all(audio_k), self.queue_ids, gathered)
        return loss


# --- Wav2CLIP -------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.downsample = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """ResNet-18 (He et al.): 7x7 stem, 4 stages of 2 basic blocks, global average pool.
    `width` is the first stage's channels (64 in the original)."""

    def __init__(self, in_channels: int = 1, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, previous = [], width
        for index, channels in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(BasicBlock(previous, channels, stride), BasicBlock(channels, channels, 1)))
            previous = channels
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class Wav2CLIPEncoder(nn.Module):
    """log-mel (dB) -> ResNet-18 -> Linear-ReLU-Linear projection to the joint space."""

    def __init__(self, embed_dim: int, sample_rate: int = 16000, n_mels: int = 64, width: int = 64,
                 n_fft: int = 1024, hop_length: int = 160):
        super().__init__()
        import torchaudio

        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=hop_length,
                                                        n_mels=n_mels)
        self.resnet = ResNet18(1, width)
        self.projection = FakeTransformer(self.resnet.num_features, self.resnet.num_features, embed_dim)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        spec = torch.log10(self.mel(wavs) + 1e-6).unsqueeze(1)   # (B, 1, mels, frames)
        return self.projection(self.resnet(spec))


def clip_loss(audio: torch.Tensor, image: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric in-batch cross-entropy; audio, image (B, d) L2-normalised."""
    logits = logit_scale.exp() * audio @ image.T
    target = torch.arange(audio.shape[0], device=audio.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class AudioImageCLIP(nn.Module):
    """Wav2CLIP training against the same frozen image tower."""

    def __init__(self, audio_encoder: nn.Module, image_tower: nn.Module, temperature: float = 0.07):
        super().__init__()
        self.audio = audio_encoder
        self.image = freeze(image_tower)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def train(self, mode: bool = True):
        super().train(mode)
        self.image.eval()
        return self

    def embed_audio(self, wavs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.audio(wavs, lengths), dim=-1)

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor, images: torch.Tensor,
                pair_ids: torch.Tensor | None = None) -> torch.Tensor:
        """CLIP's in-batch loss (pair_ids unused: the batch sampler's duplicates are rare)."""
        with torch.no_grad():
            image = F.normalize(self.image(images), dim=-1)
        return clip_loss(self.embed_audio(wavs, lengths), image, self.logit_scale.clamp(max=math.log(100.0)))
