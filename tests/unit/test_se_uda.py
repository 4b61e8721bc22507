"""Unit tests of egs/se_uda's pieces: SI-SDR, gradient reversal, remix, SRST selection, STFT,
mixing, metrics on bad input, data prep on real-layout fixtures, and the enhance CLI."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from speechlib.data import dns, wham
from speechlib.io.errors import InputError
from speechlib.io.kaldi import read_dict
from speechlib.metrics import enhancement
from speechlib.nn.layers import GradientReversal
from speechlib.nn.losses import neg_si_sdr, si_sdr
from speechlib.nn.unet import DomainClassifier, SpeechNoiseUNet
from speechlib.signal.mixing import fit_length, mix_at_snr, snr_db
from speechlib.signal.stft import ComplexSTFT
from speechlib.tasks.se_uda import selftrain
from tests.helpers import PYTHON, run


def _independent_si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Textbook form: project on the reference, compare target and residual energies."""
    est, ref = est - est.mean(), ref - ref.mean()
    s_target = (est @ ref) / (ref @ ref) * ref
    e = est - s_target
    return 10 * math.log10((s_target @ s_target) / (e @ e))


def test_si_sdr_matches_formula_and_is_scale_invariant():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(8000)
    est = ref + 0.3 * rng.standard_normal(8000)
    expected = _independent_si_sdr(est, ref)
    assert enhancement.si_sdr(est, ref) == pytest.approx(expected, abs=1e-6)
    torch_value = si_sdr(torch.tensor(est)[None], torch.tensor(ref)[None]).item()
    assert torch_value == pytest.approx(expected, abs=1e-4)
    for scale in (0.01, 3.0, 100.0):
        assert enhancement.si_sdr(scale * est, ref) == pytest.approx(expected, abs=1e-6)
        assert si_sdr(torch.tensor(scale * est)[None], torch.tensor(ref)[None]).item() == pytest.approx(expected, abs=1e-4)
    assert neg_si_sdr(torch.tensor(est)[None], torch.tensor(ref)[None], clamp=1.0).item() == -1.0


def test_gradient_reversal_flips_only_the_encoder_gradient():
    torch.manual_seed(0)
    encoder, head = torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)
    x = torch.randn(5, 4)

    def grads(reverse: bool):
        encoder.zero_grad(), head.zero_grad()
        features = encoder(x)
        if reverse:
            features = GradientReversal(1.0)(features)
        head(features).pow(2).sum().backward()
        return [p.grad.clone() for p in encoder.parameters()], [p.grad.clone() for p in head.parameters()]

    enc_plain, head_plain = grads(False)
    enc_rev, head_rev = grads(True)
    for a, b in zip(enc_plain, enc_rev):
        torch.testing.assert_close(b, -a)
    for a, b in zip(head_plain, head_rev):
        torch.testing.assert_close(b, a)
    assert torch.equal(GradientReversal()(x), x)


def test_remix_keeps_speech_noise_pairing():
    speech = torch.arange(4.0)[:, None] * torch.ones(4, 6)          # row i is all i
    noise = 10 * (torch.arange(4.0)[:, None] + 1) * torch.ones(4, 6)  # row i is all 10(i+1)
    perm = torch.tensor([2, 0, 3, 1])
    mixture, speech_t, noise_t = selftrain.remix(speech, noise, perm)
    torch.testing.assert_close(mixture, speech_t + noise_t)
    torch.testing.assert_close(speech_t, speech)
    for i, j in enumerate(perm.tolist()):
        torch.testing.assert_close(noise_t[i], noise[j])
        assert float(mixture[i, 0]) == i + 10 * (j + 1)


def test_srst_selection_and_schedule():
    probs = np.array([0.1, 0.9, 0.5, 0.95, 0.2, 0.6, 0.3, 0.7, 0.05, 0.4])
    ranking = selftrain.rank_source_by_similarity(probs)
    assert list(selftrain.select_subset(ranking, 0.3)) == [3, 1, 7]
    assert list(selftrain.select_subset(ranking, 0.0)) == []
    shares = [selftrain.source_share(k) for k in range(1, 13)]
    assert shares[:4] == pytest.approx([0.30, 0.27, 0.24, 0.21])
    assert shares[10:] == [0.0, 0.0]
    weights = [selftrain.source_weight(k, 2.0) for k in range(1, 12)]
    assert weights[0] == 2.0 and weights[-1] == 0.0 and all(a > b for a, b in zip(weights[:10], weights[1:11]))
    random_order = selftrain.random_ranking(10, seed=1)
    assert sorted(random_order) == list(range(10)) and list(random_order) != list(ranking)


def test_ema_teacher_update():
    teacher, student = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = teacher.weight.detach().clone()
    selftrain.ema_update(teacher, student, 0.9)
    torch.testing.assert_close(teacher.weight, 0.9 * before + 0.1 * student.weight.detach())


def test_stft_istft_reconstructs():
    stft = ComplexSTFT(512, 256, "hamming")
    wav = torch.randn(2, 16000)
    maps = stft.stft(wav)
    assert maps.shape == (2, 2, 257, 16000 // 256 + 1)
    torch.testing.assert_close(stft.istft(maps, wav.shape[-1]), wav, atol=1e-4, rtol=1e-4)


def test_unet_shapes_and_classifier():
    model = SpeechNoiseUNet((4, 8, 8, 8))
    wav = torch.randn(3, 7000)
    speech, noise, bottleneck = model(wav, return_bottleneck=True)
    assert speech.shape == noise.shape == wav.shape
    assert bottleneck.shape[1:3] == model.bottleneck_shape
    assert DomainClassifier(*model.bottleneck_shape, hidden=8)(bottleneck).shape == (3,)


def test_mixing_hits_the_snr_and_sums():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal((5, 4000)).astype(np.float32) * 0.1
    noise = rng.standard_normal((5, 4000)).astype(np.float32)
    snrs = np.array([-5.0, 0.0, 5.0, 10.0, 20.0])
    mixture, s, n = mix_at_snr(speech, noise, snrs)
    np.testing.assert_allclose(snr_db(s, n), snrs, atol=1e-3)
    np.testing.assert_allclose(mixture, s + n, atol=1e-6)
    assert np.max(np.abs(mixture)) <= 0.99 + 1e-6
    assert fit_length(np.ones(10, np.float32), 25, rng).shape == (25,)
    padded = fit_length(np.ones(10, np.float32), 25, rng, pad="zeros")
    assert padded.sum() == 10


def test_pesq_nan_on_silent_or_garbage_estimate():
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    ref = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    assert math.isnan(enhancement.pesq_wb(np.zeros_like(ref), ref))
    assert math.isnan(enhancement.pesq_wb(np.full_like(ref, np.nan), ref))
    scores = enhancement.intrusive_scores(ref + 0.01 * rng.standard_normal(ref.size).astype(np.float32), ref)
    assert 1.0 < scores["pesq"] <= 4.7 and 0.5 < scores["stoi"] <= 1.0 and scores["si_sdr"] > 20


def _write(path: Path, seconds: float = 0.5, sr: int = 16000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(len(str(path))).standard_normal((int(seconds * sr), channels)) * 0.1
    soundfile.write(path, data if channels > 1 else data[:, 0], sr)


def test_wham_and_dns_prep_on_real_layouts(tmp_path):
    for split in ("tr", "cv", "tt"):
        for index in range(3):
            _write(tmp_path / "wham" / "wham_noise" / split / f"{split}{index}_x.wav", channels=2)
    assert wham.prepare_noise(tmp_path / "wham", "tr", tmp_path / "d_wham") == 3
    assert wham.prepare_noise(tmp_path / "wham" / "wham_noise", "tt", tmp_path / "d_wham_tt") == 3
    utt2spk = read_dict(tmp_path / "d_wham" / "utt2spk")
    assert all(u == s for u, s in utt2spk.items())
    with pytest.raises(InputError):
        wham.prepare_noise(tmp_path, "tr", tmp_path / "bad")
    root = tmp_path / "DNS"
    for lang_dir in ("french_data", "german_speech"):
        for index in range(10):
            _write(root / "datasets" / "clean" / lang_dir / "sub" / f"book_{index:02d}_reader.wav")
    for index in range(10):
        _write(root / "datasets" / "noise" / f"door-knock {index}.wav")
    n_train, n_test = dns.prepare_speech(root, {"fr": "french_data", "de": "german_speech"}, tmp_path / "tr",
                                         tmp_path / "te", test_percent=30)
    assert n_train + n_test == 20 and n_test > 0
    train, test = read_dict(tmp_path / "tr" / "wav.scp"), read_dict(tmp_path / "te" / "wav.scp")
    assert not set(train) & set(test)
    assert all(read_dict(tmp_path / "tr" / "utt2lang")[u] == u.split("-")[0] for u in train)
    nt, ne = dns.prepare_noise(root, tmp_path / "ntr", tmp_path / "nte", test_percent=30)
    assert nt + ne == 10 and all(" " not in u for u in read_dict(tmp_path / "ntr" / "wav.scp"))
    with pytest.raises(InputError, match="no audio for language 'zh'"):
        dns.clean_speech(root, {"zh": "mandarin_speech"})


def test_enhance_cli_file_dir_scp_and_rate(tmp_path):
    from speechlib.tasks.se_uda.common import save_model

    model = SpeechNoiseUNet((4, 8, 8, 8))
    save_model(tmp_path / "exp" / "models" / "srst_similar", model)
    _write(tmp_path / "in" / "a.wav", 1.0)
    _write(tmp_path / "in" / "b.wav", 0.7)
    _write(tmp_path / "in8k.wav", 0.5, sr=8000)
    (tmp_path / "wav.scp").write_text(f"u1 {tmp_path / 'in' / 'a.wav'}\nu2 {tmp_path / 'in' / 'b.wav'}\n")
    base = [PYTHON, "-m", "speechlib.tasks.se_uda.enhance", "--model", str(tmp_path / "exp")]
    out = run(base + ["--in", str(tmp_path / "in" / "a.wav"), "--out", str(tmp_path / "o.wav")])
    assert out.returncode == 0, out.stderr
    assert soundfile.info(tmp_path / "o.wav").frames == 16000
    out = run(base + ["--in", str(tmp_path / "in"), "--out", str(tmp_path / "odir"), "--batch-size", "2"])
    assert out.returncode == 0 and sorted(p.name for p in (tmp_path / "odir").iterdir()) == ["a.wav", "b.wav"]
    out = run(base + ["--in", str(tmp_path / "wav.scp"), "--out", str(tmp_path / "oscp")])
    assert out.returncode == 0 and set(read_dict(tmp_path / "oscp" / "wav.scp")) == {"u1", "u2"}
    out = run(base + ["--in", str(tmp_path / "in8k.wav"), "--out", str(tmp_path / "r.wav")])
    assert out.returncode == 0, out.stderr  # the model runs at 16 kHz, the output stays 8 kHz
    assert (soundfile.info(tmp_path / "r.wav").samplerate, soundfile.info(tmp_path / "r.wav").frames) == (8000, 4000)
    out = run(base + ["--system", "dann", "--in", str(tmp_path / "in8k.wav"), "--out", str(tmp_path / "x.wav")])
    assert out.returncode == 1 and "not a model directory" in out.stderr and "Traceback" not in out.stderr
