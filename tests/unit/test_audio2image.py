"""egs/audio2image's pieces against independent calculations: MoCo loss, queues, momentum, frozen
tower, layer weights, VQGAN latent optimisation, 2AFC scoring and page, strict loaders, data prep."""
from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechlib.io.errors import InputError
from speechlib.nn import brivl
from speechlib.nn.audio_image import (AudioImageCLIP, AudioImageMoCo, WavBriVLEncoder, Wav2CLIPEncoder, clip_loss,
                                      load_wavlm)
from speechlib.nn.vqgan import VQModel, generate_images, load_taming_vqgan, make_cutouts, spherical_distance_sq
from speechlib.tasks.audio2image import human

WAVLM = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=[8, 8, 8],
             conv_kernel=[10, 4, 4], conv_stride=[5, 4, 4], num_conv_pos_embeddings=8,
             num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True, num_buckets=8,
             max_bucket_distance=20, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
             feat_proj_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0)
DDCONFIG = dict(ch=8, out_ch=3, ch_mult=[1, 2], num_res_blocks=1, attn_resolutions=[8], in_channels=3,
                resolution=16, z_channels=8)


def tower(embed: int = 8) -> brivl.ImageEncoder:
    torch.manual_seed(0)
    return brivl.ImageEncoder(brivl.SmallConvBackbone([8, 8]), 8, embed, heads=2, layers=1, grid_size=2, box_grid=2)


def ce_first(logits: np.ndarray) -> float:
    """Mean over rows of -log softmax(row)[0], by hand."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(-(shifted[:, 0] - np.log(np.exp(shifted).sum(axis=1)))))


def test_queue_loss_by_hand_both_directions():
    torch.manual_seed(1)
    q = F.normalize(torch.randn(3, 4), dim=-1)
    k = F.normalize(torch.randn(3, 4), dim=-1)
    queue = F.normalize(torch.randn(4, 5), dim=0)
    T = 0.07
    qn, kn, Q = q.numpy().astype(np.float64), k.numpy().astype(np.float64), queue.numpy().astype(np.float64)
    logits = np.concatenate([(qn * kn).sum(1, keepdims=True), qn @ Q], axis=1) / T
    assert brivl.queue_contrastive_loss(q, k, queue, T).item() == pytest.approx(ce_first(logits), rel=1e-5)
    # the module's two directions: a2i (audio vs image queue) + i2a (image vs audio queue)
    model = AudioImageMoCo(torch.nn.Linear(6, 4), torch.nn.Linear(5, 4), 4, queue_size=5, momentum=0.9,
                           temperature=T)
    model.audio.forward = lambda wavs, lengths=None: torch.nn.Linear.forward(model.audio, wavs)
    model.audio_mom.forward = lambda wavs, lengths=None: torch.nn.Linear.forward(model.audio_mom, wavs)
    wavs, images = torch.randn(3, 6), torch.randn(3, 5)
    img_queue, audio_queue = model.img_queue.clone().double().numpy(), model.audio_queue.clone().double().numpy()
    a = F.normalize(model.audio(wavs), dim=-1).detach().double().numpy()
    a_key = F.normalize(model.audio_mom(wavs), dim=-1).detach().double().numpy()
    image = F.normalize(model.image(images), dim=-1)
    i = image.detach().double().numpy()
    f_i = F.normalize(model.image_projection(image), dim=-1).detach().double().numpy()
    model.eval()
    loss = model(wavs, torch.full((3,), 6), images)
    # a2i: audio vs its image and the image queue; i2a: f(image) vs the momentum audio key and the audio queue
    expected = ce_first(np.concatenate([(a * i).sum(1, keepdims=True), a @ img_queue], 1) / T) + \
        ce_first(np.concatenate([(f_i * a_key).sum(1, keepdims=True), f_i @ audio_queue], 1) / T)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_keys_of_the_query_s_own_picture_are_not_negatives():
    torch.manual_seed(4)
    q, k = F.normalize(torch.randn(2, 4), dim=-1), F.normalize(torch.randn(2, 4), dim=-1)
    queue = F.normalize(torch.randn(4, 3), dim=0)
    loss = brivl.queue_contrastive_loss(q, k, queue, 0.1, torch.tensor([7, 9]), torch.tensor([7, 8, 7]))
    qn, kn, Q = (t.double().numpy() for t in (q, k, queue))
    row0 = np.concatenate([[qn[0] @ kn[0]], [qn[0] @ Q[:, 1]]]) / 0.1        # columns 0 and 2: picture 7
    row1 = np.concatenate([[qn[1] @ kn[1]], qn[1] @ Q]) / 0.1
    expected = 0.5 * (ce_first(row0[None]) + ce_first(row1[None]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    ids = torch.full((3,), -1)
    brivl.enqueue(torch.zeros(4, 3), torch.zeros(1, dtype=torch.long), torch.ones(2, 4), ids, torch.tensor([5, 6]))
    assert ids.tolist() == [5, 6, -1]


def test_queue_fifo_order_and_size():
    queue, pointer = torch.zeros(2, 5), torch.zeros(1, dtype=torch.long)
    for value in range(1, 8):  # batches of one key, then wrap round
        brivl.enqueue(queue, pointer, torch.full((1, 2), float(value)))
    assert queue.shape == (2, 5)
    assert queue[0].tolist() == [6.0, 7.0, 3.0, 4.0, 5.0] and int(pointer) == 2
    brivl.enqueue(queue, pointer, torch.tensor([[8.0, 8.0], [9.0, 9.0], [10.0, 10.0], [11.0, 11.0]]))
    assert queue[0].tolist() == [11.0, 7.0, 8.0, 9.0, 10.0] and int(pointer) == 1   # oldest replaced first


def test_momentum_update_exact():
    online, copy = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in copy.parameters()]
    brivl.momentum_update(online, copy, 0.99)
    for new, old, q in zip(copy.parameters(), before, online.parameters()):
        assert torch.allclose(new, 0.99 * old + 0.01 * q.detach(), atol=0, rtol=1e-6)


def test_frozen_tower_gets_no_gradient_and_stays_unchanged():
    image_tower = tower()
    weights = {k: v.clone() for k, v in image_tower.state_dict().items()}
    encoder = WavBriVLEncoder(WAVLM, 8, sa_layers=1, sa_heads=2)
    for model in (AudioImageMoCo(encoder, image_tower, 8, queue_size=4),
                  AudioImageCLIP(Wav2CLIPEncoder(8, n_mels=16, width=4, n_fft=256), image_tower)):
        model.train()
        optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
        for _ in range(2):
            loss = model(torch.randn(2, 4000), torch.tensor([4000, 3000]), torch.randn(2, 3, 16, 16))
            optimiser.zero_grad()
            loss.backward()
            assert all(p.grad is None for p in model.image.parameters())
            optimiser.step()
        assert not model.image.training
        for key, value in model.image.state_dict().items():
            assert torch.equal(value, weights[key]), key


def test_layer_weights_are_a_softmax_with_gradient():
    encoder = WavBriVLEncoder(WAVLM, 8, sa_layers=1, sa_heads=2)
    with torch.no_grad():
        encoder.layer_logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    weights = encoder.layer_weights()
    assert torch.allclose(weights, torch.tensor([1.0, math.e, math.e ** 2]) / (1 + math.e + math.e ** 2))
    encoder(torch.randn(2, 1200), torch.tensor([1200, 100])).sum().backward()   # 100 < receptive field: padded
    assert encoder.layer_logits.grad is not None and encoder.layer_logits.grad.abs().sum() > 0
    assert encoder.receptive_field == 10 + (4 - 1) * 5 + (4 - 1) * 20


def test_clip_loss_by_hand():
    torch.manual_seed(2)
    a, i = F.normalize(torch.randn(3, 4), dim=-1), F.normalize(torch.randn(3, 4), dim=-1)
    logits = (a @ i.T).double().numpy() / 0.07
    rows = [ce_first(np.roll(logits[r:r + 1], -r, axis=1)) for r in range(3)]
    cols = [ce_first(np.roll(logits.T[r:r + 1], -r, axis=1)) for r in range(3)]
    expected = 0.5 * (np.mean(rows) + np.mean(cols))
    assert clip_loss(a, i, torch.tensor(math.log(1 / 0.07))).item() == pytest.approx(expected, rel=1e-5)


def test_spherical_distance_and_cutouts():
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    # 90 degrees: |x - y| = sqrt(2), 2 arcsin(sqrt(2) / 2)^2 = 2 (pi / 4)^2
    assert spherical_distance_sq(x, y).item() == pytest.approx(2 * (math.pi / 4) ** 2, rel=1e-6)
    crops = make_cutouts(torch.rand(2, 3, 16, 16), 5, 8, 0.5, torch.Generator().manual_seed(0))
    assert crops.shape == (10, 3, 8, 8)


def test_latent_optimisation_lowers_the_spherical_distance():
    torch.manual_seed(3)
    vq = VQModel(DDCONFIG, n_embed=16, embed_dim=8, disc_channels=8, disc_layers=1).eval()
    image_tower = tower().eval()
    for module in (vq, image_tower):
        for p in module.parameters():
            p.requires_grad_(False)
    target = F.normalize(torch.randn(2, 8), dim=-1)
    _, losses = generate_images(vq, image_tower, target, steps=25, lr=0.1, cutouts=4, cut_size=16, latent_size=8)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_brivl_forward_updates_queues():
    image_tower = tower()
    text = brivl.TextEncoder(brivl.TextBackbone(20, 8, 6), 8, 8, heads=2, layers=1)
    model = brivl.BriVL(image_tower, text, 8, queue_size=4).train()
    ids = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    model(torch.randn(2, 3, 16, 16), ids).backward()
    assert int(model.img_queue_ptr) == 2 and int(model.text_queue_ptr) == 2
    assert image_tower.learnable["imgFC"].fc1.weight.grad is not None


# --- strict loading ----------------------------------------------------------------------------

def test_brivl_checkpoint_layout_loads_strictly(tmp_path):
    image_tower, text = tower(), brivl.TextEncoder(brivl.TextBackbone(20, 8, 6), 8, 8, heads=2, layers=1)
    model = brivl.BriVL(image_tower, text, 8, queue_size=4)
    path = tmp_path / "brivl.pth"
    torch.save({"learnable": model.learnable.state_dict()}, path)   # BriVL saves model.learnable
    keys = model.learnable.state_dict().keys()
    assert "imgencoder.learnable.imgAtt.layers.0.self_attn.in_proj_weight" in keys
    assert "imgencoder.learnable.imgFC.fc2.weight" in keys and "imgencoder.learnable.max_pool.0.weight" in keys
    fresh = tower()
    torch.nn.init.zeros_(fresh.learnable["imgFC"].fc2.weight)
    brivl.load_brivl_image_tower(fresh, str(path))
    assert torch.equal(fresh.learnable["imgFC"].fc2.weight, image_tower.learnable["imgFC"].fc2.weight)
    wrong = brivl.ImageEncoder(brivl.SmallConvBackbone([8, 8]), 8, 16, heads=2, layers=1, grid_size=2, box_grid=2)
    with pytest.raises(InputError) as err:
        brivl.load_brivl_image_tower(wrong, str(path))
    assert "brivl.pth" in str(err.value) and "shape mismatch" in str(err.value) and "\n" not in str(err.value)


def test_wavlm_directory_loads_strictly(tmp_path):
    from transformers import WavLMConfig, WavLMModel

    reference = WavLMModel(WavLMConfig(**WAVLM))
    reference.save_pretrained(tmp_path / "wavlm")   # transformers' own layout (safetensors + config.json)
    encoder = WavBriVLEncoder(WAVLM, 8, sa_layers=1, sa_heads=2)
    load_wavlm(encoder, str(tmp_path / "wavlm"))
    key = "encoder.layers.0.attention.k_proj.weight"
    assert torch.equal(encoder.backbone.state_dict()[key], reference.state_dict()[key])
    # a WavLMFor* checkpoint: keys under "wavlm."
    torch.save({f"wavlm.{k}": v for k, v in reference.state_dict().items()}, tmp_path / "pytorch_model.bin")
    load_wavlm(encoder, str(tmp_path))
    bigger = WavBriVLEncoder(dict(WAVLM, hidden_size=32), 8, sa_layers=1, sa_heads=2)
    with pytest.raises(InputError, match="does not match the WavLM backbone"):
        load_wavlm(bigger, str(tmp_path / "wavlm"))
    with pytest.raises(InputError, match="no model.safetensors"):
        load_wavlm(encoder, str(tmp_path / "nothing"))


def test_taming_vqgan_checkpoint_loads_strictly(tmp_path):
    vq = VQModel(DDCONFIG, n_embed=16, embed_dim=8, disc_channels=8, disc_layers=1)
    state = dict(vq.state_dict())
    for key in ("encoder.down.0.block.0.norm1.weight", "decoder.up.1.upsample.conv.weight",
                "encoder.mid.attn_1.q.weight", "quantize.embedding.weight", "post_quant_conv.weight",
                "loss.discriminator.main.0.weight"):
        assert key in state, key
    state["loss.perceptual_loss.net.slice1.0.weight"] = torch.zeros(1)   # LPIPS: present in taming's files
    torch.save({"state_dict": state}, tmp_path / "last.ckpt")
    fresh = VQModel(DDCONFIG, n_embed=16, embed_dim=8, disc_channels=8, disc_layers=1)
    load_taming_vqgan(fresh, str(tmp_path / "last.ckpt"))
    assert torch.equal(fresh.quantize.embedding.weight, vq.quantize.embedding.weight)
    other = VQModel(dict(DDCONFIG, z_channels=4), n_embed=16, embed_dim=8, disc_channels=8, disc_layers=1)
    with pytest.raises(InputError, match="last.ckpt: does not match the VQGAN"):
        load_taming_vqgan(other, str(tmp_path / "last.ckpt"))
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_taming_vqgan(fresh, str(tmp_path / "junk.ckpt"))


# --- 2AFC ------------------------------------------------------------------------------------

def write_csv(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(human.CSV_FIELDS)
        writer.writerows(rows)
    return path


def test_scorer_against_a_hand_counted_csv(tmp_path):
    # (system, sound, target, answer of rater x, answer of rater y): outcomes counted by hand
    trials = [("wavbrivl", "a", "first", "first", "first"),      # x positive, y (target flipped below) positive
              ("wavbrivl", "b", "second", "second", "neither"),  # x positive, y neither
              ("wavbrivl", "c", "first", "second", "first"),     # x negative, y positive
              ("wavbrivl", "d", "second", "neither", "first"),   # x neither,  y negative
              ("wav2clip", "a", "first", "second", "first")]     # x negative, y positive
    one = write_csv(tmp_path / "r1.csv", [(n, s, snd, t, x, "x") for n, (s, snd, t, x, _) in enumerate(trials, 1)])
    two = write_csv(tmp_path / "r2.csv", [(n, s, snd, t, y, "y") for n, (s, snd, t, _, y) in enumerate(trials, 1)])
    result = human.table1([human.read_answers(one), human.read_answers(two)], n_boot=200)
    wb = result["wavbrivl"]
    assert wb["trials"] == 8
    assert wb["positive"]["share"] == pytest.approx(100 * 4 / 8)
    assert wb["negative"]["share"] == pytest.approx(100 * 2 / 8)
    assert wb["neither"]["share"] == pytest.approx(100 * 2 / 8)
    assert (wb["positive"]["min"], wb["positive"]["max"]) == (50.0, 50.0)
    assert (wb["neither"]["min"], wb["neither"]["max"]) == (25.0, 25.0)
    assert result["wav2clip"]["positive"]["share"] == pytest.approx(50.0)
    assert wb["positive"]["low"] <= 50.0 <= wb["positive"]["high"]
    bad = write_csv(tmp_path / "bad.csv", [(1, "wavbrivl", "a", "first", "maybe", "x")])
    with pytest.raises(InputError, match=r"bad.csv:2: answer 'maybe'"):
        human.read_answers(bad)


def _pictures(tmp_path: Path, count: int) -> list[str]:
    from PIL import Image

    paths = []
    for index in range(count):
        path = tmp_path / f"p{index}.png"
        Image.new("RGB", (8, 8), (40 * index, 0, 0)).save(path)
        paths.append(str(path))
    return paths


def test_web_page_round_trip_in_headless_chromium(tmp_path):
    """Load the page from a file, answer every trial, export, score."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are needed (tools/debian_packages.txt)")
        pytest.skip("chromium/chromedriver not installed (tools/debian_packages.txt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from tests.helpers import write_tone

    pictures = _pictures(tmp_path, 4)
    sound = str(write_tone(tmp_path / "tone.wav"))
    trials = [{"trial": n + 1, "system": "wavbrivl", "name": f"s{n}", "sound": sound, "target_picture": pictures[n],
               "other_picture": pictures[(n + 1) % 4], "target": target}
              for n, target in enumerate(("first", "second", "first"))]
    page = human.write_page(tmp_path / "2afc", trials)
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(page.resolve().as_uri())
        assert driver.find_element(By.ID, "total").text == "3"
        assert driver.find_element(By.ID, "sound").get_attribute("src").endswith("sounds/s0.wav")
        driver.find_element(By.ID, "rater").clear()
        driver.find_element(By.ID, "rater").send_keys("tester")
        for choice in ("first", "first", "neither"):   # positive, negative, neither
            driver.find_element(By.ID, f"answer-{choice}").click()
        assert driver.find_element(By.ID, "done").is_displayed()
        driver.find_element(By.ID, "export").click()
        text = driver.find_element(By.ID, "csv").get_attribute("value")
    finally:
        driver.quit()
    exported = tmp_path / "answers.csv"
    exported.write_text(text)
    rows = human.read_answers(exported)
    assert [r["outcome"] for r in rows] == ["positive", "negative", "neither"]
    assert {r["rater"] for r in rows} == {"tester"}
    shares = human.table1([rows], n_boot=50)["wavbrivl"]
    assert [round(shares[c]["share"], 3) for c in human.CHOICES] == [33.333, 33.333, 33.333]


# --- data ------------------------------------------------------------------------------------

def test_non_rgb_pictures_are_converted_once(tmp_path, caplog):
    from PIL import Image

    from speechlib.data.image_pairs import load_rgb

    rgba = Image.new("RGBA", (10, 6), (255, 0, 0, 0))   # transparent: white once composited
    rgba.save(tmp_path / "a.png")
    rgba.save(tmp_path / "b.png")
    said: set[str] = set()
    with caplog.at_level("WARNING"):
        first = load_rgb(tmp_path / "a.png", 4, said)
        load_rgb(tmp_path / "b.png", 4, said)
    assert first.shape == (4, 4, 3) and first.dtype == np.uint8 and (first == 255).all()
    assert sum("converted to RGB" in r.message for r in caplog.records) == 1
    (tmp_path / "c.png").write_text("no picture")
    with pytest.raises(InputError, match="c.png: not a readable picture"):
        load_rgb(tmp_path / "c.png", 4)


def test_split_by_stamp_is_disjoint_and_stable():
    from speechlib.data.image_pairs import split_by_stamp

    stamps = [f"tp_s{i}" for i in range(200)]
    split = split_by_stamp(stamps, (0.15, 0.2), 1)
    assert set(split) == set(stamps) and set(split.values()) == {"train", "valid", "test"}
    assert 20 <= sum(v == "test" for v in split.values()) <= 60
    assert split_by_stamp(stamps[:50], (0.15, 0.2), 1) == {s: split[s] for s in stamps[:50]}


def test_category_captions_name_the_class_and_add_one_category_caption_per_picture():
    from speechlib.tasks.audio2image.common import category_captions

    row = dict(wav="w", image="crow.png", label="animals/birds", kind="sfx", stamp="tp_crow")
    pairs = {"tp_crow-sfx": dict(row, text="crow"), "tp_crow-desc_fr": dict(row, text="Un corbeau.", kind="desc"),
             "tp_bus-sfx": dict(row, text="bus", label="vehicles", image="bus.png", stamp="tp_bus")}
    out = category_captions(pairs)
    assert {u: r["text"] for u, r in out.items()} == {
        "tp_crow-sfx": "animals birds: crow", "tp_crow-desc_fr": "animals birds: Un corbeau.",
        "tp_bus-sfx": "vehicles: bus", "tp_crow-category": "animals birds", "tp_bus-category": "vehicles"}
    assert out["tp_crow-category"]["image"] == "crow.png" and out["tp_bus-category"]["stamp"] == "tp_bus"
    assert pairs["tp_crow-sfx"]["text"] == "crow"   # the input rows are not changed


def test_mini_pairs_split_by_stamp(mini_small, tmp_path):
    from speechlib.data.image_pairs import mini_pairs, split_by_stamp

    pairs = mini_pairs(mini_small, class_level=2)
    assert {p.kind for p in pairs} >= {"sfx", "desc"}
    split = split_by_stamp(sorted({p.stamp for p in pairs}), (0.15, 0.2), 1)
    for kind in ("audio", "image"):
        owners: dict[str, set[str]] = {}
        for p in pairs:
            owners.setdefault(getattr(p, kind), set()).add(split[p.stamp])
        assert all(len(s) == 1 for s in owners.values())   # no sound or picture in two splits


def _video(path: Path, audio: bool) -> Path:
    inputs = ["-f", "lavfi", "-i", "testsrc=size=80x60:rate=10:duration=1"]
    if audio:
        inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-shortest", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def test_vggsound_prep_skips_bad_videos(tmp_path):
    from PIL import Image

    from speechlib.data.vggsound import prepare_vggsound, read_vggsound_csv

    videos = tmp_path / "video"
    videos.mkdir()
    _video(videos / "good_id_000030.mp4", audio=True)
    _video(videos / "mute_id_000010.mp4", audio=False)
    (videos / "junk_id_000000.mp4").write_bytes(b"not a video")
    table = tmp_path / "vggsound.csv"
    table.write_text("good_id,30,dog barking,train\nmute_id,10,cat purring,test\njunk_id,0,rain,train\n"
                     "gone_id,5,car horn,test\n")
    clips, skipped = prepare_vggsound(table, videos, tmp_path / "out", 16, seed=0)
    assert [c["clip"] for c in clips] == ["good_id_000030"]
    assert Image.open(clips[0]["image"]).size == (16, 16)
    import soundfile
    info = soundfile.info(clips[0]["audio"])
    assert (info.samplerate, info.channels) == (16000, 1)
    assert skipped["missing video"] == ["gone_id_000005"]
    assert [Path(p).name for p in skipped["no audio stream"]] == ["mute_id_000010.mp4", "junk_id_000000.mp4"]
    table.write_text("good_id,30,dog barking,val\n")
    with pytest.raises(InputError, match=r"vggsound.csv:1: split 'val'"):
        read_vggsound_csv(table)


def test_modules_build_from_config_values_and_round_trip_through_a_model_dir(tmp_path):
    """The configs hold values only: every module builds from its block (common.BUILDERS), is
    exported in the one model-directory format and comes back identical; another kind is refused."""
    import yaml

    from speechlib.tasks.audio2image import common
    from speechlib.tasks.stage import Stage

    config = Path(__file__).resolve().parents[2] / "egs" / "audio2image" / "conf" / "tiny_audio2image.yaml"
    assert "!new:" not in config.read_text() and "!apply:" not in config.read_text()
    loader = type("Refs", (yaml.SafeLoader,), {})
    loader.add_constructor("!ref", lambda loader_, node: None)
    raw = yaml.load(config.read_text(), Loader=loader)
    hp = {**raw, "corpus": "mini"}
    for block, refs in (("image_tower", {"feature_dim": 64, "embed_dim": 64}),
                        ("text_tower", {"vocab_size": 50, "max_len": 8, "feature_dim": 64, "embed_dim": 64}),
                        ("wavbrivl", {"wavlm": WAVLM, "embed_dim": 64, "freeze_backbone": False}),
                        ("wav2clip", {"embed_dim": 64, "sample_rate": 16000})):
        hp[block] = {**raw[block], **refs}
    for key in common.GENERATION_KEYS:
        hp[key] = hp[key] if hp[key] is not None else 32
    stage = Stage("test", hp, {}, tmp_path, "0", {})
    torch.manual_seed(0)
    modules = {name: (name, common.build(name, hp[name])) for name in ("image_tower", "wavbrivl", "wav2clip")}
    common.export(stage, tmp_path / "m", "audio2image", "wavbrivl", modules)
    loaded = common.load(tmp_path / "m", "audio2image")
    for name, (_, module) in modules.items():
        again = common.load_module(loaded, name)
        assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), again.state_dict().values()))
        assert not any(p.requires_grad for p in again.parameters())
    with pytest.raises(InputError, match="audio2image model .*not a audio2image vqgan model"):
        common.load(tmp_path / "m", "vqgan")


def _tokenizer_rank(rank: int, world: int, port: int, directory: str) -> None:
    """One DDP rank of test_tokenizer_trained_on_rank_0_only: notes in trained_by.<rank> whether
    it trained the tokenizer, and in pieces.<rank> what it loaded."""
    import torch.distributed as dist

    from speechlib.tasks.audio2image import common, pretrain

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    real = common.train_tokenizer

    def counting(*args, **kwargs):
        Path(directory, f"trained_by.{rank}").write_text("1")
        return real(*args, **kwargs)

    pretrain.train_tokenizer = counting
    texts = [f"a picture of a {word} number {i}" for i in range(20) for word in ("duck", "owl", "drum")]
    tokenizer = pretrain.shared_tokenizer(texts, Path(directory), 40, 8)
    Path(directory, f"pieces.{rank}").write_text(str(tokenizer("a duck").tolist()))
    dist.destroy_process_group()


def test_tokenizer_trained_on_rank_0_only(tmp_path):
    """Issue 16: under DDP only rank 0 trains the sentencepiece model; the other waits at the
    barrier and loads the same file (2 gloo processes on the CPU)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_tokenizer_rank, args=(2, port, str(tmp_path)), nprocs=2, start_method="fork")
    assert sorted(p.name for p in tmp_path.glob("trained_by.*")) == ["trained_by.0"]
    assert (tmp_path / "pieces.0").read_text() == (tmp_path / "pieces.1").read_text()


def test_targets_table_decides_the_class_oracle_row_from_its_lower_bound():
    from speechlib.tasks.audio2image.afc import targets_table

    def metrics(oracle_low: float) -> dict:
        ci = [[0.2, 0.1, 0.3]] * 4
        return {"chance": [0.04, 0.192, 0.38, 13.5], "seeds": [1, 2, 3],
                "class_oracle": {"metrics": [0.1, 0.35, 0.6, 8.0], "low": [0.0, oracle_low, 0.4, 5.0],
                                 "high": [0.3, 0.55, 0.8, 11.0]},
                "pooled": {"all": {"queries": 120, "wavbrivl": ci, "difference": ci}},
                "difference": {"over_seeds": [[0.0, -0.1, 0.1]] * 4}}

    automatic = {"judges": {"classifier on real pictures": {"systems": {"wavbrivl": {
        "positive": {"share": 40.0, "low": 33.0, "high": 47.0}}}}}}
    row = "class-oracle ceiling R@5 above chance, CI excluding chance (the frozen tower's share)"
    assert targets_table(metrics(0.168), automatic).rows[row][1] == "not met"   # 16.8 < chance 19.2
    assert targets_table(metrics(0.2), automatic).rows[row][1] == "met"
    assert "R@5 35.0 [20.0, 55.0]" in targets_table(metrics(0.2), automatic).rows[row][0]


def test_seeds_and_stamps_bootstrap_against_closed_forms():
    """The pooled CI's bootstrap: (1) one seed, singleton stamps: the spread of the resampled
    mean is the binomial sd sqrt(p (1 - p) / n); (2) one stamp, two seeds (all hits / no hit):
    the resampled seed-averaged rate is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4."""
    from speechlib.tasks.audio2image.evaluate import seeds_and_stamps_bootstrap

    rng = np.random.default_rng(3)
    n = 400
    hits = (rng.random((1, n, 1)) < 0.3).astype(float)
    draws = seeds_and_stamps_bootstrap({"a": hits}, np.arange(n).astype(str), 4000, 0)["a"][:, 0]
    p = hits.mean()
    assert draws.mean() == pytest.approx(p, abs=0.003)
    assert draws.std() == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.08)
    two_seeds = np.stack([np.ones((3, 1)), np.zeros((3, 1))])
    draws = seeds_and_stamps_bootstrap({"a": two_seeds}, np.array(["s"] * 3), 4000, 1)["a"][:, 0]
    shares = [np.mean(draws == v) for v in (0.0, 0.5, 1.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)
    # a subset keeps only its queries: the hits of the other kind never enter
    mixed = np.array([[[1.0], [0.0], [1.0], [0.0]]])
    draws = seeds_and_stamps_bootstrap({"a": mixed}, np.array(["x", "x", "y", "y"]), 200, 2,
                                       subset=np.array([True, False, True, False]))["a"]
    assert np.all(draws == 1.0)



def test_user_commands_read_sounds_one_batch_at_a_time(tmp_path):
    """Issue 16: generate/retrieve hold one --batch-size of sounds at a time, refuse an unreadable
    one by name, and report progress (here a line per batch: interval 0)."""
    import io

    from speechlib.io.inference import Summary
    from speechlib.io.inputs import Item
    from speechlib.io.progress import Progress
    from speechlib.tasks.audio2image.generate import in_batches
    from tests.helpers import write_tone

    class Model:   # what in_batches needs of LoadedModel
        sample_rate, settings, sizes = 16000, {"max_seconds": 1.0}, []

        def embed(self, signals):
            self.sizes.append(len(signals))
            return torch.stack([torch.full((2,), float(s.shape[0])) for s in signals])

    items = [Item(f"s{i}", str(write_tone(tmp_path / f"s{i}.wav", seconds=0.2 + 0.1 * i))) for i in range(5)]
    (tmp_path / "bad.wav").write_bytes(b"RIFF nothing")
    items.insert(2, Item("bad", str(tmp_path / "bad.wav")))
    summary, stream, model = Summary(total=len(items)), io.StringIO(), Model()
    progress = Progress(len(items), "gen", unit="picture", interval=0.0, stream=stream)
    seen = []
    for batch, embeddings in in_batches("gen", items, model, summary, 2, progress):
        seen += [item.name for item in batch]
        assert embeddings[:, 0].tolist() == [int(16000 * (0.2 + 0.1 * int(i.name[1:]))) for i in batch]
        progress.update(len(batch))
    assert model.sizes == [2, 1, 2] and seen == ["s0", "s1", "s2", "s3", "s4"]
    assert list(summary.refused) == ["bad"]
    assert stream.getvalue().splitlines()[-1].startswith("gen: 6/6 pictures done")


@pytest.mark.parametrize("module", ["generate", "retrieve", "human"])
def test_user_command_help(module, monkeypatch, capsys):
    """--help of the user commands (not stage modules, so not in test_stage): usage with the
    module's real name, exit 0; generate/retrieve offer --threads, --batch-size and --quiet."""
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(f"speechlib.tasks.audio2image.{module}", run_name="__main__", alter_sys=True)
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith("usage: python -m speechlib.tasks.audio2image.")
    if module != "human":
        assert all(option in out for option in ("--threads", "--batch-size", "--quiet", "--device"))
