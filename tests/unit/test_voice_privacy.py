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

from speechlib.data.trials import extended_trials, make_trials, read_trials, write_trials
from speechlib.io.kaldi import read_dict
from speechlib.metrics.pitch import pitch_correlation, track_correlation
from speechlib.metrics.verification import (bootstrap_replicates, eer, error_rates, group_weights, min_dcf,
                                            verification_summary)
from speechlib.metrics.wer import corpus_wer, edit_distance
from speechlib.nn.ssed import SSED, PhaseDecoder, SSEDOutput, perturbation
from speechlib.signal.purification import add_noise, median_smooth, quantise
from speechlib.tasks.voice_privacy import losses
from speechlib.tasks.voice_privacy.apply import main as apply_main
from speechlib.tasks.voice_privacy.headroom import FULL_SCALE, headroom_gain, protect_signal, restore_signal, run_ssed
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
    w = losses.LossWeights(0.01, 0.007, 0.8, 0.06, None)
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


def test_loss_terms_at_batch_three_with_padding_against_a_hand_computation():
    """Three utterances of 5, 3 and 4 valid samples in one padded batch, length-normalised norms
    (N_ref = 6): every term per utterance by hand, then the batch mean."""
    g = torch.Generator().manual_seed(3)
    x, x_adv = torch.rand(3, 5, generator=g) - 0.5, torch.rand(3, 5, generator=g) - 0.5
    n, n_rev = torch.rand(3, 5, generator=g) * 2 - 1, torch.rand(3, 5, generator=g) * 2 - 1
    m, m_rev = torch.rand(3, 5, generator=g), torch.rand(3, 5, generator=g)
    z, z_adv = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    lengths = [5, 3, 4]
    valid = torch.tensor([[1.0] * k + [0.0] * (5 - k) for k in lengths])
    w = losses.LossWeights(alpha=0.1, beta=0.3, gamma=0.7, theta=0.2, norm_samples=6)

    def norm(v, k):  # ||v[:k]|| * sqrt(6 / k), in plain Python
        return math.sqrt(sum(float(a) ** 2 for a in v[:k])) * math.sqrt(6 / k)

    expected = {key: 0.0 for key in ("angular", "quality", "ssed", "noise", "mask", "rpt", "total")}
    for b, k in enumerate(lengths):
        za, zb = z[b].tolist(), z_adv[b].tolist()
        angular = sum(p * q for p, q in zip(za, zb)) / math.sqrt(sum(p * p for p in za) * sum(q * q for q in zb))
        quality = 0.9 * norm(x_adv[b] - x[b], k) + 0.1 * norm(m[b], k)
        noise, mask = norm(n[b] + n_rev[b], k), norm(m[b] - m_rev[b], k)
        ssed, rpt = 0.7 * angular + 0.3 * quality, 0.3 * mask + 0.7 * noise
        for key, value in zip(expected, (angular, quality, ssed, noise, mask, rpt, 0.8 * ssed + 0.2 * rpt)):
            expected[key] += value / 3
    got = losses.joint_losses(x, x_adv, z, z_adv, n, m, n_rev, m_rev, w, valid)
    for key, value in expected.items():
        assert float(got[key]) == pytest.approx(value, rel=1e-5), key


def test_length_normalised_norms_do_not_depend_on_the_crop_length():
    """The same signal statistics over 2 s and 3 s: equal normalised norms (beta means the same),
    while the plain norms differ by sqrt(3/2)."""
    two = torch.sin(torch.arange(32000.0) / 5).unsqueeze(0)
    three = torch.sin(torch.arange(48000.0) / 5).unsqueeze(0)
    normalised = [float(losses.masked_norm(v, norm_samples=48000)) for v in (two, three)]
    assert normalised[0] == pytest.approx(normalised[1], rel=1e-3)
    plain = [float(losses.masked_norm(v)) for v in (two, three)]
    assert plain[1] / plain[0] == pytest.approx(math.sqrt(1.5), rel=1e-3)


def _joint_brain(tmp_path, seed=0, generator_epochs=None, opt_class=None):
    """A JointBrain on CPU with tiny SSEDs and a tiny frozen ECAPA, optimizers initialised."""
    from speechlib.nn.speaker import build_encoder, freeze
    from speechlib.tasks.voice_privacy.train import JointBrain

    torch.manual_seed(seed)
    kwargs = {"channels": (4, 8, 8), "strides": (4, 4), "residual_blocks": 1, "kernel": 7, "eps": 0.05}
    speaker = freeze(build_encoder("ecapa", 80, 16, 8))
    brain = JointBrain(modules={"generator": SSED(**kwargs), "remover": SSED(**kwargs)},
                       opt_class=opt_class or (lambda params: torch.optim.SGD(params, lr=0.5)),
                       hparams={"output_folder": str(tmp_path)}, run_opts={"device": "cpu"}, checkpointer=None,
                       speaker=speaker, weights=losses.LossWeights(0.01, 0.007, 0.8, 0.06, 48000), crop_samples=8000,
                       generator_epochs=generator_epochs)
    brain.on_fit_start()
    brain.on_stage_start(None, 1)
    return brain


def _speech_like_batch(n=3, samples=8000):
    from speechbrain.dataio.batch import PaddedBatch

    g = torch.Generator().manual_seed(7)
    t = torch.arange(samples) / 16000
    rows = []
    for k in range(n):
        f0 = 120 + 40 * k
        wav = sum(torch.sin(2 * math.pi * f0 * h * t) / h for h in range(1, 8)) * 0.05
        rows.append({"id": f"u{k}", "sig": wav + 0.005 * torch.randn(samples, generator=g)})
    return PaddedBatch(rows)


def _random_loss_inputs(seed):
    """x, x', z, z', n, m, n', m' for a batch of 3 (400 samples, 8-dim embeddings), the paper's weights."""
    g = torch.Generator().manual_seed(seed)
    x, x_adv = torch.randn(3, 400, generator=g), torch.randn(3, 400, generator=g)
    z, z_adv = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    n, m, n_rev, m_rev = (torch.rand(3, 400, generator=g) for _ in range(4))
    return (x, x_adv, z, z_adv, n, m, n_rev, m_rev), losses.LossWeights(0.01, 0.007, 0.8, 0.06, 48000)


def test_weighted_parts_of_eq_9_add_up_to_the_total():
    inputs, w = _random_loss_inputs(5)
    terms = losses.joint_losses(*inputs, w)
    parts = losses.weighted_terms(terms, w)
    assert float(sum(parts.values())) == pytest.approx(float(terms["total"]), rel=1e-6)
    assert float(parts["angular"]) == pytest.approx(0.94 * 0.993 * float(terms["angular"]), rel=1e-6)
    assert float(parts["quality"]) == pytest.approx(0.94 * 0.007 * float(terms["quality"]), rel=1e-6)
    assert float(parts["rpt"]) == pytest.approx(0.06 * float(terms["rpt"]), rel=1e-6)


def test_gradient_norms_of_each_part_against_the_closed_form_and_the_graph_survives():
    """For y = W v: d(sum y^2)/dW = 2 y v^T, d(sum y)/dW = 1 v^T, d(sum y)/db = 1."""
    from speechlib.tasks.voice_privacy.train import gradient_norms

    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    v = torch.randn(4)
    y = layer(v)
    norms = gradient_norms({"square": (y**2).sum(), "sum": y.sum()}, list(layer.parameters()))
    y_val = y.detach()
    square = math.sqrt(float((torch.outer(2 * y_val, v) ** 2).sum() + ((2 * y_val) ** 2).sum()))
    plain = math.sqrt(3 * float((v**2).sum()) + 3)
    assert norms["square"] == pytest.approx(square, rel=1e-5)
    assert norms["sum"] == pytest.approx(plain, rel=1e-5)
    y.sum().backward()  # the training step's own backward still works
    assert layer.weight.grad is not None


def test_one_joint_training_step_lowers_the_cosine_and_leaves_the_speaker_model_alone(tmp_path):
    brain = _joint_brain(tmp_path)
    batch = _speech_like_batch()
    speaker_before = {k: v.clone() for k, v in brain.speaker.state_dict().items()}

    def mean_cosine():
        with torch.no_grad():
            x, adv, _, z, z_adv = brain.compute_forward(batch, None)
            return float(losses.angular_loss(z, z_adv).mean())

    before = mean_cosine()
    brain.fit_batch(batch)
    after = mean_cosine()
    assert after < before - 1e-4, (before, after)
    for name, value in brain.speaker.state_dict().items():  # weights and BatchNorm statistics
        assert torch.equal(value, speaker_before[name]), name
    assert not any(p.requires_grad for p in brain.speaker.parameters())


def test_a_logged_training_step_reports_each_parts_pull_and_still_trains(tmp_path, caplog):
    """At a logged step stage 2 takes the gradient of each weighted part of eq. (9) on the
    generator before the step's own backward pass: the line is written, with the rpt part's pull
    equal to an independent autograd on the same batch, and the step still changes the weights."""
    import logging
    import re

    from speechlib.tasks.voice_privacy.train import LOG_EVERY

    brain = _joint_brain(tmp_path)
    batch = _speech_like_batch()
    generator = brain.modules.generator
    before = [p.detach().clone() for p in generator.parameters()]
    state = torch.get_rng_state()  # the crops of the step, drawn again for the reference
    x, adv, rst, z, z_adv = brain.compute_forward(batch, None)
    terms = losses.joint_losses(x, adv.wav, z, z_adv, adv.noise, adv.mask, rst.noise, rst.mask, brain.weights)
    grads = torch.autograd.grad(0.06 * terms["rpt"], list(generator.parameters()), allow_unused=True)
    expected = math.sqrt(sum(float((g**2).sum()) for g in grads if g is not None))
    torch.set_rng_state(state)
    brain.step = 1
    assert 1 % LOG_EVERY == 1
    with caplog.at_level(logging.INFO, logger="voice_privacy.train"):
        brain.fit_batch(batch)
    line = next(r.getMessage() for r in caplog.records if "on the generator" in r.getMessage())
    pull = float(re.search(r"rpt ([0-9.e+-]+)$", line).group(1))
    assert pull == pytest.approx(expected, rel=1e-2)
    assert any(not torch.equal(b, p) for b, p in zip(before, generator.parameters()))


def test_removal_losses_are_the_rpt_terms_of_the_joint_losses_and_a_hand_computation():
    inputs, w = _random_loss_inputs(6)
    n, m, n_rev, m_rev = inputs[4:]
    joint = losses.joint_losses(*inputs, w)
    removal = losses.removal_losses(n, m, n_rev, m_rev, w)
    for name in ("noise", "mask", "rpt"):
        assert float(removal[name]) == pytest.approx(float(joint[name]), rel=1e-6), name
    # by hand: the batch mean of 0.2 ||m - m'|| + 0.8 ||n + n'||, norms scaled to 48000 samples
    scale = math.sqrt(48000 / 400)
    by_hand = sum(0.2 * _hand_norm(m[i] - m_rev[i]) * scale + 0.8 * _hand_norm(n[i] + n_rev[i]) * scale
                  for i in range(3)) / 3
    assert float(removal["rpt"]) == pytest.approx(by_hand, rel=1e-5)


def test_two_phase_training_moves_only_the_generator_then_only_the_remover(tmp_path):
    """generator_epochs 1: epoch 1 minimises L_SSED with the remover untouched; epoch 2 minimises
    L_rpt with the generator frozen. One Adam serves both, with momentum for the generator left
    from epoch 1: the generator must still not move in epoch 2. Each phase's loss is checked
    against the losses computed on the same crops outside the Brain."""
    import speechbrain as sb

    brain = _joint_brain(tmp_path, generator_epochs=1, opt_class=lambda params: torch.optim.Adam(params, lr=1e-2))
    batch = _speech_like_batch()

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    def expected_terms():
        state = torch.get_rng_state()
        with torch.no_grad():
            x, adv, rst, z, z_adv = brain.compute_forward(batch, None)
            terms = losses.joint_losses(x, adv.wav, z, z_adv, adv.noise, adv.mask, rst.noise, rst.mask,
                                        brain.weights)
        torch.set_rng_state(state)
        return terms

    def run_epoch(epoch, phase, objective, steps):
        """Start `epoch`, check its phase and its first step's loss, take `steps` steps; which modules moved."""
        brain.zero_grad(set_to_none=True)  # what the kit does at the end of an epoch
        before = {name: snapshot(module) for name, module in brain.modules.items()}
        brain.on_stage_start(sb.Stage.TRAIN, epoch)
        assert brain.phase == phase
        expected = expected_terms()
        assert float(brain.fit_batch(batch)) == pytest.approx(float(expected[objective]), rel=1e-5)
        for _ in range(steps - 1):
            brain.fit_batch(batch)
        return {name: any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters()))
                for name, module in brain.modules.items()}, expected

    moved, _ = run_epoch(1, "generator", "ssed", 2)
    assert moved == {"generator": True, "remover": False}
    assert all(p.grad is None for p in brain.modules.remover.parameters())
    moved, expected = run_epoch(2, "remover", "rpt", 4)  # Adam holds generator momentum from epoch 1
    assert moved == {"generator": False, "remover": True}
    assert float(expected_terms()["rpt"]) < float(expected["rpt"])  # the remover learns the frozen n, m


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


@pytest.mark.parametrize("spectral_ratio", [None, 0.25])
@pytest.mark.parametrize("shape", [{"channels": (4, 8, 12), "strides": (4, 2), "kernel": 7},
                                   {"channels": (8, 32, 48), "strides": (4, 4), "kernel": 7},  # mini
                                   {"channels": (4, 6, 8), "strides": (2, 4), "kernel": 5},
                                   {"channels": (4, 6, 8), "strides": (4, 2), "kernel": 6}])  # even kernel: no PhaseDecoder
def test_inference_copy_gives_the_same_output(spectral_ratio, shape):
    """for_inference() swaps every transposed convolution of even stride for its polyphase form
    and runs each decoder's last stage on phase rows (PhaseDecoder); the outputs must equal the
    trained modules' (the plain ConvTranspose1d path, any length), and the model itself is left
    as it was (copy_first=False converts it in place instead, to the same numbers)."""
    torch.manual_seed(0)
    model = SSED(residual_blocks=1, eps=0.05, spectral_ratio=spectral_ratio, **shape)
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.GroupNorm)):  # not the identity a new one is
        torch.nn.init.uniform_(norm.weight, 0.5, 1.5)
        torch.nn.init.uniform_(norm.bias, -0.3, 0.3)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    fast = model.for_inference()
    loaded = SSED(residual_blocks=1, eps=0.05, spectral_ratio=spectral_ratio, **shape)
    loaded.load_state_dict(model.state_dict())
    assert loaded.for_inference(copy_first=False) is loaded  # the commands' way: no copy
    phases = shape["kernel"] % 2 == 1
    assert isinstance(fast.noise_decoder, PhaseDecoder) == phases == isinstance(fast.mask_decoder, PhaseDecoder)
    assert not any(isinstance(m, torch.nn.ConvTranspose1d) for m in fast.modules())
    for length in (model.receptive_field, 999, 8000):
        x = 0.3 * torch.randn(2, length)
        with torch.no_grad():
            slow, quick = model(x), fast(x)
            assert torch.equal(loaded(x).wav, quick.wav)
        assert torch.allclose(slow.wav, quick.wav, atol=1e-6)
        assert torch.allclose(slow.noise, quick.noise, atol=1e-5) and torch.allclose(slow.mask, quick.mask, atol=1e-5)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert any(isinstance(m, torch.nn.ConvTranspose1d) for m in model.modules())


def test_spectral_bound_keeps_the_perturbation_under_the_speech_spectrum():
    """With spectral_ratio rho every STFT bin of delta is at most rho |X| (checked by an
    independent scipy STFT of the output, within the small excess of re-analysing a modified
    spectrogram), nothing is added where the input is silent, |delta| <= eps still holds, and a
    perturbation already under the bound passes unchanged."""
    rng = np.random.default_rng(3)
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (t < 0.5) + 0.05 * rng.standard_normal(16000) * (t > 0.75))
    x = torch.from_numpy(x.astype(np.float32))[None]
    rho = 0.1
    model = SSED(channels=(4, 8, 8), strides=(4, 4), residual_blocks=1, eps=0.05, spectral_ratio=rho)
    with torch.no_grad():
        out = model(x)
    delta = (out.wav - x)[0].numpy()
    assert float(np.abs(delta).max()) <= 0.05 + 1e-6
    assert float(np.abs(delta[9000:11500]).max()) < 1e-6  # silent stretch: no perturbation
    from speechlib.nn.ssed import under_spectrum
    loud = torch.from_numpy(rng.uniform(-0.05, 0.05, (1, 16000)).astype(np.float32))  # far above the bound
    bounded = under_spectrum(loud, x, rho, torch.hann_window(512), 0.05)[0].numpy()
    _, _, d_spec = scipy.signal.stft(bounded, nperseg=512, noverlap=384, window="hann", boundary=None)
    _, _, x_spec = scipy.signal.stft(x[0].numpy(), nperseg=512, noverlap=384, window="hann", boundary=None)
    _, _, loud_spec = scipy.signal.stft(loud[0].numpy(), nperseg=512, noverlap=384, window="hann", boundary=None)
    expected = (np.minimum(np.abs(loud_spec), rho * np.abs(x_spec)) ** 2).sum()  # min(|D|, rho |X|) per bin
    # re-synthesis of the modified (inconsistent) spectrogram loses part of its energy, never adds
    assert 0.6 * expected < (np.abs(d_spec) ** 2).sum() < 1.1 * expected
    assert float(np.abs(bounded[9000:11500]).max()) < 1e-6
    small = 0.01 * x  # everywhere 10x under a bound of rho = 0.1: unchanged
    passed = under_spectrum(small, x, rho, torch.hann_window(512), 0.05)
    assert torch.allclose(passed, small, atol=1e-6)


# ---------------------------------------------------------------- purifications
def test_median_smoothing_matches_scipy_medfilt():
    x = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
    np.testing.assert_allclose(median_smooth(x, 3), scipy.signal.medfilt(x, 3), atol=0)


def test_quantisation_picks_the_nearest_level_of_a_brute_force_search():
    """Independent of the implementation's formula: for each sample, the nearest of all the
    levels k * 256 / 32768 (k = -128..128), found by an exhaustive search."""
    x = np.random.default_rng(2).uniform(-1, 1, 3000).astype(np.float32)
    levels = np.arange(-128, 129) * 256 / 32768
    nearest = levels[np.argmin(np.abs(x.astype(np.float64)[:, None] - levels[None, :]), axis=1)]
    np.testing.assert_allclose(quantise(x, 256), nearest, atol=1e-7)
    assert len(np.unique(quantise(x, 256))) <= 257


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


def _brute_force_min_dcf(scores, labels, p_target):
    best = np.inf
    for t in np.append(np.unique(scores), np.inf):
        p_miss, p_fa = np.mean(scores[labels] < t), np.mean(scores[~labels] >= t)
        best = min(best, p_target * p_miss + (1 - p_target) * p_fa)
    return best / min(p_target, 1 - p_target)


@pytest.mark.parametrize("seed", range(3))
def test_min_dcf_against_a_brute_force_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(500) < 0.3
    scores = np.round(rng.standard_normal(500) + 2 * labels, 1)
    for p in (0.01, 0.05, 0.5):
        assert min_dcf(scores, labels, p) == pytest.approx(_brute_force_min_dcf(scores, labels, p))


def _trials_with_speakers(seed, n=600, speakers=12):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.25
    return rng.standard_normal(n) + 1.5 * labels, labels, rng.integers(0, speakers, n)


def test_bootstrap_replicates_equal_a_loop_over_resampled_speakers():
    """Each replicate (speakers drawn with replacement, a speaker's trials repeated as often as
    it was drawn) against eer()/min_dcf() on the explicitly rebuilt trial list."""
    scores, labels, groups = _trials_with_speakers(0)
    weights = group_weights(12, 5, seed=1)
    replicates = bootstrap_replicates(scores, labels, groups, weights, (0.05,), max_bins=10**6)
    for b in range(5):
        take = np.concatenate([np.flatnonzero(groups == g) for g in range(12) for _ in range(int(weights[b, g]))])
        assert replicates["eer"][b] == pytest.approx(eer(scores[take], labels[take]))
        assert replicates["min_dcf_0.05"][b] == pytest.approx(min_dcf(scores[take], labels[take], 0.05))


def test_bootstrap_ci_brackets_the_point_and_paired_differences_of_equal_systems_are_zero():
    scores, labels, groups = _trials_with_speakers(1)
    weights = group_weights(12, 300, seed=2)
    summary, replicates = verification_summary(scores, labels, groups, weights)
    assert summary["eer_lo"] <= summary["eer"] <= summary["eer_hi"] and summary["eer_hi"] - summary["eer_lo"] > 0.01
    assert summary["targets"] == labels.sum()
    _, again = verification_summary(scores, labels, groups, weights)
    assert np.all(replicates["eer"] - again["eer"] == 0)
    # a better system on the same trials: every paired replicate favours it
    _, better = verification_summary(scores + 2.0 * labels, labels, groups, weights)
    assert np.all(better["eer"] <= replicates["eer"])


def test_quantile_grid_bootstrap_is_close_to_the_exact_one():
    scores, labels, groups = _trials_with_speakers(2, n=20000, speakers=40)
    weights = group_weights(40, 20, seed=3)
    exact = bootstrap_replicates(scores, labels, groups, weights, max_bins=10**6)["eer"]
    grid = bootstrap_replicates(scores, labels, groups, weights, max_bins=500)["eer"]
    assert np.abs(exact - grid).max() < 0.005


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


def test_extended_protocol_uses_every_same_gender_pair_once():
    spk2gender = {"m1": "m", "m2": "m", "m3": "m", "f1": "f", "f2": "f"}
    utt2spk = {f"{s}-{k}": s for s, n in (("m1", 3), ("m2", 4), ("m3", 2), ("f1", 2), ("f2", 2)) for k in range(n)}
    trials = extended_trials(utt2spk, spk2gender, "m")
    assert len(trials) == math.comb(9, 2) and len({(e, t) for e, t, _ in trials}) == len(trials)
    assert sum(y for _, _, y in trials) == math.comb(3, 2) + math.comb(4, 2) + math.comb(2, 2)
    assert all(e < t and (utt2spk[e] == utt2spk[t]) == y and spk2gender[utt2spk[t]] == "m" for e, t, y in trials)


# ---------------------------------------------------------------- WER
def test_wer_against_hand_counted_edits():
    # ref: THE CAT SAT ON THE MAT; hyp: THE CAT SIT ON MAT NOW -> 1 sub, 1 del, 1 ins
    assert edit_distance("THE CAT SAT ON THE MAT".split(), "THE CAT SIT ON MAT NOW".split()) == 3
    assert corpus_wer(["THE CAT SAT ON THE MAT", "HELLO"], ["the cat sit on mat now", "hello"]) == pytest.approx(
        100 * 3 / 7)
    assert edit_distance([], ["A", "B"]) == 2 and edit_distance(["A"], []) == 1


def test_whisper_normaliser_removes_formatting_differences_from_the_wer():
    from speechlib.tasks.voice_privacy.asr import text_normaliser

    reference, hypothesis = "MISTER SMITH PAID TWENTY FIVE DOLLARS", "Mr. Smith paid $25."
    assert corpus_wer([reference], [hypothesis]) > 50
    normalise = text_normaliser("whisper")
    assert corpus_wer([normalise(reference)], [normalise(hypothesis)]) == 0
    assert text_normaliser("pocketsphinx")("hello world") == "hello world"


# ---------------------------------------------------------------- pitch and PESQ scale
def test_track_correlation_uses_only_frames_voiced_in_both():
    """Unvoiced (0) frames in either track are left out; the rest against scipy's Pearson."""
    from scipy.stats import pearsonr

    rng = np.random.default_rng(5)
    reference = 100 + 50 * rng.random(60)
    test = reference + 10 * rng.standard_normal(60)
    reference[5:15] = 0   # unvoiced stretch in the recording
    test[30:42] = 0       # and another in the processed signal
    both = (reference > 0) & (test > 0)
    assert track_correlation(reference, test) == pytest.approx(pearsonr(reference[both], test[both])[0])
    # counting the unvoiced frames as F0 = 0 would give a very different (higher) value
    assert abs(np.corrcoef(reference, test)[0, 1] - track_correlation(reference, test)) > 0.05
    assert math.isnan(track_correlation(np.zeros(50), np.zeros(50)))


def test_pitch_correlation_on_a_signal_with_unvoiced_stretches():
    """A glide with silent and noise-only stretches: the same contour correlates ~1, a contour
    reversed in time (same F0 range, same voicing) does not; all-unvoiced audio is NaN."""
    sr = 16000
    rng = np.random.default_rng(6)

    def voiced(f0):
        phase = 2 * np.pi * np.cumsum(f0) / sr
        return 0.3 * sum(np.sin(h * phase) / h for h in range(1, 6))

    t = np.arange(int(0.6 * sr)) / sr
    rise, fall = 120 + 120 * t / t[-1], 240 - 120 * t / t[-1]
    gap, hiss = np.zeros(int(0.3 * sr)), 0.02 * rng.standard_normal(int(0.3 * sr))
    signal = np.concatenate([voiced(rise), gap, voiced(fall), hiss, voiced(rise)]).astype(np.float32)
    flipped = np.concatenate([voiced(fall), gap, voiced(rise), hiss, voiced(fall)]).astype(np.float32)
    assert pitch_correlation(signal, 0.5 * signal) > 0.99
    assert pitch_correlation(signal, flipped) < 0.5
    assert math.isnan(pitch_correlation(signal, 0.02 * rng.standard_normal(signal.size).astype(np.float32)))


def test_pesq_scale_conversion_is_the_inverse_of_p862_2():
    for raw in (-0.4, 1.0, 2.5, 4.4):
        lqo = 0.999 + 4.0 / (1 + math.exp(-1.3669 * raw + 3.8224))
        assert mos_lqo_to_raw(lqo) == pytest.approx(raw, abs=1e-6)
    assert mos_lqo_to_raw(4.64) == pytest.approx(4.5, abs=0.01)
    assert math.isnan(mos_lqo_to_raw(math.nan))


# ---------------------------------------------------------------- headroom
class _IdealRemover(torch.nn.Module):
    """Subtracts a known perturbation: what a perfect removal module would do."""

    def __init__(self, delta: np.ndarray):
        super().__init__()
        self.delta = torch.from_numpy(delta)

    def forward(self, wav):
        return SSEDOutput(wav - self.delta, None, None)


def test_protection_never_clips_and_restore_undoes_the_headroom_gain_exactly():
    torch.manual_seed(0)
    generator = SSED(channels=(4, 8, 8), strides=(4, 4), residual_blocks=1, eps=0.05).eval()
    x = (0.999 * np.sin(np.arange(16000) / 9)).astype(np.float32)  # peaks at full scale
    protected, gain = protect_signal(generator, x)
    assert gain == pytest.approx((FULL_SCALE - 0.05) / np.abs(x).max()) and gain < 1
    assert np.abs(protected).max() <= FULL_SCALE
    delta = protected - (x.astype(np.float64) * gain).astype(np.float32)
    restored = restore_signal(_IdealRemover(delta), protected, gain)
    np.testing.assert_allclose(restored, x, atol=1e-6)
    quiet = 0.3 * x
    assert headroom_gain(quiet, 0.05) == 1.0
    assert np.array_equal(protect_signal(generator, quiet)[0], run_ssed(generator, quiet))


# ---------------------------------------------------------------- protect/restore commands
SMALL_SSED = {"channels": (4, 8, 8), "strides": (4, 4), "residual_blocks": 1, "kernel": 7, "eps": 0.05}


def _saved_pair(path, seed=0):
    """exp/model/{protect,restore} of untrained tiny SSEDs and a tiny white-box ECAPA."""
    from speechlib.nn.speaker import build_encoder, save_pretrained

    torch.manual_seed(seed)
    save_pretrained(build_encoder("ecapa", 80, 16, 8).eval(), path / "speaker_white", "ecapa", 16, 8)
    save_models(path / "model", SMALL_SSED, SSED(**SMALL_SSED), SSED(**SMALL_SSED), path / "speaker_white",
                16000, "mini")
    return path


def _cli(verb, *args):
    return apply_main(verb, "", [*map(str, args), "--quiet"])


def test_bad_entries_are_refused_or_processed_never_crash(tmp_path):
    exp = _saved_pair(tmp_path / "exp")
    model = load_model(exp, "generator")
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
    code = _cli("protect", "--model", exp, "--in", tmp_path / "wav.scp", "--out", tmp_path / "out")
    assert code == 1  # not every input was done
    assert sorted(read_dict(tmp_path / "out" / "wav.scp")) == ["clipped", "good"]
    refused = dict(line.split("\t", 1) for line in (tmp_path / "out" / "refused.txt").read_text().splitlines())
    assert sorted(refused) == ["missing", "short", "silent"]
    assert "too short" in refused["short"] and "silent" in refused["silent"] and "nope.wav" in refused["missing"]
    out, _ = soundfile.read(tmp_path / "out" / "clipped.wav")
    assert np.abs(out).max() <= 1.0


def test_protection_and_restoration_are_separate_model_directories(tmp_path):
    from speechlib.io.errors import InputError

    exp = _saved_pair(tmp_path / "exp")
    for kind in ("protect", "restore"):
        assert (exp / "model" / kind / "model.json").is_file() and (exp / "model" / kind / "ssed.pt").is_file()
    with pytest.raises(InputError, match="not a voice_privacy restore model"):
        load_model(exp / "model" / "protect", "remover")


def test_restore_refuses_unprotected_files_and_files_of_another_model(tmp_path, capsys):
    exp, other = _saved_pair(tmp_path / "exp"), _saved_pair(tmp_path / "other", seed=1)
    signal = (0.3 * np.sin(np.arange(16000) / 7)).astype(np.float32)
    soundfile.write(tmp_path / "plain.wav", signal, 16000)
    original = (tmp_path / "plain.wav").read_bytes()
    assert _cli("restore", "--model", exp, "--in", tmp_path / "plain.wav", "--out", tmp_path / "r.wav") == 1
    assert "no voice-privacy provenance" in capsys.readouterr().err and not (tmp_path / "r.wav").exists()
    assert _cli("protect", "--model", other, "--in", tmp_path / "plain.wav", "--out", tmp_path / "p.wav") == 0
    assert _cli("restore", "--model", exp, "--in", tmp_path / "p.wav", "--out", tmp_path / "r.wav") == 1
    assert "protected by another model" in capsys.readouterr().err
    assert _cli("restore", "--model", exp, "--in", tmp_path / "p.wav", "--out", tmp_path / "r.wav", "--force") == 0
    assert _cli("restore", "--model", other, "--in", tmp_path / "p.wav", "--out", tmp_path / "r2.wav") == 0
    # --out equal to --in: refused before any work, the input untouched
    assert _cli("protect", "--model", exp, "--in", tmp_path / "plain.wav", "--out", tmp_path / "plain.wav") == 2
    assert (tmp_path / "plain.wav").read_bytes() == original


def test_a_48k_stereo_recording_near_full_scale_comes_back_48k_stereo_unclipped(tmp_path, capsys):
    """Channels processed independently at 16 kHz and resampled back; the headroom gain keeps
    the protected file below full scale (no clipping note) and travels to restore, which puts
    the level back; --report prints the white-box cosine per file."""
    exp = _saved_pair(tmp_path / "exp")
    t = np.arange(48000 * 2) / 48000
    stereo = np.stack([0.999 * np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], axis=1)
    soundfile.write(tmp_path / "in.wav", stereo, 48000, subtype="PCM_16")
    assert _cli("protect", "--model", exp, "--in", tmp_path / "in.wav", "--out", tmp_path / "p.flac", "--report") == 0
    out = capsys.readouterr()
    assert "scaled" not in out.err and "report: " in out.out and "white-box cosine" in out.out
    protected, rate = soundfile.read(tmp_path / "p.flac")
    assert rate == 48000 and protected.shape == stereo.shape and np.abs(protected).max() < 1.0
    assert _cli("restore", "--model", exp, "--in", tmp_path / "p.flac", "--out", tmp_path / "r.wav") == 0
    restored, rate = soundfile.read(tmp_path / "r.wav")
    assert rate == 48000 and restored.shape == stereo.shape
    gain = (FULL_SCALE - 0.05) / 0.999
    assert np.abs(protected[:, 0]).max() == pytest.approx(gain * 0.999, abs=0.06)
    assert np.abs(restored[:, 0]).max() == pytest.approx(0.999, abs=0.06 / gain)


# ---------------------------------------------------------------- the pretrained black box
def test_ge2e_batched_embeddings_equal_resemblyzers_own():
    """Voiced harmonic complexes (the VAD keeps them) of 2, 3, 4 s through our batched path and
    through resemblyzer's embed_utterance one at a time; a tone the VAD removes entirely still
    gets a finite embedding (the fallback to the untrimmed signal)."""
    from resemblyzer import preprocess_wav

    from speechlib.nn.ge2e import GE2EEncoder

    rng = np.random.default_rng(0)
    signals = []
    for k in range(3):
        t = np.arange(16000 * (2 + k)) / 16000
        phase = 2 * np.pi * np.cumsum(110 + 40 * k + 20 * np.sin(2 * np.pi * 0.7 * t)) / 16000
        voiced = sum(np.sin(h * phase) / h for h in range(1, 15)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        signals.append((0.1 * voiced + 0.003 * rng.standard_normal(t.size)).astype(np.float32))
    encoder = GE2EEncoder()
    ours = encoder.embed(signals)
    theirs = np.stack([encoder.model.embed_utterance(preprocess_wav(s)) for s in signals])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    tone = (0.2 * np.sin(np.arange(32000) / 5)).astype(np.float32)
    assert preprocess_wav(tone).size == 0 and np.isfinite(encoder.embed([tone])).all()


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


def test_table2_summary_does_not_depend_on_row_order():
    """Stage 5's --nj splits the utterances into parts: the Table 2 bootstrap CIs must come out the
    same whatever order the parts list them in; the means are plain means over utterances."""
    from speechlib.tasks.voice_privacy.report import TABLE2_CONDITIONS, summarise
    rng = np.random.default_rng(0)
    rows = [{"utt": f"u{i:02d}", "cond": cond, "lang": "en" if i % 2 else "fr", "ref": "a b c",
             "hyp": "a b" if i % 3 else "a b c", "pesq": float(rng.uniform(1, 4.5)),
             "snr": float(rng.uniform(10, 40)), "pitch_corr": float(rng.uniform(0.5, 1))}
            for cond in TABLE2_CONDITIONS for i in range(12)]
    table, counts = summarise(rows, str.lower, 200, 1)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    assert summarise(shuffled, str.lower, 200, 1) == (table, counts)
    adv_pesq = np.mean([r["pesq"] for r in rows if r["cond"] == "adv"])
    assert table["PESQ"][list(TABLE2_CONDITIONS).index("adv")].startswith(f"{adv_pesq:.2f} [")
    assert counts["utterances"] == [12] * len(TABLE2_CONDITIONS)


def test_joint_probe_warm_start_phase_takes_adam_steps_on_the_paper_total_with_both_modules(capsys):
    """joint_probe --joint-steps: each step of phase B is one Adam step on (1 - theta) L_SSED +
    theta L_rpt (assembled here from the terms, not from the loss's own total) over the generator
    and the remover together; with theta 0 the remover gets no gradient and stays put."""
    import argparse
    import copy

    from speechlib.nn.speaker import build_encoder, freeze
    from speechlib.tasks.voice_privacy.joint_probe import joint_phase

    torch.manual_seed(3)
    kwargs = {"channels": (4, 8, 8), "strides": (4, 4), "residual_blocks": 1, "kernel": 7, "eps": 0.05}
    speaker = freeze(build_encoder("ecapa", 80, 16, 8))
    x = _speech_like_batch(3, 8000).sig[0]
    args = argparse.Namespace(joint_steps=1, joint_lr=1e-2, fixed_batch=True, log_every=1)
    for theta in (0.3, 0.0):
        weights = losses.LossWeights(0.01, 0.2, 0.8, theta, 48000)
        generator, remover = SSED(**kwargs), SSED(**kwargs)
        ref_gen, ref_rem = copy.deepcopy(generator), copy.deepcopy(remover)
        start_gen, start_rem = copy.deepcopy(generator), copy.deepcopy(remover)
        joint_phase(args, {"lr": 1.0}, generator, remover, speaker, weights, x, None)
        adv = ref_gen(x)
        rst = ref_rem(adv.wav)
        with torch.no_grad():
            z = speaker(x)
        terms = losses.joint_losses(x, adv.wav, z, speaker(adv.wav), adv.noise, adv.mask, rst.noise, rst.mask, weights)
        reference = torch.optim.Adam(list(ref_gen.parameters()) + list(ref_rem.parameters()), lr=1e-2)
        ((1 - theta) * terms["ssed"] + theta * terms["rpt"]).backward()
        reference.step()
        for got, want in zip(list(generator.parameters()) + list(remover.parameters()),
                             list(ref_gen.parameters()) + list(ref_rem.parameters())):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert any(not torch.equal(p, q) for p, q in zip(generator.parameters(), start_gen.parameters()))
        remover_moved = any(not torch.equal(p, q) for p, q in zip(remover.parameters(), start_rem.parameters()))
        assert remover_moved == (theta > 0)
    out = capsys.readouterr().out
    assert out.count("J step 1:") == 2 and "theta 0.3" in out and "theta 0.0" in out
