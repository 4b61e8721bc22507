"""A BriVL-like image-text model: two towers, momentum encoders, two negative queues, T = 0.07.

The module and key names follow BriVL's released code (BAAI-WuDao/BriVL, models/vl_model.py),
so a real BriVL checkpoint's image tower loads into :class:`ImageEncoder` with strict=True:

    checkpoint['learnable'] = {
      'imgencoder.backbone.*'                      (timm EfficientNet at paper scale)
      'imgencoder.learnable.imgAtt.layers.N.*'     (nn.TransformerEncoder, 4 layers, 4 heads)
      'imgencoder.learnable.imgFC.fc1|fc2.*'       (Linear-ReLU-Linear to the joint space)
      'imgencoder.learnable.max_pool.0.*'          (1x1 conv before the grid average pool)
      'imgencoder_mom.*', 'textencoder.*', 'textencoder_mom.*'}
    buffers: img_queue, text_queue (dim x K), img_queue_ptr, text_queue_ptr

The image tower pools the backbone's feature map over boxes (the whole picture plus a
box_grid x box_grid grid, BriVL's MAX_IMG_LEN = 1 + BOX_GRID^2), each box sampled to a
grid_size x grid_size patch, 1x1-convolved and averaged; the box features go through the
self-attention block, are mean-pooled and projected by the 2-layer MLP.
At mini scale the backbone is a small CNN (:class:`SmallConvBackbone`) and the text backbone a
token + position embedding (a stand-in for BriVL's RoBERTa), both trained here.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from speechlib.nn.pretrained import load_strict, read_checkpoint, sub_state


class FakeTransformer(nn.Module):
    """BriVL's name for its 2-layer MLP (Linear-ReLU-Linear); the name keeps the key layout."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x)))


def self_attention_block(dim: int, heads: int, layers: int, dropout: float = 0.1) -> nn.TransformerEncoder:
    """BriVL's SA block: post-norm Transformer encoder layers (S' = LN(S + MHA(S)), S = LN(S' + FFN(S')))."""
    layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=4 * dim, dropout=dropout,
                                       batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


class SmallConvBackbone(nn.Module):
    """Mini-scale stand-in for EfficientNet: strided conv-BN-ReLU stages, `forward_features` as timm."""

    def __init__(self, channels: list[int], in_channels: int = 3):
        super().__init__()
        blocks, previous = [], in_channels
        for width in channels:
            blocks += [nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1, bias=False),
                       nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.num_features = previous

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(images)


def image_backbone(kind: str, channels: list[int], timm_name: str) -> nn.Module:
    """The image tower's backbone: `small` (mini scale, :class:`SmallConvBackbone` of `channels`)
    or `timm` (BriVL's, e.g. `tf_efficientnet_b5_ns`, which has `forward_features` and
    `num_features`, its keys directly under `backbone.`; timm is optional)."""
    if kind == "small":
        return SmallConvBackbone(channels)
    if kind != "timm":
        raise ValueError(f"image backbone kind '{kind}': small or timm")
    try:
        import timm
    except ImportError:
        raise ImportError("the paper-scale image tower needs timm (pip install timm)") from None
    return timm.create_model(timm_name, pretrained=False)


def grid_boxes(box_grid: int) -> torch.Tensor:
    """(1 + box_grid^2, 4) boxes (x1, y1, x2, y2) as fractions: the whole picture, then the grid."""
    boxes = [(0.0, 0.0, 1.0, 1.0)]
    step = 1.0 / box_grid
    boxes += [(col * step, row * step, (col + 1) * step, (row + 1) * step)
              for row in range(box_grid) for col in range(box_grid)]
    return torch.tensor(boxes)


class ImageEncoder(nn.Module):
    """BriVL's ImgLearnableEncoder: backbone -> box pooling -> SA block -> mean -> MLP."""

    def __init__(self, backbone: nn.Module, feature_dim: int, embed_dim: int, heads: int = 4, layers: int = 4,
                 grid_size: int = 4, box_grid: int = 6, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.grid_size = grid_size
        self.learnable = nn.ModuleDict()
        self.learnable["imgFC"] = FakeTransformer(feature_dim, feature_dim, embed_dim)
        self.learnable["imgAtt"] = self_attention_block(feature_dim, heads, layers, dropout)
        self.learnable["max_pool"] = nn.Sequential(nn.Conv2d(backbone.num_features, feature_dim, kernel_size=1),
                                                   nn.AvgPool2d(grid_size, stride=1))
        self.register_buffer("boxes", grid_boxes(box_grid), persistent=False)

    def box_features(self, feature_map: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N boxes, C): every box bilinearly sampled to grid x grid at once
        (the boxes are stacked along the sampled height, one grid_sample call for the batch)."""
        batch, channels = feature_map.shape[:2]
        g, boxes = self.grid_size, self.boxes
        steps = (torch.arange(g, device=boxes.device, dtype=feature_map.dtype) + 0.5) / g
        xs = boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps          # (N, g)
        ys = boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps          # (N, g)
        grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)  # (N, g, g, 2)
        grid = (2 * grid - 1).reshape(1, -1, g, 2).expand(batch, -1, -1, -1)
        sampled = F.grid_sample(feature_map, grid.to(feature_map.dtype), align_corners=False)  # (B, C, N*g, g)
        sampled = sampled.reshape(batch, channels, -1, g, g).transpose(1, 2).reshape(-1, channels, g, g)
        pooled = self.learnable["max_pool"](sampled)                          # (B*N, C', 1, 1)
        return pooled.reshape(batch, -1, pooled.shape[1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = F.normalize(self.box_features(self.backbone.forward_features(images)), dim=-1)
        features = self.learnable["imgAtt"](features).mean(dim=1)
        return self.learnable["imgFC"](features)


def build_image_tower(backbone: str, channels: list[int], timm_name: str, feature_dim: int, embed_dim: int,
                      heads: int = 4, layers: int = 4, grid_size: int = 4, box_grid: int = 6) -> ImageEncoder:
    """BriVL's image tower from config values (the recipe's `image_tower` block, also what a
    model directory records): `backbone` small (mini) or timm (BriVL's EfficientNet)."""
    return ImageEncoder(image_backbone(backbone, channels, timm_name), feature_dim, embed_dim, heads, layers,
                        grid_size, box_grid)


class TextBackbone(nn.Module):
    """Token + position embeddings with LayerNorm: the mini stand-in for BriVL's RoBERTa."""

    def __init__(self, vocab_size: int, dim: int, max_len: int):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.norm(self.tokens(ids) + self.positions(positions))


class TextEncoder(nn.Module):
    """BriVL's TextLearnableEncoder: backbone -> SA block (padding masked) -> masked mean -> MLP."""

    def __init__(self, backbone: nn.Module, feature_dim: int, embed_dim: int, heads: int = 4, layers: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.learnable = nn.ModuleDict()
        self.learnable["textFC"] = FakeTransformer(feature_dim, embed_dim, embed_dim)
        self.learnable["textAtt"] = self_attention_block(feature_dim, heads, layers, dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).to(torch.float32)
        features = F.normalize(self.backbone(ids), dim=-1)
        features = self.learnable["textAtt"](features, src_key_padding_mask=mask == 0)
        pooled = (features * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.learnable["textFC"](pooled)


# --- MoCo machinery -----------------------------------------------------------------------

@torch.no_grad()
def momentum_update(online: nn.Module, momentum_copy: nn.Module, m: float) -> None:
    """k = m k + (1 - m) q for every parameter (BriVL's _momentum_update_key_encoder)."""
    for param_q, param_k in zip(online.parameters(), momentum_copy.parameters()):
        param_k.mul_(m).add_(param_q.detach(), alpha=1.0 - m)


def momentum_copy_of(module: nn.Module) -> nn.Module:
    """A frozen deep copy that only momentum_update changes."""
    copy_ = copy.deepcopy(module)
    for param in copy_.parameters():
        param.requires_grad_(False)
    return copy_


@torch.no_grad()
def gather_all(x: torch.Tensor) -> torch.Tensor:
    """Keys of every DDP process (concatenated in rank order); x itself outside DDP."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return x
    parts = [torch.empty_like(x) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, x.contiguous())
    return torch.cat(parts)


@torch.no_grad()
def enqueue(queue: torch.Tensor, pointer: torch.Tensor, keys: torch.Tensor, queue_ids: torch.Tensor | None = None,
            ids: torch.Tensor | None = None) -> None:
    """Replace the oldest columns of the (dim, K) queue by `keys` (B, dim), FIFO, wrapping round;
    `queue_ids` (K,) records which picture/clip each key came from."""
    size = queue.shape[1]
    keys = keys[-size:]
    start = int(pointer)
    columns = (start + torch.arange(keys.shape[0], device=queue.device)) % size
    queue[:, columns] = keys.T.to(queue.dtype)
    if queue_ids is not None and ids is not None:
        queue_ids[columns] = ids[-size:].to(queue_ids.dtype)
    pointer[0] = (start + keys.shape[0]) % size


def queue_contrastive_loss(query: torch.Tensor, positive: torch.Tensor, queue: torch.Tensor,
                           temperature: float, query_ids: torch.Tensor | None = None,
                           queue_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of [q.k+, q.queue] / T with the positive first (MoCo / BriVL's NCE).

    query, positive: (B, d), L2-normalised; queue: (d, K) of normalised negatives. With ids,
    queue entries from the query's own picture/clip are left out: with BriVL's 9600 keys over
    millions of pairs they are rare, but at mini scale (a few hundred pairs, several sounds per
    picture) most queries would otherwise meet their own picture among the "negatives"."""
    positive_logit = (query * positive).sum(dim=-1, keepdim=True)
    negatives = query @ queue
    if query_ids is not None and queue_ids is not None:
        negatives = negatives.masked_fill(query_ids[:, None] == queue_ids[None, :], float("-inf"))
    logits = torch.cat([positive_logit, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(query.shape[0], dtype=torch.long, device=query.device))


def new_queue(dim: int, size: int) -> torch.Tensor:
    return F.normalize(torch.randn(dim, size), dim=0)


class BriVL(nn.Module):
    """Image-text pre-training with BriVL's algorithm (both towers trained, momentum copies, queues)."""

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, embed_dim: int,
                 queue_size: int = 9600, momentum: float = 0.99, temperature: float = 0.07):
        super().__init__()
        self.learnable = nn.ModuleDict()
        self.learnable["imgencoder"] = image_encoder
        self.learnable["imgencoder_mom"] = momentum_copy_of(image_encoder)
        self.learnable["textencoder"] = text_encoder
        self.learnable["textencoder_mom"] = momentum_copy_of(text_encoder)
        self.m, self.T = momentum, temperature
        self.register_buffer("img_queue", new_queue(embed_dim, queue_size))
        self.register_buffer("img_queue_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("text_queue", new_queue(embed_dim, queue_size))
        self.register_buffer("text_queue_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("queue_ids", torch.full((queue_size,), -1, dtype=torch.long))

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.learnable["imgencoder"](images), dim=-1)

    def embed_texts(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.learnable["textencoder"](ids), dim=-1)

    def forward(self, images: torch.Tensor, ids: torch.Tensor, pair_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss (i2t + t2i); updates the momentum encoders and queues when training.
        `pair_ids` (B,) name each picture, so a picture is never its own negative."""
        img_q, txt_q = self.embed_images(images), self.embed_texts(ids)
        with torch.no_grad():
            if self.training:
                momentum_update(self.learnable["imgencoder"], self.learnable["imgencoder_mom"], self.m)
                momentum_update(self.learnable["textencoder"], self.learnable["textencoder_mom"], self.m)
            img_k = F.normalize(self.learnable["imgencoder_mom"](images), dim=-1)
            txt_k = F.normalize(self.learnable["textencoder_mom"](ids), dim=-1)
        queue_ids = self.queue_ids.clone()
        loss = (queue_contrastive_loss(img_q, txt_k, self.text_queue.clone().detach(), self.T, pair_ids, queue_ids)
                + queue_contrastive_loss(txt_q, img_k, self.img_queue.clone().detach(), self.T, pair_ids, queue_ids))
        if self.training:
            gathered = gather_all(pair_ids) if pair_ids is not None else None
            enqueue(self.img_queue, self.img_queue_ptr, gather_all(img_k))
            enqueue(self.text_queue, self.text_queue_ptr, gather_all(txt_k), self.queue_ids, gathered)
        return loss


def load_brivl_image_tower(encoder: ImageEncoder, path: str) -> ImageEncoder:
    """BriVL's image tower from a local checkpoint (`{'learnable': {...}}`), strict=True."""
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("learnable", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    load_strict(encoder, sub_state(state, "imgencoder."), path, "BriVL image tower")
    return encoder


def freeze(module: nn.Module) -> nn.Module:
    """No gradients, eval mode (BatchNorm statistics and dropout fixed)."""
    for param in module.parameters():
        param.requires_grad_(False)
    return module.eval()


def build_text_tower(vocab_size: int, max_len: int, feature_dim: int, embed_dim: int, heads: int = 4,
                     layers: int = 4) -> TextEncoder:
    """BriVL's text tower from config values; the backbone is the mini stand-in for RoBERTa."""
    return TextEncoder(TextBackbone(vocab_size, feature_dim, max_len), feature_dim, embed_dim, heads, layers)
