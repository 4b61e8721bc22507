"""Unit tests of egs/voice_privacy's pieces: losses, SSED, purifications, EER, trials, WER, pitch,
and the bad-input rules of protect/restore."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import scipy.signal
import soundfile
import torch

from speechlib.data.trials import make_trials, read_trials, write_trials
from speechlib.metrics.pitch import pitch_correlation, track_correlation
from speechlib.metrics.verification import eer, error_rates
from speechlib.metrics.wer import corpus_wer, edit_distance
from speechlib.nn.ssed import SSED, perturbation
from speechlib.signal.purification import add_noise, median_smooth, quantise
from speechlib.tasks.voice_privacy import losses
from speechlib.tasks.voice_privacy.apply import apply_to_dir
from speechlib.tasks.voice_privacy.model_io import load_model, save_models
from speechlib.tasks.voice_privacy.quality import mos_lqo_to_raw


# ---------------------------------------------------------------- losses, eqs. (2)-(9)
def _hand_norm(v):
    return math.sqrt(sum(float(a) ** 2 for a in v))


def test_each_loss_against_a_hand_computation():
    x = torch.tensor([[0.1, -0.2, 0.3]])
    x_adv = torch.tensor([[0.15, -0.25, 0.3]])
    m = torch.tensor([[0.5, 1.0, 0.0]])
    n = torch.tensor([[0.2, -0.4, 0.6]])
    n_rev = torch.tensor([[-0.1, 0.4, -0.6]])
    m_rev = torch.tensor([[0.5, 0.5, 0.0]])
    z, z_adv = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    w = losses.LossWeights()
    angular = 1 / math.sqrt(2)
    quality = 0.99 * _hand_norm([0.05, -0.05, 0.0]) + 0.01 * _hand_norm([0.5, 1.0, 0.0])
    ssed = 0.993 * angular + 0.007 * quality
    noise = _hand_norm([0.1, 0.0, 0.0])
    mask = _hand_norm([0.0, 0.5, 0.0])
    rpt = 0.2 * mask + 0.8 * noise
    total = 0.94 * ssed + 0.06 * rpt
    got = losses.joint_losses(x, x_adv, z, z_adv, n, m, n_rev, m_rev, w)
    expected = {"angular": angular, "quality": quality, "ssed": ssed, "noise": noise, "mask": mask,
                "rpt": rpt, "total": total}
    for name, value in expected.items():
        assert float(got[name]) == pytest.approx(value, rel=1e-5), name


def test_padding_is_masked_out_of_the_norms():
    values = torch.tensor([[3.0, 4.0, 100.0]])
    valid = torch.tensor([[1.0, 1.0, 0.0]])
    assert float(losses.masked_norm(values, valid)) == pytest.approx(5.0)


def test_restoration_is_exact_when_the_remover_predicts_minus_n_and_m():
    """x_hat = x' + eps (n' m') with n' = -n, m' = m gives back x. Exactly (bit for bit) where the
    arithmetic is exact: 16-bit audio values, dyadic n and m, eps a power of two; with eps = 0.05
    in float32 the only difference left is the rounding of x + delta (below 1e-7)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(-32768, 32768, (2, 1000), generator=g).double() / 32768
    n = torch.randint(-256, 257, (2, 1000), generator=g).double() / 256
    m = torch.randint(0, 257, (2, 1000), generator=g).double() / 256
    x_adv = x + perturbation(n, m, 2.0**-4)
    assert torch.equal(x_adv + perturbation(-n, m, 2.0**-4), x)
    xf, nf, mf = x.float(), n.float(), m.float()
    x_hat = (xf + perturbation(nf, mf, 0.05)) + perturbation(-nf, mf, 0.05)
    assert float((x_hat - xf).abs().max()) < 1e-7


def test_ssed_shapes_bounds_and_any_length():
    model = SSED(channels=(4, 8, 8), strides=(4, 4), residual_blocks=1, eps=0.05)
    for length in (model.receptive_field, 1001, 16000):
        x = torch.rand(2, length) - 0.5
        with torch.no_grad():
            out = model(x)
        assert out.wav.shape == x.shape == out.noise.shape == out.mask.shape
        assert float((out.wav - x).abs().max()) <= 0.05 + 1e-6
        assert float(out.mask.min()) >= 0 and float(out.mask.max()) <= 1


# ---------------------------------------------------------------- purifications
def test_median_smoothing_matches_scipy_medfilt():
    x = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
    np.testing.assert_allclose(median_smooth(x, 3), scipy.signal.medfilt(x, 3), atol=0)


def test_quantisation_matches_numpy_rounding():
    x = np.random.default_rng(2).uniform(-1, 1, 5000).astype(np.float32)
    expected = np.round(x.astype(np.float64) * 32768 / 256) * 256 / 32768
    np.testing.assert_array_equal(quantise(x, 256), expected.astype(np.float32))
    assert len(np.unique(np.round(quantise(x, 256) * 32768))) <= 257


def test_added_noise_has_the_requested_snr():
    rng = np.random.default_rng(3)
    x = (0.3 * np.sin(np.arange(32000) / 7) + 0.05 * rng.standard_normal(32000)).astype(np.float32)
    y = add_noise(x, 25.0, np.random.default_rng(4))
    noise = y.astype(np.float64) - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert abs(measured - 25.0) < 0.1


# ---------------------------------------------------------------- EER
def _brute_force_eer(scores, labels):
    best_gap, best = None, None
    for t in np.append(np.unique(scores), np.inf):
        far = np.mean(scores[~labels] >= t)
        frr = np.mean(scores[labels] < t)
        gap = abs(far - frr)
        if best_gap is None or gap < best_gap - 1e-15 or (abs(gap - best_gap) <= 1e-15 and (far + frr) / 2 < best):
            best_gap, best = gap, (far + frr) / 2
    return best


@pytest.mark.parametrize("seed", range(5))
def test_eer_against_a_brute_force_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(400) < 0.2
    scores = rng.standard_normal(400) + labels * rng.uniform(0, 3)
    scores = np.round(scores, 1)  # ties on purpose
    assert eer(scores, labels) == pytest.approx(_brute_force_eer(scores, labels))


def test_eer_edge_cases():
    labels = np.array([True] * 5 + [False] * 50)
    assert eer(np.where(labels, 1.0, 0.0), labels) == 0.0
    assert eer(np.full(55, 0.3), labels) == 0.5
    assert eer(np.where(labels, 0.0, 1.0), labels) == 1.0
    with pytest.raises(ValueError):
        error_rates(np.zeros(3), np.zeros(3, bool))


# ---------------------------------------------------------------- trials
def test_trials_have_one_target_and_thirty_nontargets_per_speaker(tmp_path):
    spk2gender = {f"{g}{i:02d}": g for g in "mf" for i in range(20)}
    utt2spk = {f"{s}-{k}": s for s in spk2gender for k in range(6)}
    rng = np.random.default_rng(0)
    all_trials = {g: make_trials(utt2spk, spk2gender, g, rng) for g in "mf"}
    for gender, trials in all_trials.items():
        per_speaker = Counter((utt2spk[e], y) for e, _, y in trials)
        speakers = {s for s, g in spk2gender.items() if g == gender}
        assert {s for s, _ in per_speaker} == speakers and len(speakers) == 20
        for spk in speakers:
            assert per_speaker[(spk, True)] == 1 and per_speaker[(spk, False)] == 30
        for enroll, test, target in trials:
            assert enroll != test
            assert (utt2spk[enroll] == utt2spk[test]) == target
            assert spk2gender[utt2spk[test]] == gender
        write_trials(tmp_path / gender, trials)
        assert read_trials(tmp_path / gender) == trials
    assert len(all_trials["m"]) == len(all_trials["f"]) == 20 * 31


# ---------------------------------------------------------------- WER
def test_wer_against_hand_counted_edits():
    # ref: THE CAT SAT ON THE MAT; hyp: THE CAT SIT ON MAT NOW -> 1 sub, 1 del, 1 ins
    assert edit_distance("THE CAT SAT ON THE MAT".split(), "THE CAT SIT ON MAT NOW".split()) == 3
    assert corpus_wer(["THE CAT SAT ON THE MAT", "HELLO"], ["the cat sit on mat now", "hello"]) == pytest.approx(
        100 * 3 / 7)
    assert edit_distance([], ["A", "B"]) == 2 and edit_distance(["A"], []) == 1


# ---------------------------------------------------------------- pitch and PESQ scale
def test_pitch_correlation_of_unvoiced_audio_is_nan_and_of_a_tone_is_one():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * (150 + 50 * t) * t)).astype(np.float32)
    assert pitch_correlation(tone, tone) == pytest.approx(1.0)
    assert math.isnan(pitch_correlation(tone, np.zeros_like(tone)))
    assert math.isnan(track_correlation(np.zeros(50), np.zeros(50)))


def test_pesq_scale_conversion_is_the_inverse_of_p862_2():
    for raw in (-0.4, 1.0, 2.5, 4.4):
        lqo = 0.999 + 4.0 / (1 + math.exp(-1.3669 * raw + 3.8224))
        assert mos_lqo_to_raw(lqo) == pytest.approx(raw, abs=1e-6)
    assert mos_lqo_to_raw(4.64) == pytest.approx(4.5, abs=0.01)
    assert math.isnan(mos_lqo_to_raw(math.nan))


# ---------------------------------------------------------------- bad input to protect/restore
def test_bad_entries_are_refused_or_processed_never_crash(tmp_path):
    kwargs = {"channels": (4, 8, 8), "strides": (4, 4), "residual_blocks": 1, "kernel": 7, "eps": 0.05}
    save_models(tmp_path / "exp" / "model", kwargs, SSED(**kwargs), SSED(**kwargs))
    model = load_model(tmp_path / "exp", "generator")
    sr = 16000
    rng = np.random.default_rng(0)
    files = {"good": 0.1 * rng.standard_normal(sr), "silent": np.zeros(sr), "clipped": np.clip(3 * rng.standard_normal(sr), -1, 1),
             "short": 0.1 * rng.standard_normal(model.receptive_field - 1)}
    lines = []
    for name, signal in files.items():
        soundfile.write(tmp_path / f"{name}.wav", signal, sr)
        lines.append(f"{name} {tmp_path / f'{name}.wav'}\n")
    lines.append(f"missing {tmp_path / 'nope.wav'}\n")
    (tmp_path / "wav.scp").write_text("".join(sorted(lines)))
    report = apply_to_dir(model, tmp_path / "wav.scp", tmp_path / "out")
    assert report.done == 3
    assert set(report.refused) == {"short", "missing"}
    assert "short" in report.refused["short"] and "receptive field" in report.refused["short"]
    assert report.silent == ["silent"] and "clipped" in report.clipped
    out, _ = soundfile.read(tmp_path / "out" / "clipped.wav")
    assert np.abs(out).max() <= 1.0
    assert (tmp_path / "out" / "refused.txt").read_text().startswith("missing ")


# ---------------------------------------------------------------- speaker models
def test_pretrained_speaker_model_round_trip_and_speechbrain_layout(tmp_path):
    """Our saved models and a SpeechBrain hub-style directory load through the same function."""
    from speechlib.nn.speaker import build_encoder, embed_batched, load_pretrained, save_pretrained

    torch.manual_seed(0)
    encoder = build_encoder("ecapa", 80, 16, 8).eval()
    save_pretrained(encoder, tmp_path / "ours", "ecapa", 16, 8)
    loaded = load_pretrained(tmp_path / "ours")
    signals = [np.random.default_rng(k).standard_normal(48000 + 4000 * k).astype(np.float32) * 0.1 for k in range(3)]
    np.testing.assert_allclose(embed_batched(loaded, signals, 2), embed_batched(encoder, signals, 2), atol=1e-5)
    # batching pads shorter utterances; the embeddings stay (nearly) the same as one at a time
    from speechlib.metrics.verification import cosine_scores

    assert cosine_scores(embed_batched(encoder, signals, 3), embed_batched(encoder, signals, 1)).min() > 0.99

    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "hyperparams.yaml").write_text(
        "pretrained_path: speechbrain/spkrec-ecapa-voxceleb\nn_mels: 80\n"
        "compute_features: !new:speechbrain.lobes.features.Fbank\n    n_mels: !ref <n_mels>\n"
        "embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n    input_size: !ref <n_mels>\n"
        "    channels: [16, 16, 16, 16, 48]\n    attention_channels: 8\n    se_channels: 8\n    lin_neurons: 8\n"
        "label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder\n"
        "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n    loadables:\n"
        "        embedding_model: !ref <embedding_model>\n    paths:\n"
        "        embedding_model: !ref <pretrained_path>/embedding_model.ckpt\n")
    torch.save(encoder.embedding_model.state_dict(), hub / "embedding_model.ckpt")
    np.testing.assert_allclose(embed_batched(load_pretrained(hub), signals), embed_batched(encoder, signals), atol=1e-4)
    from speechlib.io.errors import InputError

    with pytest.raises(InputError, match="embedding_model.ckpt"):
        load_pretrained(tmp_path)
