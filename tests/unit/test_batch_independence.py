"""Issue 17 item 9 for every batched inference path of the recipes: an utterance's output alone
equals its output in a batch of mixed lengths, to 1e-5 relative (the front end's own rule is
tested in test_inference_frontend.py). Tiny random-weight models: the property does not depend
on trained values, and zero padding (the old batching) breaks it for each of these networks."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

RATE = 16000
SECONDS = (0.45, 1.3, 0.45, 0.8, 2.1)  # two of equal length: they may share a batch


def signals() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = [np.arange(int(s * RATE)) / RATE for s in SECONDS]
    return [(0.3 * np.sin(2 * np.pi * (150 + 40 * i) * x) + 0.05 * rng.standard_normal(x.size)).astype(np.float32)
            for i, x in enumerate(t)]


def assert_independent(embed, items: list) -> None:
    """`embed(list) -> list of arrays`: each item's result alone vs within the whole list."""
    together = embed(items)
    assert len(together) == len(items)
    for item, joint in zip(items, together):
        alone = np.asarray(embed([item])[0], np.float64)
        joint = np.asarray(joint, np.float64)
        assert alone.shape == joint.shape
        assert np.linalg.norm(alone - joint) <= 1e-5 * np.linalg.norm(alone)


def test_se_uda_scoring_enhancement():
    """speechlib.tasks.se_uda.enhancer.enhance: the scoring stage (score.py), report examples and
    se_uda.enhance; every estimate is as long as its input."""
    from speechlib.nn.unet import SpeechNoiseUNet
    from speechlib.tasks.se_uda.enhancer import enhance

    torch.manual_seed(0)
    unet = SpeechNoiseUNet((4, 8), n_fft=256, hop_length=128, rnn_hidden=8)
    with torch.no_grad():  # off the pass-through start (zero head: x / 2 whatever the batch)
        for parameter in unet.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    items = signals()
    assert [len(e) for e in enhance(unet, items, batch_size=8)] == [len(s) for s in items]
    assert_independent(lambda batch: enhance(unet, batch, batch_size=8), items)


def test_voice_privacy_speaker_embeddings():
    """speechlib.nn.speaker.embed_batched: voice_privacy's ASV scoring and `--report`."""
    from speechlib.nn.speaker import build_encoder, embed_batched

    torch.manual_seed(0)
    encoder = build_encoder("ecapa", 24, 16, 8).eval()
    assert_independent(lambda batch: embed_batched(encoder, batch, batch_size=8), signals())


def test_audio2image_sound_embeddings():
    """speechlib.tasks.audio2image.common.embed_sounds: evaluation and generate/retrieve."""
    from speechlib.nn.audio_image import AudioImageCLIP, AudioImageMoCo, WavBriVLEncoder, Wav2CLIPEncoder
    from speechlib.tasks.audio2image.common import embed_sounds
    from tests.unit.test_audio2image import WAVLM, tower

    torch.manual_seed(0)
    items = [torch.from_numpy(s) for s in signals()]
    for model in (AudioImageMoCo(WavBriVLEncoder(WAVLM, 8, sa_layers=1, sa_heads=2), tower(), 8, queue_size=4),
                  AudioImageCLIP(Wav2CLIPEncoder(8, n_mels=16, width=4, n_fft=256), tower())):
        assert_independent(lambda batch: embed_sounds(model, batch, batch_size=8).numpy(), items)


def test_audio2image_generated_pictures():
    """speechlib.nn.vqgan.generate_images (generate, the 2AFC pictures): a sound's picture alone
    equals its picture among others (own random stream per target, summed per-target loss)."""
    import torch.nn.functional as F

    from speechlib.nn.vqgan import VQModel, generate_images
    from tests.unit.test_audio2image import DDCONFIG, tower

    torch.manual_seed(3)
    vqgan = VQModel(DDCONFIG, n_embed=16, embed_dim=8, disc_channels=8, disc_layers=1).eval()
    image_tower = tower().eval()
    targets = list(F.normalize(torch.randn(3, 8), dim=-1))
    assert_independent(lambda batch: list(generate_images(vqgan, image_tower, torch.stack(batch), steps=6, lr=0.1,
                                                         cutouts=4, cut_size=16, latent_size=8, seed=5)[0].numpy()),
                       targets)


def test_mos_pretrain_embeddings(tmp_path):
    """speechlib.tasks.mos_pretrain.systems.embed_files: the downstream MOS stage's embeddings."""
    from speechlib.nn.pase import PASEEncoder
    from speechlib.tasks.mos_pretrain.systems import embed_files

    torch.manual_seed(0)
    encoder = PASEEncoder(sinc_filters=8, sinc_kernel=33, channels=[8] * 7).eval()
    items = []
    for index, signal in enumerate(signals()):
        path = tmp_path / f"u{index}.wav"
        soundfile.write(path, signal, RATE, subtype="FLOAT")
        items.append((f"u{index}", str(path)))
    assert_independent(lambda batch: embed_files(encoder, batch, RATE, None, batch_size=8), items)


def test_mushra_gml_features():
    """speechlib.tasks.mushra_gml.features.compute_features: every (reference, coded) pair is fitted
    to one recipe-wide length, never to its batch's longest."""
    from speechlib.signal.gammatone import GammatoneSpectrogram
    from speechlib.tasks.mushra_gml.features import compute_features

    gammatone = GammatoneSpectrogram(RATE, 8)
    pairs = [(np.stack([s, s]), np.stack([0.5 * s, s])) for s in signals()]
    assert_independent(lambda batch: compute_features(gammatone, batch, RATE, 8, "cpu").float().numpy(), pairs)


@pytest.mark.parametrize("lengths,expected", [([3, 5, 3, 3, 5], [[0, 2], [3], [1, 4]]), ([], [])])
def test_equal_length_batches(lengths, expected):
    from speechlib.io.inference import equal_length_batches

    assert equal_length_batches(lengths, 2) == expected
