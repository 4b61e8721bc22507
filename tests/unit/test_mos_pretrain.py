"""egs/mos_pretrain building blocks, each checked against an independent computation."""
from __future__ import annotations

import json
import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import scipy.stats
import soundfile
import torch

from speechlib.data.nisqa import read_nisqa_csv, write_nisqa_csv
from speechlib.data.noise_corpora import FSD2018_CATEGORY, KEYWORD_CATEGORY, keyword_category
from speechlib.data.vcc2018 import read_mos_list, split_rows
from speechlib.data.mini import CATEGORIES
from speechlib.io.errors import InputError, TrainingDiverged
from speechlib.metrics.correlation import lcc, mse, srcc
from speechlib.nn.masked_encoder import MaskedEncoder, mask_frames
from speechlib.nn.mos_head import MOSHead, mean_pool
from speechlib.nn.pase import PASEEncoder
from speechlib.nn.workers import WorkerSet
from speechlib.tasks.mos_pretrain.systems import load_head
from speechlib.signal import features
from speechlib.signal.noise_labels import (SNRS_DB, balanced_conditions, band_energies, category_class,
                                           noisy_example, region_edges, snr_class, spectral_region)

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


def test_region_edges_are_mel_thirds_by_hand():
    # mel(8000) = 2595 log10(1 + 8000/700) = 2840.02; thirds 946.67 and 1893.35 mel
    # -> 700 (10^(946.67/2595) - 1) = 921.1 Hz and 700 (10^(1893.35/2595) - 1) = 3055.5 Hz
    assert region_edges(SR) == pytest.approx([921.1, 3055.5], abs=0.5)


@pytest.mark.parametrize("freq, region", [(300, 0), (850, 0), (1000, 1), (2500, 1), (3200, 2), (7500, 2)])
def test_spectral_region_of_tones(freq, region):
    assert spectral_region(tone(freq), SR) == region


def test_spectral_region_hand_computed_energies_and_clean():
    mix = tone(500, amp=0.1) + tone(7000, amp=0.3)  # high band holds 9x the low band's energy
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


def test_region_label_carries_information():
    """Typical noises reach all three regions (the Hz-thirds label was "low" for nearly all)."""
    rng = np.random.default_rng(0)
    white = rng.standard_normal(SR).astype(np.float32)
    brown = np.cumsum(white).astype(np.float32)
    brown -= brown.mean()
    sos = scipy.signal.butter(6, [1200, 2800], btype="bandpass", fs=SR, output="sos")
    band = scipy.signal.sosfilt(sos, white).astype(np.float32)  # babble-like mid band
    assert [spectral_region(x, SR) for x in (brown, band, white)] == [0, 1, 2]


# FSDKaggle2018's 41 labels and the AudioSet top-level category of each, written out by hand from
# the AudioSet ontology (independently of speechlib.data.noise_corpora).
FSD_EXPECTED = """
Acoustic_guitar music | Applause human | Bark animal | Bass_drum music | Burping_or_eructation human
Bus things | Cello music | Chime music | Clarinet music | Computer_keyboard things | Cough human
Cowbell music | Double_bass music | Drawer_open_or_close things | Electric_piano music | Fart human
Finger_snapping human | Fireworks things | Flute music | Glockenspiel music | Gong music
Gunshot_or_gunfire things | Harmonica music | Hi-hat music | Keys_jangling things | Knock things
Laughter human | Meow animal | Microwave_oven things | Oboe music | Saxophone music | Scissors things
Shatter things | Snare_drum music | Squeak source_ambiguous | Tambourine music | Tearing source_ambiguous
Telephone things | Trumpet music | Violin_or_fiddle music | Writing things
"""


def test_fsdkaggle2018_table_matches_the_hand_written_one():
    expected = dict(item.split() for item in FSD_EXPECTED.replace("\n", "|").split("|") if item.strip())
    assert len(expected) == 41
    assert FSD2018_CATEGORY == expected


@pytest.mark.parametrize("name, category", [
    ("microwave", "things"), ("doorbell", "things"), ("human_whistle", "human"), ("scatter", None),
    ("cathedral", None), ("white", "background"), ("Babble-2", "human"), ("f16", "things"),
    ("hfchannel", "background"), ("waves_on_shore", "natural"), ("dog_bark_rain", "animal"), ("xyz", None),
])
def test_keyword_category_matches_exact_words(name, category):
    assert keyword_category(name) == category


def test_keyword_table_categories_are_known():
    assert set(KEYWORD_CATEGORY.values()) <= set(CATEGORIES)


# ---- worker targets against librosa ----------------------------------------------------------

def speechlike() -> np.ndarray:
    rng = np.random.default_rng(3)
    return (harmonic(140, 1.0) + 0.01 * rng.standard_normal(SR)).astype(np.float32)


def test_lps_matches_librosa():
    x = speechlike()
    ours = features.lps(torch.from_numpy(x)[None])[0].numpy()
    spec = librosa.stft(x.astype(np.float64), n_fft=2048, hop_length=160, win_length=400, window="hann",
                        center=True, pad_mode="constant")
    ref = 10 * np.log10(np.maximum(np.abs(spec.T) ** 2, 1e-10))
    assert ours.shape == ref.shape == (101, 1025)
    # Our float32 STFT rounds at ~1e-7 of the peak: bins 100 dB below it (the deepest here) move by
    # ~0.01 dB with the CPU's instruction set, so the tight bound holds within 90 dB of the peak.
    loud = ref > ref.max() - 90
    assert loud.mean() > 0.99
    assert np.max(np.abs(ours - ref)[loud]) < 1e-2
    assert np.max(np.abs(ours - ref)) < 5e-2


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

def test_every_worker_trains_the_encoder():
    enc = PASEEncoder(sinc_filters=8, sinc_kernel=33, channels=(8, 8, 8, 8, 8, 8, 8))
    wav = torch.randn(4, SR) * 0.1
    names = ["waveform", "lps", "mfcc", "prosody", "lim", "gim", "spc", "snr", "category", "region"]
    targets = {"waveform": wav, "lps": features.lps(wav), "mfcc": features.mfcc(wav), "prosody": torch.randn(4, 101, 4),
               "snr": torch.tensor([0, 1, 5, 2]), "category": torch.tensor([0, 7, 3, 1]),
               "region": torch.tensor([3, 0, 1, 2])}
    workers = WorkerSet(names, 100, {"lps": 1025, "mfcc": 20, "prosody": 4}, waveform_decoder={"channels": [16, 8, 8]})
    assert enc(wav).shape == (4, 100, 100)
    for name in names:
        enc.zero_grad()
        _, parts = workers(enc(wav), targets)
        parts[name].backward()
        assert torch.isfinite(parts[name]) and enc.proj.weight.grad.abs().sum() > 0, name


def test_adversarial_mode_reverses_only_the_encoders_gradient():
    """learn: encoder and classifiers descend the noise loss; adversarial (gradient reversal): the
    classifiers get the same gradient, the embedding the negated one; the loss value is the same
    positive weighted sum in both (never a negated cross-entropy the classifiers would climb)."""
    targets = {"snr": torch.tensor([0, 1, 5, 2]), "category": torch.tensor([0, 7, 3, 1]),
               "region": torch.tensor([3, 0, 1, 2])}
    emb0 = torch.randn(4, 20, 16)
    grads, totals, worker_grads = {}, {}, {}
    for mode in ("learn", "adversarial"):
        torch.manual_seed(0)
        workers = WorkerSet(["snr", "category", "region"], 16, {}, {"snr": 0.1, "category": 0.2, "region": 0.3},
                            noise_mode=mode)
        emb = emb0.clone().requires_grad_(True)
        total, parts = workers(emb, targets)
        total.backward()
        grads[mode], totals[mode] = emb.grad, float(total.detach())
        worker_grads[mode] = workers.workers["snr"].out.weight.grad.clone()
        expected = 0.1 * parts["snr"] + 0.2 * parts["category"] + 0.3 * parts["region"]
        assert float(total.detach()) == pytest.approx(float(expected.detach()))
    assert totals["learn"] == pytest.approx(totals["adversarial"])
    assert torch.allclose(grads["adversarial"], -grads["learn"])
    assert torch.allclose(worker_grads["adversarial"], worker_grads["learn"])
    with pytest.raises(ValueError, match="noise_mode"):
        WorkerSet(["snr"], 16, {}, noise_mode="-1")


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


def head_stage(tmp_path, hp: dict):
    """A minimal started stage for the kit (exp dir under tmp_path)."""
    from speechlib.tasks.stage import Stage

    return Stage("downstream.1", hp, {"device": "cpu"}, tmp_path / "exp", "test", {"job": 1, "nj": 1})


def test_nan_in_head_training_names_the_utterances(tmp_path):
    from speechlib.tasks.mos_pretrain.downstream import train_heads

    embs = {k: np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32) for k in ("train", "valid", "test")}
    embs["train"][5, 2] = np.nan
    targets = {k: np.full(8, 3.0, np.float32) for k in embs}
    utts = {k: [f"{k}-u{i}" for i in range(8)] for k in embs}
    hp = {"sample_rate": SR, "corpus": "mini", "downstream": {"epochs": 2, "patience": 5, "log_every": 1, "batch_size": 16, "lr": 1e-3,
                         "weight_decay": 0.0, "hidden": 8, "dropout": 0.0}}
    with pytest.raises(TrainingDiverged, match="train-u5"):
        train_heads(head_stage(tmp_path, hp), "encoders/x/seed1", "vcc", embs, targets, utts, hp, [1], "stamp")



# ---- real release formats (fixtures written by hand in the releases' exact layouts) -----------

NISQA_HEADER = ("db,con,file,con_description,filename_deg,filename_ref,source,lang,votes,mos,noi,col,dis,loud,"
                "noi_std,col_std,dis_std,loud_std,mos_std,filepath_deg,filepath_ref")


def nisqa_line(db: str, name: str, mos: str) -> str:
    return (f"{db},1,{name},white noise,{name}.wav,{name}_ref.wav,librivox,en,5,{mos},3.2,4.0,4.1,3.9,"
            f"0.8,0.7,0.9,0.6,0.9,{db}/deg/{name}.wav,{db}/ref/{name}_ref.wav")


def test_nisqa_corpus_file_selects_the_set_by_db(tmp_path):
    from speechlib.data.nisqa import read_nisqa_set

    for db, name in (("NISQA_TRAIN_SIM", "c1"), ("NISQA_TRAIN_SIM", "c2"), ("NISQA_TEST_FOR", "t1")):
        write_wav(tmp_path / db / "deg" / f"{name}.wav")
    lines = [NISQA_HEADER, nisqa_line("NISQA_TRAIN_SIM", "c1", "2.5"), nisqa_line("NISQA_TEST_FOR", "t1", "4.25"),
             nisqa_line("NISQA_TRAIN_SIM", "c2", "3.75")]
    (tmp_path / "NISQA_corpus_file.csv").write_text("\n".join(lines) + "\n")
    rows = read_nisqa_set(tmp_path, "NISQA_TRAIN_SIM")
    assert [(r[0], r[2]) for r in rows] == [("NISQA_TRAIN_SIM-deg-c1", 2.5), ("NISQA_TRAIN_SIM-deg-c2", 3.75)]
    assert [r[2] for r in read_nisqa_set(tmp_path, "NISQA_TEST_FOR")] == [4.25]
    (tmp_path / "NISQA_corpus_file.csv").unlink()  # per-set csv when the corpus file is absent
    (tmp_path / "NISQA_TEST_FOR" / "NISQA_TEST_FOR_file.csv").write_text(
        NISQA_HEADER + "\n" + nisqa_line("NISQA_TEST_FOR", "t1", "4.25") + "\n")
    assert [r[2] for r in read_nisqa_set(tmp_path, "NISQA_TEST_FOR")] == [4.25]


# rows of vcc2018_evaluation_mos.txt: no header, 16 fields, MOS in field 11, audio in field 15
VCC_ROWS = """\
1,20001,3,1,B01,\\N,VCC2SF3,VCC2TF1,HUB,\\N,4,\\N,,2018-04-03 10:12:01,B01_VCC2TF1_VCC2SF3_30001_HUB.wav,\\N
1,20002,5,7,B01,\\N,VCC2SF3,VCC2TF1,HUB,\\N,2,\\N,,2018-04-03 11:40:55,B01_VCC2TF1_VCC2SF3_30001_HUB.wav,\\N
1,20002,5,8,N17,\\N,VCC2SM3,VCC2TF1,SPO,\\N,1,\\N,,2018-04-03 11:41:20,N17_VCC2TF1_VCC2SM3_30004_SPO.wav,\\N
1,20003,2,4,B01,\\N,VCC2SF3,VCC2TF1,HUB,\\N,5,\\N,,2018-04-04 09:01:11,B01_VCC2TF1_VCC2SF3_30001_HUB.wav,\\N
"""


def test_vcc2018_raw_ratings_are_averaged_per_file(tmp_path):
    from speechlib.data.vcc2018 import read_evaluation_mos, read_vcc2018

    root = tmp_path / "vcc"
    for name in ("B01_VCC2TF1_VCC2SF3_30001_HUB.wav", "N17_VCC2TF1_VCC2SM3_30004_SPO.wav"):
        write_wav(root / "wav" / name)
    (root / "vcc2018_listening_test_scores").mkdir(parents=True)
    ratings = root / "vcc2018_listening_test_scores" / "vcc2018_evaluation_mos.txt"
    ratings.write_text(VCC_ROWS)
    rows, source = read_vcc2018(root)
    assert {r[0]: r[2] for r in rows} == {"B01_VCC2TF1_VCC2SF3_30001_HUB": pytest.approx((4 + 2 + 5) / 3),
                                          "N17_VCC2TF1_VCC2SM3_30004_SPO": 1.0}
    assert "averaged" in source
    ratings.write_text(VCC_ROWS.replace(",\\N,2,\\N,", ",\\N,6,\\N,"))
    with pytest.raises(InputError, match=r"vcc2018_evaluation_mos.txt:2: sample 'B01_VCC2TF1_VCC2SF3_30001_HUB.wav'"):
        read_evaluation_mos(ratings, root / "wav")
    ratings.write_text("1,20001,3\n")
    with pytest.raises(InputError, match=r":1: expected 16 comma-separated fields"):
        read_evaluation_mos(ratings, root / "wav")


def test_external_checkpoints_load_strictly(tmp_path):
    from speechlib.tasks.mos_pretrain.external import feature_extractor_normalizes, load_strict

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    state = model.state_dict()
    load_strict(model, dict(state), "ok.pt")
    partial = {k: v for k, v in state.items() if k != "1.weight"}
    partial["head.bias"] = torch.zeros(1)
    with pytest.raises(InputError, match=r"bad.pt: .*missing keys 1.weight; unexpected keys head.bias"):
        load_strict(model, partial, "bad.pt")
    (tmp_path / "preprocessor_config.json").write_text('{"do_normalize": true, "sampling_rate": 16000}')
    assert feature_extractor_normalizes(tmp_path)
    (tmp_path / "preprocessor_config.json").unlink()
    with pytest.raises(InputError, match="preprocessor_config.json"):
        feature_extractor_normalizes(tmp_path)


def test_external_wrapper_normalises_like_the_feature_extractor():
    from speechlib.tasks.mos_pretrain.external import _FrameWrapper

    class Echo(torch.nn.Module):
        def forward(self, wav):
            return wav

    wav = torch.randn(2, 1000) * 0.3 + 0.1
    out = _FrameWrapper(Echo(), "dasheng", normalize=True)(wav)
    ref = (wav.numpy() - wav.numpy().mean(-1, keepdims=True)) / np.sqrt(wav.numpy().var(-1, keepdims=True) + 1e-7)
    assert np.allclose(out.numpy(), ref, atol=1e-5)


# ---- fresh draws ------------------------------------------------------------------------------

@pytest.fixture()
def draw_plan(tmp_path):
    from speechlib.tasks.mos_pretrain.noisy import DrawPlan

    speech, noise, cats = {}, {}, {}
    for i in range(12):
        path = tmp_path / "speech" / f"u{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, 0.2 * harmonic(100 + 10 * i, 2.0), SR)
        speech[f"u{i:02d}"] = str(path)
    rng = np.random.default_rng(5)
    for i, cat in enumerate(("things", "music", "animal")):
        path = tmp_path / "noise" / f"n{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, (0.1 * rng.standard_normal(SR // 2)).astype(np.float32), SR)
        noise[f"n{i}"], cats[f"n{i}"] = str(path), cat
    return DrawPlan(speech, noise, cats, SR, 0.5, seed=3, noisy=True)


def test_draws_are_fresh_per_epoch_reproducible_and_balanced(draw_plan):
    a1, c1, l1, d1 = draw_plan.example(4, 1)
    a2, c2, l2, d2 = draw_plan.example(4, 1)
    assert np.array_equal(a1, a2) and l1 == l2 and d1 == d2  # same epoch: the same example
    other = [draw_plan.example(4, e) for e in range(2, 6)]
    assert any(not np.array_equal(c1, o[1]) for o in other)  # new crop
    assert len({o[3] for o in other} | {d1}) > 1  # new clip / SNR
    for epoch in (1, 2):
        snrs = [draw_plan.example(i, epoch)[2]["snr"] for i in range(12)]
        assert sorted(snrs) == sorted(list(range(6)) * 2)  # every SNR class twice per epoch


def test_labels_come_from_the_mixture_used(draw_plan):
    for index in range(12):
        mixture, clean, labels, desc = draw_plan.example(index, 2)
        if labels["snr"] == snr_class(None):
            assert np.array_equal(mixture, clean) and labels["region"] == 3 and labels["category"] == 7
            continue
        noise = mixture.astype(np.float64) - clean
        measured = 10 * np.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(noise ** 2))
        assert measured == pytest.approx(SNRS_DB[labels["snr"]], abs=0.05)
        assert labels["region"] == spectral_region(noise, SR)
        assert labels["category"] == category_class(draw_plan.noise_cats[desc.split("@")[0]])


# ---- caches, heads, statistics --------------------------------------------------------------

def test_embedding_cache_is_keyed_by_encoder_and_files(tmp_path):
    """The issue's corruption: a re-run with another seed under the same tag re-draws the MOS files
    under the same names and counts and retrains the encoder; the cache must not be reused."""
    from speechlib.tasks.mos_pretrain.downstream import cached_embeddings
    from speechlib.tasks.mos_pretrain.systems import embed_files, encoder_identity, save_encoder

    hp = {"sample_rate": SR, "mos_max_seconds": None}
    items = []
    for i in range(3):
        path = tmp_path / "set" / f"f{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, tone(200 + 100 * i, 0.5), SR)
        items.append((f"f{i}", str(path)))
    kwargs = {"sinc_filters": 8, "sinc_kernel": 33, "channels": [8, 8, 8, 8, 8, 8, 8]}
    runs = {}
    for seed in (1, 2):
        torch.manual_seed(seed)
        encoder = PASEEncoder(**kwargs).eval()
        save_encoder(tmp_path / f"enc{seed}", encoder, "pase", kwargs, {"seed": seed})
        runs[seed] = encoder
    folder = tmp_path / "run"
    first = cached_embeddings(runs[1], folder, items, hp, "vcc_test", encoder_identity(tmp_path / "enc1"))
    again = cached_embeddings(None, folder, items, hp, "vcc_test", encoder_identity(tmp_path / "enc1"))
    assert np.array_equal(first, again)  # same encoder, same files: read back (encoder never called)
    # seed 2: another encoder, and the set re-drawn into the same file names
    for i, (_, path) in enumerate(items):
        soundfile.write(path, tone(900 + 50 * i, 0.5), SR)
    second = cached_embeddings(runs[2], folder, items, hp, "vcc_test", encoder_identity(tmp_path / "enc2"))
    assert np.allclose(second, embed_files(runs[2], items, SR, None), atol=1e-6)
    assert not np.allclose(second, first)
    assert len(list(folder.glob("emb_vcc_test.*.npy"))) == 1  # the stale cache is gone
    # same encoder, files rewritten with new content: recomputed again
    soundfile.write(items[0][1], tone(3000, 0.5), SR)
    third = cached_embeddings(runs[2], folder, items, hp, "vcc_test", encoder_identity(tmp_path / "enc2"))
    assert not np.allclose(third[0], second[0]) and np.allclose(third[1:], second[1:], atol=1e-6)
    # the diagnosis's layer statistics: the output's mean is what the heads see (folded inference
    # path); mean + standard deviation of a block's frames against the block run by hand
    from speechlib.tasks.mos_pretrain.diagnose import layer_statistics

    stats = layer_statistics(runs[2], items, SR)
    assert set(stats) == {"sinc", *(f"block{i}" for i in range(1, 8)), "output"}
    assert np.allclose(stats["output"]["mean"], third, atol=1e-5)
    with torch.no_grad():
        x = runs[2].sinc(torch.from_numpy(soundfile.read(items[1][1], dtype="float32")[0])[None, :, None])
        frames = runs[2].blocks[:2](runs[2].sinc_act(runs[2].sinc_norm(x.transpose(1, 2))))[0].T.numpy()
    assert np.allclose(stats["block2"]["mean_std"][1], np.concatenate([frames.mean(0), frames.std(0, ddof=1)]),
                       atol=1e-5)


def test_pase_inference_path_equals_the_layer_by_layer_forward_and_follows_new_weights():
    torch.manual_seed(0)
    kwargs = {"sinc_filters": 8, "sinc_kernel": 33, "channels": [8, 8, 16, 16, 16, 16, 16]}
    encoder = PASEEncoder(**kwargs).train()
    for _ in range(2):
        encoder(torch.randn(3, SR // 2) * 0.1)  # BatchNorm statistics, not the initial 0/1
    encoder.eval()
    wav = torch.randn(2, SR) * 0.1
    with torch.enable_grad():
        reference = encoder(wav).detach()  # SincConv + BatchNorm layers, as in training
    with torch.inference_mode():
        assert torch.allclose(encoder(wav), reference, atol=1e-5)
    other = PASEEncoder(**kwargs).eval()
    other.load_state_dict({k: v * 1.1 if v.is_floating_point() else v for k, v in encoder.state_dict().items()})
    with torch.inference_mode():
        before = other(wav)
    other.load_state_dict(encoder.state_dict())  # in-place copy: the cached filters must follow
    with torch.inference_mode():
        assert torch.allclose(other(wav), reference, atol=1e-5) and not torch.allclose(before, reference, atol=1e-3)


def test_degradation_chain_features_by_hand():
    from speechlib.tasks.mos_pretrain.diagnose import degradation_features

    # order: reverb, low-pass cutoff / 8 kHz, aac, mp3, opus, kb/s / 32, packet loss, clipping, (40 - SNR) / 40
    assert degradation_features("clean") == [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    got = degradation_features("reverb, lowpass 2000 Hz, opus 8 kb/s, packet loss 10 %, clipping, noise 30.0 dB")
    assert got == pytest.approx([1.0, 0.25, 0.0, 0.0, 1.0, 0.25, 0.1, 1.0, 0.25])


def test_reference_path_of_both_mini_layouts():
    from speechlib.tasks.mos_pretrain.diagnose import reference_path

    assert reference_path("d/mini_mos/vcc/wav/a-1.wav") == "d/mini_mos/vcc/ref/a-1.wav"
    assert reference_path("d/nisqa/MINI_TEST/deg/b-2.wav") == "d/nisqa/MINI_TEST/ref/b-2.wav"


def test_encoder_ceilings_fit_the_cached_embeddings(tmp_path):
    """Embeddings that hold the label give a ridge LCC near 1, pure noise one near 0, and the
    heads' LCC is read from the run's own mos_<set>.json."""
    import json

    from speechlib.tasks.mos_pretrain.diagnose import encoder_ceilings

    rng = np.random.default_rng(0)
    y = {split: rng.uniform(1, 5, n).astype(np.float32) for split, n in (("train", 80), ("valid", 20), ("test", 60))}
    sets = {"vcc": {split: ([], values) for split, values in y.items()}}
    for system, signal in (("pase_baseline", 1.0), ("pase_random", 0.0)):
        folder = tmp_path / "encoders" / system / "seed1"
        folder.mkdir(parents=True)
        for split, values in y.items():
            x = np.concatenate([signal * values[:, None], rng.normal(size=(len(values), 5))], axis=1)
            np.save(folder / f"emb_vcc_{split}.abc.npy", x)
        (folder / "mos_vcc.json").write_text(json.dumps({"lcc": 0.5}))
    got = encoder_ceilings(tmp_path, sets, ["pase_baseline", "pase_random", "logmel"])
    assert set(got) == {"vcc: pase_baseline", "vcc: pase_random"}  # logmel has no cache: left out
    assert got["vcc: pase_baseline"]["ridge_lcc"] > 0.99 and abs(got["vcc: pase_random"]["ridge_lcc"]) < 0.35
    assert got["vcc: pase_baseline"]["head_lcc"] == 0.5


def test_pretraining_data_fingerprint_follows_the_files_not_only_their_names(tmp_path):
    """A rebuilt corpus under the same file names (the mini corpus in a new format) retrains."""
    import os

    from speechlib.io.kaldi import write_table
    from speechlib.tasks.mos_pretrain.pretrain import data_fingerprint

    wav = tmp_path / "a.wav"
    soundfile.write(wav, tone(300, 0.2), SR)
    for part in ("pretrain_train", "pretrain_eval", "noise_train"):
        write_table(tmp_path / part / "wav.scp", {"a": str(wav)})
    write_table(tmp_path / "noise_train" / "utt2category", {"a": "music"})
    hp = {"data_folder": str(tmp_path), "chunk_seconds": 0.5, "sample_rate": SR}
    before = data_fingerprint(hp)
    assert data_fingerprint(hp) == before
    soundfile.write(wav, tone(300, 0.3), SR)  # same name, other content (size)
    os.utime(wav, ns=(1, 1))
    assert data_fingerprint(hp) != before


def test_head_input_standardisation_matches_a_hand_computation():
    from speechlib.nn.mos_head import MOSHeadEnsemble

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((50, 6)) * [0.1, 1, 5, 0.01, 2, 3] + [-1.4, 3, 0, 7, -2, 0.5]).astype(np.float32)
    ens = MOSHeadEnsemble(2, 6, hidden=5, dropout=0.0, seeds=[1, 2])
    ens.set_input_stats(torch.from_numpy(x))
    x64 = x.astype(np.float64)
    z = ((x64 - x64.mean(0)) / x64.std(0, ddof=1)).astype(np.float32)  # torch.std is the unbiased estimate
    plain = ens.head(1)
    plain.in_mean.zero_()
    plain.in_std.fill_(1.0)
    with torch.no_grad():
        assert torch.allclose(ens(torch.from_numpy(x))[1], plain(torch.from_numpy(z)), atol=1e-4)
        assert torch.allclose(ens.head(1)(torch.from_numpy(x)), plain(torch.from_numpy(z)), atol=1e-4)


def test_head_ensemble_equals_heads_trained_alone():
    from speechlib.nn.mos_head import MOSHeadEnsemble

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((40, 6)).astype(np.float32))
    y = torch.from_numpy(rng.uniform(1, 5, 40).astype(np.float32))
    seeds = [3, 8]
    ens = MOSHeadEnsemble(2, 6, hidden=5, dropout=0.0, seeds=seeds)
    opt = torch.optim.Adam(ens.parameters(), lr=1e-2, weight_decay=1e-3)
    singles = []
    for seed in seeds:
        torch.manual_seed(seed)
        head = MOSHead(6, 5, 0.0)
        singles.append((head, torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=1e-3)))
    orders = torch.stack([torch.randperm(40, generator=torch.Generator().manual_seed(s)) for s in seeds])
    for start in range(0, 40, 8):
        idx = orders[:, start:start + 8]
        opt.zero_grad()
        ((ens(x[idx]) - y[idx]) ** 2).mean(1).sum().backward()
        opt.step()
        for k, (head, hopt) in enumerate(singles):
            hopt.zero_grad()
            torch.nn.functional.mse_loss(head(x[idx[k]]), y[idx[k]]).backward()
            hopt.step()
    for k, (head, _) in enumerate(singles):
        assert torch.allclose(ens.head(k)(x), head(x), atol=1e-5)


def test_heads_stop_early_and_report_every_head(tmp_path):
    from speechlib.tasks.mos_pretrain.downstream import train_heads

    rng = np.random.default_rng(0)
    embs = {k: rng.standard_normal((30, 4)).astype(np.float32) for k in ("train", "valid", "test")}
    targets = {k: (3 + embs[k][:, 0]).clip(1, 5).astype(np.float32) for k in embs}
    utts = {k: [f"{k}{i}" for i in range(30)] for k in embs}
    hp = {"sample_rate": SR, "corpus": "mini", "downstream": {"epochs": 400, "patience": 5, "log_every": 10, "batch_size": 16, "lr": 1e-1,
                         "weight_decay": 0.0, "hidden": 8, "dropout": 0.0}}
    result = train_heads(head_stage(tmp_path, hp), "encoders/x/seed1", "vcc", embs, targets, utts, hp, [1, 2, 3],
                         "stamp")
    assert result["epochs_run"] < 400 and len(result["heads"]) == 3
    assert max(h["best_epoch"] for h in result["heads"]) + 5 == result["epochs_run"]  # patience 5, then stop
    head_dir = tmp_path / "exp" / "encoders" / "x" / "seed1" / "head_vcc"
    assert (head_dir / "save").is_dir() and (head_dir / "train_log.txt").is_file()  # the kit's layout
    assert (head_dir / "tensorboard").is_dir() and (head_dir / "config.fingerprint").read_text().strip() == "stamp"
    saved = load_head(head_dir)  # the first head, standardisation included, as predict loads it
    with torch.no_grad():
        again = saved(torch.from_numpy(embs["test"])).numpy()
    assert np.allclose(again, result["heads"][0]["predictions"], atol=1e-5)
    assert result["lcc"] == pytest.approx(np.mean([h["lcc"] for h in result["heads"]]))
    pred = np.array(result["heads"][1]["predictions"])
    assert result["heads"][1]["mse"] == pytest.approx(mse(pred, targets["test"]))


def test_t_interval_and_batch_correlations_match_scipy():
    from speechlib.metrics.seed_stats import batch_lcc, batch_srcc, t_interval

    values = np.array([0.61, 0.65, 0.58, 0.70, 0.63])
    mean, std, low, high = t_interval(values)
    ref = scipy.stats.t.interval(0.95, 4, loc=values.mean(), scale=scipy.stats.sem(values))
    assert (low, high) == pytest.approx(ref) and std == pytest.approx(values.std(ddof=1))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 50)), np.round(rng.standard_normal(50), 1)
    assert batch_lcc(a, np.broadcast_to(b, a.shape)) == pytest.approx([scipy.stats.pearsonr(r, b)[0] for r in a])
    assert batch_srcc(a, np.broadcast_to(b, a.shape)) == pytest.approx([scipy.stats.spearmanr(r, b)[0] for r in a])


def test_seeded_difference_finds_a_real_gap_and_not_a_null_one():
    from speechlib.metrics.seed_stats import seeded_accuracy_difference, seeded_difference

    rng = np.random.default_rng(2)
    target = rng.uniform(1, 5, 300)
    good = target + rng.normal(0, 0.5, (5, 3, 300))
    bad = target + rng.normal(0, 1.5, (5, 3, 300))
    same = target + rng.normal(0, 0.5, (5, 3, 300))
    diff, low, high = seeded_difference(good, bad, target, "lcc", samples=300)
    assert low > 0 and low <= diff <= high
    _, low, high = seeded_difference(good, same, target, "lcc", samples=300)
    assert low < 0 < high
    acc_a, acc_b = (rng.random((5, 200)) < 0.8).astype(int), (rng.random((5, 200)) < 0.5).astype(int)
    diff, low, high = seeded_accuracy_difference(acc_a, acc_b, samples=300)
    assert diff == pytest.approx(acc_a.mean() - acc_b.mean()) and low > 0.1


def test_degradation_chain_keeps_length_and_applies_every_step(monkeypatch):
    from speechlib.tasks.mos_pretrain import mini_mos

    monkeypatch.setattr(mini_mos, "PROBS", {k: 1.0 for k in mini_mos.PROBS})
    clean = 0.3 * harmonic(150, 1.0)
    noise = np.random.default_rng(0).standard_normal(SR // 3).astype(np.float32)
    out, desc = mini_mos.degrade(clean, noise, np.random.default_rng(1), SR)
    assert out.shape == clean.shape and out.dtype == np.float32 and np.all(np.isfinite(out))
    for step in ("reverb", "lowpass", "kb/s", "packet loss", "clipping", "noise"):
        assert step in desc


def test_distillmos_labels_cached_by_file_content(tmp_path, monkeypatch):
    """Scored files are looked up by the sha256 of their bytes: a re-run scores nothing, a changed
    file is scored again, a run killed after its first chunk resumes with the rest, and another
    distillmos release ignores the cache."""
    from speechlib.tasks.mos_pretrain import mini_mos

    scored: list[str] = []
    killed = {"after_first": True}

    def fake_scores(paths):  # stands in for the model: the file's byte count, and records the call
        if killed["after_first"] and scored:
            raise KeyboardInterrupt
        scored.extend(Path(p).name for p in paths)
        return [float(len(Path(p).read_bytes())) for p in paths]

    monkeypatch.setattr(mini_mos, "_score_files", fake_scores)
    files = {"a.wav": b"aaa", "b.wav": b"bbbb", "c.wav": b"aaa"}  # c has a's content
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    paths, cache = [str(tmp_path / n) for n in files], tmp_path / "cache.json"
    with pytest.raises(KeyboardInterrupt):  # killed after the first chunk of one file
        mini_mos.distillmos_scores(paths, nj=1, cache=cache, chunk=1)
    assert len(scored) == 1 and len(json.loads(cache.read_text())["scores"]) == 1
    killed["after_first"] = False
    assert mini_mos.distillmos_scores(paths, nj=1, cache=cache, chunk=1) == [3.0, 4.0, 3.0]
    assert len(scored) == 2  # the resumed run scored only the other content; c reused a's score
    assert mini_mos.distillmos_scores(paths, nj=1, cache=cache) == [3.0, 4.0, 3.0] and len(scored) == 2
    (tmp_path / "b.wav").write_bytes(b"bbbbb")
    assert mini_mos.distillmos_scores(paths, nj=1, cache=cache) == [3.0, 5.0, 3.0] and scored[-1] == "b.wav"
    monkeypatch.setattr(mini_mos, "_label_model", lambda: "distillmos 0.0")
    scored.clear()
    mini_mos.distillmos_scores(paths, nj=1, cache=cache)
    assert len(scored) == 2


@pytest.fixture(scope="module")
def distillmos_model():
    from distillmos import ConvTransformerSQAModel

    return ConvTransformerSQAModel().eval()


@pytest.mark.parametrize("samples", [161, 23337, 118000])  # shortest, a mini file, the last fast-path length
def test_distillmos_with_zero_features_equals_the_model(samples, distillmos_model):
    """The zero-padding shortcut gives the packaged model's own output (its full 7.68 s window)."""
    from speechlib.tasks.mos_pretrain import mini_mos

    signal = torch.from_numpy(0.3 * harmonic(140, samples / SR) + 0.01 * np.random.default_rng(0).standard_normal(
        samples).astype(np.float32))[None]
    with torch.inference_mode():
        assert mini_mos.distillmos(signal).item() == pytest.approx(distillmos_model(signal).item(), abs=1e-6)


def test_mini_mos_files_are_the_same_for_any_nj(tmp_path):
    """Each file's degradation is drawn from (seed, utterance id): one process or two build the
    same files and rows, in the order given; a silent utterance is dropped."""
    from speechlib.tasks.mos_pretrain import mini_mos

    utts = []
    for k in range(5):
        wav = tmp_path / "in" / f"u{k}.wav"
        wav.parent.mkdir(exist_ok=True)
        soundfile.write(wav, np.zeros(SR // 4, np.float32) if k == 3 else 0.3 * harmonic(120 + 20 * k, 0.4), SR)
        utts.append((f"u{k}", str(wav)))
    noises = [np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32)]
    built = {}
    for nj in (1, 2):
        root = tmp_path / f"nj{nj}"
        built[nj] = mini_mos.build_files(utts, noises, root / "set", root, "set", 7, SR, 2.5, nj)
        assert [row["file"] for row in built[nj]] == ["u0", "u1", "u2", "u4"]
    assert built[1] == built[2]
    for row in built[1]:
        assert (tmp_path / "nj1" / row["filepath_deg"]).read_bytes() == (tmp_path / "nj2" / row["filepath_deg"]).read_bytes()
