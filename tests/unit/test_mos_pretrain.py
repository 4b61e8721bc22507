"""egs/mos_pretrain building blocks, each checked against an independent computation."""
from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import scipy.stats
import soundfile
import torch

from speechlib.data.nisqa import read_nisqa_csv, write_nisqa_csv
from speechlib.data.noise_corpora import FSD2018_CATEGORY, keyword_category
from speechlib.data.vcc2018 import read_mos_list, split_rows
from speechlib.data.mini import CATEGORIES
from speechlib.io.errors import InputError, TrainingDiverged
from speechlib.metrics.correlation import lcc, mse, srcc
from speechlib.nn.masked_encoder import MaskedEncoder, mask_frames
from speechlib.nn.mos_head import MOSHead, mean_pool
from speechlib.nn.pase import PASEEncoder
from speechlib.nn.workers import WorkerSet
from speechlib.signal import features
from speechlib.signal.noise_labels import (SNRS_DB, balanced_conditions, band_energies, category_class,
                                           noisy_example, snr_class, spectral_region)

SR = 16000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def harmonic(f0: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)).astype(np.float32)


# ---- noise labels -------------------------------------------------------------------------

def test_snr_and_category_classes_with_clean():
    assert [snr_class(s) for s in (-5, 0, 5, 10, 15)] == [0, 1, 2, 3, 4]
    assert snr_class(None) == 5
    with pytest.raises(ValueError):
        snr_class(7)
    assert category_class("human") == 0 and category_class("background") == 6
    assert category_class(None) == category_class("clean") == 7 == len(CATEGORIES)
    with pytest.raises(ValueError):
        category_class("speech")


@pytest.mark.parametrize("freq, region", [(500, 0), (2000, 0), (3500, 1), (5000, 1), (6000, 2), (7500, 2)])
def test_spectral_region_of_tones(freq, region):
    # thirds of 0..8 kHz: [0, 2667), [2667, 5333), [5333, 8000]
    assert spectral_region(tone(freq), SR) == region


def test_spectral_region_hand_computed_energies_and_clean():
    mix = tone(1000, amp=0.1) + tone(7000, amp=0.3)  # high band holds 9x the low band's energy
    energies = band_energies(mix, SR)
    assert energies[2] / energies[0] == pytest.approx(9.0, rel=1e-3)
    assert energies[1] / energies.sum() < 1e-6
    assert spectral_region(mix, SR) == 2
    assert spectral_region(None, SR) == 3
    with pytest.raises(ValueError):
        spectral_region(np.zeros(SR, np.float32), SR)


def test_noisy_example_snr_looping_and_silence():
    rng = np.random.default_rng(0)
    speech = harmonic(150, 1.0) * 0.5
    short_noise = np.random.default_rng(1).standard_normal(SR // 4).astype(np.float32) * 0.01
    for snr in SNRS_DB:
        mixture, labels = noisy_example(speech, short_noise, snr, rng, SR, "n1")
        assert mixture.shape == speech.shape  # a noise clip shorter than the speech is looped
        noise = mixture - speech
        measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
        assert measured == pytest.approx(snr, abs=0.05)
        assert labels["snr"] == snr_class(snr) and labels["region"] in (0, 1, 2)
    clean, labels = noisy_example(speech, None, None, rng, SR)
    assert np.array_equal(clean, speech) and labels == {"snr": 5, "region": 3}
    with pytest.raises(InputError, match="silent"):  # never labelled clean, never a division by zero
        noisy_example(speech, np.zeros(SR, np.float32), 0, rng, SR, "silence")


def test_balanced_conditions():
    conds = balanced_conditions(84, np.random.default_rng(0))
    snrs = [s for s, _ in conds]
    assert all(snrs.count(s) == 14 for s in (*SNRS_DB, None))
    cats = [c for s, c in conds if s is not None]
    assert all(cats.count(c) == 10 for c in CATEGORIES)
    assert all(c is None for s, c in conds if s is None)


def test_noise_corpus_mappings_cover_the_categories():
    assert set(FSD2018_CATEGORY.values()) <= set(CATEGORIES) and len(FSD2018_CATEGORY) == 41
    assert keyword_category("babble") == "human" and keyword_category("f16") == "things"
    assert keyword_category("white") == "background" and keyword_category("xyz") is None


# ---- worker targets against librosa ----------------------------------------------------------

def speechlike() -> np.ndarray:
    rng = np.random.default_rng(3)
    return (harmonic(140, 1.0) + 0.01 * rng.standard_normal(SR)).astype(np.float32)


def test_lps_matches_librosa():
    x = speechlike()
    ours = features.lps(torch.from_numpy(x)[None])[0].numpy()
    spec = librosa.stft(x, n_fft=2048, hop_length=160, win_length=400, window="hann", center=True,
                        pad_mode="constant")
    ref = 10 * np.log10(np.maximum(np.abs(spec.T) ** 2, 1e-10))
    assert ours.shape == ref.shape == (101, 1025)
    assert np.max(np.abs(ours - ref)) < 1e-2


def test_mfcc_matches_librosa():
    x = speechlike()
    ours = features.mfcc(torch.from_numpy(x)[None], SR)[0].numpy()
    mel = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=512, hop_length=160, win_length=400, window="hann",
                                         center=True, pad_mode="constant", power=2.0, n_mels=40, htk=True, norm=None)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), n_mfcc=20).T
    assert ours.shape == ref.shape == (101, 20)
    assert np.max(np.abs(ours - ref)) < 1e-2 * np.max(np.abs(ref))


def test_rms_and_zcr_match_librosa():
    x = speechlike()
    rms = librosa.feature.rms(y=x, frame_length=320, hop_length=160, center=True, pad_mode="constant")[0]
    assert np.allclose(features.rms_energy(x), rms, atol=1e-6)
    zcr = librosa.feature.zero_crossing_rate(x, frame_length=320, hop_length=160, center=True)[0]
    ours = features.zero_crossing_rate(x)
    # edge frames differ only in padding (librosa pads by repeating the edge): compare the inside
    assert np.allclose(ours[2:-2], zcr[2:-2], atol=1.0 / 320 + 1e-9)


@pytest.mark.parametrize("f0", [110.0, 150.0, 220.0])
def test_yin_f0_matches_librosa(f0):
    x = harmonic(f0, 1.0)
    ours, voiced = features.yin_f0(x, SR)
    ref = librosa.yin(x, fmin=60, fmax=400, sr=SR, frame_length=1024, hop_length=160)
    inner = slice(5, -5)
    assert voiced[inner].all()
    assert np.median(ours[inner]) == pytest.approx(f0, rel=0.01)
    assert np.median(ours[inner]) == pytest.approx(np.median(ref[inner]), rel=0.01)


def test_prosody_unvoiced_gap_is_interpolated():
    x = np.concatenate([harmonic(120, 0.5), np.zeros(SR // 2, np.float32), harmonic(240, 0.5)])
    pro = features.prosody(x, SR)
    assert pro.shape[1] == 4
    voiced = pro[:, 1]
    gap = slice(60, 95)
    assert voiced[gap].sum() == 0 and voiced[10:40].all()
    log_f0 = pro[:, 0]
    assert np.all(np.diff(log_f0[gap]) >= -1e-6)  # rising linearly from log 120 to log 240
    assert math.log(120) - 0.05 < log_f0[70] < math.log(240) + 0.05
    assert np.allclose(pro[gap, 2], 0.0)  # RMS energy of silence


# ---- masking, head, metrics ----------------------------------------------------------------

def test_masking_proportions_and_80_10_10_split():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(4000, 100, 8) + 5.0
    masked, mask, mode = mask_frames(feats, 0.15, gen)
    assert mask.sum(1).eq(15).all()
    frac = torch.bincount(mode, minlength=3).float() / len(mode)
    assert abs(frac[0] - 0.8) < 0.02 and abs(frac[1] - 0.1) < 0.015 and abs(frac[2] - 0.1) < 0.015
    zero = mode == 0
    assert masked[zero][mask[zero]].abs().sum() == 0
    same = mode == 2
    assert torch.equal(masked[same], feats[same])
    rand = mode == 1
    replaced = masked[rand][mask[rand]]
    assert not torch.equal(replaced, feats[rand][mask[rand]])
    assert torch.equal(masked[~mask], feats[~mask])  # unmasked frames are never touched


def test_masked_encoder_shapes():
    enc = MaskedEncoder()
    out = enc(torch.randn(2, SR))
    assert out.shape == (2, 101, 256)


def test_mos_head_range_clipping_and_pooling():
    head = MOSHead(10).eval()
    with torch.no_grad():
        head.out.weight.fill_(100.0)
        big = head(torch.full((3, 10), 50.0))
        head.out.weight.fill_(-100.0)
        small = head(torch.full((3, 10), 50.0))
    assert torch.all(big == 5.0) and torch.all(small == 1.0)
    emb = torch.tensor([[[1.0], [3.0], [100.0], [100.0]]])
    assert mean_pool(emb, torch.tensor([0.5])).item() == pytest.approx(2.0)


def test_correlation_metrics_match_scipy():
    rng = np.random.default_rng(0)
    target = rng.uniform(1, 5, 200)
    pred = np.round(target + rng.normal(0, 0.7, 200), 1)  # rounding gives ties
    assert mse(pred, target) == pytest.approx(np.mean((pred - target) ** 2))
    assert lcc(pred, target) == pytest.approx(scipy.stats.pearsonr(pred, target)[0], abs=1e-12)
    assert srcc(pred, target) == pytest.approx(scipy.stats.spearmanr(pred, target)[0], abs=1e-12)
    assert math.isnan(lcc(np.ones(5), np.arange(5)))


# ---- workers and encoders -------------------------------------------------------------------

def test_every_worker_trains_the_encoder_and_noise_sign():
    enc = PASEEncoder(sinc_filters=8, sinc_kernel=33, channels=(8, 8, 8, 8, 8, 8, 8))
    wav = torch.randn(4, SR) * 0.1
    names = ["waveform", "lps", "mfcc", "prosody", "lim", "gim", "spc", "snr", "category", "region"]
    targets = {"waveform": wav, "lps": features.lps(wav), "mfcc": features.mfcc(wav), "prosody": torch.randn(4, 101, 4),
               "snr": torch.tensor([0, 1, 5, 2]), "category": torch.tensor([0, 7, 3, 1]),
               "region": torch.tensor([3, 0, 1, 2])}
    small = {"channels": [16, 8, 8]}
    plus = WorkerSet(names, 100, {"lps": 1025, "mfcc": 20, "prosody": 4}, noise_sign=1.0, waveform_decoder=small)
    emb = enc(wav)
    assert emb.shape == (4, 100, 100)
    for name in names:
        enc.zero_grad()
        _, parts = plus(enc(wav), targets)
        parts[name].backward()
        assert torch.isfinite(parts[name]) and enc.proj.weight.grad.abs().sum() > 0, name
    torch.manual_seed(0)
    total_plus, parts = plus(emb.detach(), targets)
    minus = WorkerSet(names, 100, {"lps": 1025, "mfcc": 20, "prosody": 4}, noise_sign=-1.0, waveform_decoder=small)
    minus.load_state_dict(plus.state_dict())
    torch.manual_seed(0)
    total_minus, _ = minus(emb.detach(), targets)
    noise = sum(0.1 * parts[n] for n in ("snr", "category", "region"))
    assert (total_plus - total_minus).item() == pytest.approx(2 * noise.item(), rel=1e-4)


# ---- bad input ------------------------------------------------------------------------------

def write_wav(path, seconds=0.5):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, tone(440, seconds), SR)
    return path


@pytest.mark.parametrize("row, message", [
    ({"filepath_deg": "deg/missing.wav", "mos": "3.0"}, "does not exist"),
    ({"filepath_deg": "deg/a.wav", "mos": "good"}, "not a number"),
    ({"filepath_deg": "deg/a.wav", "mos": "7.5"}, "outside"),
])
def test_nisqa_csv_bad_rows_name_the_row(tmp_path, row, message):
    write_wav(tmp_path / "deg" / "a.wav")
    csv_path = tmp_path / "set.csv"
    write_nisqa_csv(csv_path, [{"filepath_deg": "deg/a.wav", "mos": "3.1"}, row])
    with pytest.raises(InputError, match=message) as err:
        read_nisqa_csv(csv_path, tmp_path)
    assert f"{csv_path}:3:" in str(err.value) and row["filepath_deg"] in str(err.value)


def test_nisqa_and_vcc_readers(tmp_path):
    for i in range(10):
        write_wav(tmp_path / "wav" / f"u{i}.wav")
    write_nisqa_csv(tmp_path / "set.csv", [{"filepath_deg": f"wav/u{i}.wav", "mos": 1 + i * 0.4} for i in range(10)])
    rows = read_nisqa_csv(tmp_path / "set.csv", tmp_path)
    assert len(rows) == 10 and rows[3][2] == pytest.approx(2.2)
    (tmp_path / "mos_list.txt").write_text("".join(f"u{i}.wav,{1 + i * 0.4:.2f}\n" for i in range(10)))
    rows = read_mos_list(tmp_path / "mos_list.txt", tmp_path / "wav")
    train, valid, test = split_rows(rows, (6, 2, 2), seed=1)
    assert len({r[0] for r in train + valid + test}) == 10
    assert split_rows(rows, (6, 2, 2), seed=1) == (train, valid, test)
    (tmp_path / "bad.txt").write_text("u1.wav,3.0\nu2.wav,abc\n")
    with pytest.raises(InputError, match=r"bad.txt:2: row 'u2.wav'"):
        read_mos_list(tmp_path / "bad.txt", tmp_path / "wav")


def test_nan_in_head_training_names_the_utterances(tmp_path):
    from speechlib.tasks.mos_pretrain.downstream import train_head

    embs = {k: np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32) for k in ("train", "valid", "test")}
    embs["train"][5, 2] = np.nan
    targets = {k: np.full(8, 3.0, np.float32) for k in embs}
    utts = {k: [f"{k}-u{i}" for i in range(8)] for k in embs}
    hp = {"seed": 1, "downstream": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0,
                                    "hidden": 8, "dropout": 0.0}}
    with pytest.raises(TrainingDiverged, match="train-u5"):
        train_head(tmp_path, "vcc", embs, targets, utts, hp)
