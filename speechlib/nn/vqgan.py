"""A VQGAN with taming-transformers' module layout, its patch discriminator, and generation by
latent optimisation (Wav2CLIP's loop) guided by an embedding in a frozen image tower's space.

Key layout (taming/models/vqgan.py VQModel, checkpoint `{'state_dict': {...}}`):
    encoder.conv_in, encoder.down.{i}.block.{j}.{norm1,conv1,norm2,conv2,nin_shortcut},
    encoder.down.{i}.attn.{j}.{norm,q,k,v,proj_out}, encoder.down.{i}.downsample.conv,
    encoder.mid.{block_1,attn_1,block_2}, encoder.norm_out, encoder.conv_out,
    decoder.conv_in, decoder.mid.*, decoder.up.{i}.{block,attn,upsample.conv}, decoder.norm_out,
    decoder.conv_out, quantize.embedding.weight, quant_conv, post_quant_conv,
    loss.discriminator.main.* (and loss.perceptual_loss.* : LPIPS, not needed for generation)
so a real checkpoint (e.g. vqgan_imagenet_f16_16384) loads with strict=True when the config
gives its ddconfig (ch 128, ch_mult [1,1,2,2,4], num_res_blocks 2, attn_resolutions [16],
z_channels 256, n_embed 16384, embed_dim 256).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from speechlib.nn.pretrained import load_strict, read_checkpoint, sub_state


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=min(32, channels), num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        batch, channels, height, width = h.shape
        q, k, v = (conv(h).reshape(batch, channels, -1) for conv in (self.q, self.k, self.v))
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(channels), dim=-1)   # (B, HW, HW)
        out = (v @ weights.transpose(1, 2)).reshape(batch, channels, height, width)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _level(blocks: list[nn.Module], attns: list[nn.Module]) -> nn.Module:
    level = nn.Module()
    level.block, level.attn = nn.ModuleList(blocks), nn.ModuleList(attns)
    return level


def _run_level(level: nn.Module, h: torch.Tensor, resample: str) -> torch.Tensor:
    """One resolution level: its blocks (each followed by its attention, if any), then the
    level's `downsample`/`upsample` when it has one."""
    for index, block in enumerate(level.block):
        h = block(h)
        if len(level.attn) > 0:
            h = level.attn[index](h)
    return getattr(level, resample)(h) if hasattr(level, resample) else h


def _mid(channels: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1, mid.attn_1, mid.block_2 = ResnetBlock(channels, channels), AttnBlock(channels), \
        ResnetBlock(channels, channels)
    return mid


class Encoder(nn.Module):
    def __init__(self, ch: int, ch_mult: list[int], num_res_blocks: int, attn_resolutions: list[int],
                 in_channels: int, resolution: int, z_channels: int, **_):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        self.down = nn.ModuleList()
        current, block_in = resolution, ch
        for index in range(len(ch_mult)):
            block_out = ch * ch_mult[index]
            blocks, attns = [], []
            for _ in range(num_res_blocks):
                blocks.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if current in attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = _level(blocks, attns)
            if index != len(ch_mult) - 1:
                level.downsample = Downsample(block_in)
                current //= 2
            self.down.append(level)
        self.mid = _mid(block_in)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, z_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = _run_level(level, h, "downsample")
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, ch: int, out_ch: int, ch_mult: list[int], num_res_blocks: int, attn_resolutions: list[int],
                 resolution: int, z_channels: int, **_):
        super().__init__()
        block_in = ch * ch_mult[-1]
        current = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, 1, 1)
        self.mid = _mid(block_in)
        levels: list[nn.Module] = []
        for index in reversed(range(len(ch_mult))):
            block_out = ch * ch_mult[index]
            blocks, attns = [], []
            for _ in range(num_res_blocks + 1):
                blocks.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if current in attn_resolutions:
                    attns.append(AttnBlock(block_in))
            level = _level(blocks, attns)
            if index != 0:
                level.upsample = Upsample(block_in)
                current *= 2
            levels.insert(0, level)   # taming indexes up[] by resolution level, lowest first
        self.up = nn.ModuleList(levels)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for level in reversed(self.up):
            h = _run_level(level, h, "upsample")
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest codebook entry, straight-through gradient, VQ-VAE's codebook + beta commitment loss."""

    def __init__(self, n_embed: int, embed_dim: int, beta: float = 0.25):
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)
        self.embedding.weight.data.uniform_(-1.0 / n_embed, 1.0 / n_embed)
        self.beta = beta

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        distance = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embedding.weight.T
                    + self.embedding.weight.pow(2).sum(1)[None])
        return distance.argmin(dim=1).reshape(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return self.embedding(indices).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quantised = self.lookup(self.indices(z))
        loss = F.mse_loss(quantised, z.detach()) + self.beta * F.mse_loss(quantised.detach(), z)
        return z + (quantised - z).detach(), loss


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator (taming's `loss.discriminator.main`): one logit per patch."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for index in range(1, n_layers + 1):
            previous, mult = mult, min(2 ** index, 8)
            stride = 2 if index < n_layers else 1
            layers += [nn.Conv2d(ndf * previous, ndf * mult, 4, stride, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class VQLoss(nn.Module):
    """Holds the discriminator under `loss.` as taming does (LPIPS is not used: no weights here)."""

    def __init__(self, discriminator: NLayerDiscriminator):
        super().__init__()
        self.discriminator = discriminator


class VQModel(nn.Module):
    """encoder -> quant_conv -> quantize -> post_quant_conv -> decoder; images in [-1, 1]."""

    def __init__(self, ddconfig: dict, n_embed: int, embed_dim: int, disc_channels: int = 64, disc_layers: int = 3):
        super().__init__()
        self.encoder = Encoder(**ddconfig)
        self.decoder = Decoder(**ddconfig)
        self.quantize = VectorQuantizer(n_embed, embed_dim)
        self.quant_conv = nn.Conv2d(ddconfig["z_channels"], embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)
        self.loss = VQLoss(NLayerDiscriminator(ddconfig.get("out_ch", 3), disc_channels, disc_layers))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.quantize(self.quant_conv(self.encoder(x)))

    def decode(self, quantised: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantised))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quantised, codebook_loss = self.encode(x)
        return self.decode(quantised), codebook_loss


def load_taming_vqgan(model: VQModel, path: str) -> VQModel:
    """A taming-transformers VQGAN checkpoint (`{'state_dict': ...}`), strict=True; LPIPS weights
    (`loss.perceptual_loss.*`) are dropped, the discriminator loaded if present."""
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    state = {key: value for key, value in state.items() if not key.startswith("loss.perceptual_loss.")}
    if not any(key.startswith("loss.discriminator.") for key in state):
        state.update({f"loss.{k}": v for k, v in model.loss.state_dict().items()})
    load_strict(model, sub_state(state, ""), path, "VQGAN")
    return model


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


# --- generation -----------------------------------------------------------------------------

def spherical_distance_sq(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Wav2CLIP / VQGAN-CLIP's squared spherical distance between directions,
    2 arcsin(|x^ - y^| / 2)^2 (half the squared angle between them), elementwise over the batch."""
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    return (x - y).norm(dim=-1).div(2).clamp(max=1.0).arcsin().pow(2).mul(2)


def make_cutouts(images: torch.Tensor, cutouts: int, size: int, min_fraction: float,
                 generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
    """(B, 3, H, W) -> (B * cutouts, 3, size, size): random square crops (side between
    min_fraction and 1 of the picture, random position), random horizontal flips and a little
    noise, all in one grid_sample call (no Python loop over cutouts). With one generator per
    picture, a picture's crops do not depend on the other pictures of the batch."""
    batch, device = images.shape[0], images.device
    n = batch * cutouts
    per_picture = isinstance(generator, (list, tuple))
    if per_picture and len(generator) != batch:
        raise ValueError(f"make_cutouts: {len(generator)} generators for {batch} pictures")
    shape = (cutouts, images.shape[1], size, size)

    def draw(sampler, *dims):
        if per_picture:
            return torch.cat([sampler(*dims, generator=g, device="cpu") for g in generator]).to(device)
        return sampler(batch * dims[0], *dims[1:], generator=generator, device="cpu").to(device)

    rand = draw(torch.rand, cutouts, 4)
    scale = min_fraction + (1 - min_fraction) * rand[:, 0]
    shift_x, shift_y = (2 * rand[:, 1] - 1) * (1 - scale), (2 * rand[:, 2] - 1) * (1 - scale)
    flip = torch.where(rand[:, 3] < 0.5, -1.0, 1.0).to(device)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = scale * flip, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = scale, shift_y
    grid = F.affine_grid(theta, [n, images.shape[1], size, size], align_corners=False)
    source = images.repeat_interleave(cutouts, dim=0)
    crops = F.grid_sample(source, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return crops + 0.02 * draw(torch.randn, *shape)


def generate_images(vqgan: VQModel, image_tower: nn.Module, targets: torch.Tensor, steps: int, lr: float,
                    cutouts: int, cut_size: int, latent_size: int, min_fraction: float = 0.5,
                    to_tower=None, seed: int = 0, on_step: Callable[[], None] | None = None
                    ) -> tuple[torch.Tensor, list[float]]:
    """Optimise VQGAN latents (Adam) so that the tower's embedding of the decoded picture's
    cutouts matches `targets` (B, d) in squared spherical distance; every target at once.

    The latent starts from random codebook entries; each step it is quantised with a straight-
    through gradient (as VQGAN-CLIP does) and decoded. `to_tower` maps decoder output in [-1, 1]
    to the tower's input; `on_step` is called after every step (a user command's progress line).
    Returns the pictures in [0, 1], (B, 3, H, W), and the mean loss per step.

    A picture does not depend on the other targets of its batch: each target has its own random
    stream seeded with `seed` (start latent, cutouts), and the objective is the sum of the
    per-target losses, so each latent gets the gradient it would get alone (the decoder and the
    tower must be in eval mode, as the callers set them).
    """
    batch = targets.shape[0]
    generators = [torch.Generator().manual_seed(seed) for _ in range(batch)]
    codebook = vqgan.quantize.embedding.weight
    start = torch.cat([torch.randint(codebook.shape[0], (1, latent_size, latent_size), generator=g) for g in generators])
    latent = vqgan.quantize.lookup(start.to(codebook.device)).detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=lr)
    targets = targets.detach().repeat_interleave(cutouts, dim=0)
    to_tower = to_tower or (lambda x: x)
    losses = []
    for _ in range(steps):
        quantised = latent + (vqgan.quantize.lookup(vqgan.quantize.indices(latent)) - latent).detach()
        pictures = vqgan.decode(quantised).clamp(-1, 1)
        crops = make_cutouts(pictures, cutouts, cut_size, min_fraction, generators)
        per_target = spherical_distance_sq(image_tower(to_tower(crops)), targets).view(batch, cutouts).mean(1)
        optimiser.zero_grad(set_to_none=True)
        per_target.sum().backward()
        optimiser.step()
        losses.append(per_target.mean().item())
        if on_step is not None:
            on_step()
    with torch.no_grad():
        quantised = vqgan.quantize.lookup(vqgan.quantize.indices(latent))
        pictures = (vqgan.decode(quantised).clamp(-1, 1) + 1) / 2
    return pictures, losses
