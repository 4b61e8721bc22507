"""Unit tests of egs/se_uda's pieces: SI-SDR, gradient reversal (alone and in the DANN Brain),
remix, mixture consistency, teacher updates, SRST selection, STFT, the U-Net's pass-through start
and learning, mixing, fixed test sets, on-the-fly mixtures, reader-disjoint DNS splits, leakage
detection, the report's statistics, metrics on bad input, and the enhance CLI."""
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


def test_untrained_unet_passes_the_mixture_through():
    torch.manual_seed(0)
    model = SpeechNoiseUNet((4, 8, 8, 8), rnn_hidden=8)
    wav = torch.randn(2, 9000) * torch.linspace(0.1, 3.0, 9000)
    speech, noise = model(wav)
    # s = n = x / 2: the mixture at half level (every scale-invariant metric scores it as x)
    torch.testing.assert_close(speech, wav / 2, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(speech + noise, wav)
    assert float(si_sdr(speech, wav).min().detach()) > 60


def _harmonic_batch(rng: np.random.Generator, rows: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Voiced-speech-like rows (harmonics of a random F0, syllable envelope) and white noise at 0 dB."""
    t = np.arange(samples) / 16000
    speech = []
    for _ in range(rows):
        f0 = rng.uniform(100, 220)
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 12))
        speech.append(tone * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)))
    speech = np.array(speech, np.float32)
    noise = rng.standard_normal(speech.shape).astype(np.float32) * speech.std(axis=1, keepdims=True)
    return torch.from_numpy(speech), torch.from_numpy(noise)


def test_overfit_one_batch_beats_pass_through():
    from speechlib.nn.losses import speech_noise_loss

    torch.manual_seed(0)
    speech, noise = _harmonic_batch(np.random.default_rng(0), 4, 8000)
    mixture = speech + noise
    model = SpeechNoiseUNet((8, 8, 8, 8), rnn_hidden=16)
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    pass_through = speech_noise_loss(mixture / 2, mixture / 2, speech, noise, 30).mean().item()
    for _ in range(40):  # N = 40 steps
        loss = speech_noise_loss(*model(mixture), speech, noise, 30).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    estimate = model(mixture)[0]
    assert loss.item() < pass_through - 6  # about 3 dB better on speech and on noise
    assert float((si_sdr(estimate, speech) - si_sdr(mixture, speech)).mean()) > 3


def test_dann_brain_reverses_the_classifier_gradient_into_the_encoder_only():
    from types import SimpleNamespace

    import speechbrain as sb

    from speechlib.tasks.se_uda import brains

    torch.manual_seed(0)
    unet = SpeechNoiseUNet((4, 8, 8, 8), rnn_hidden=8)
    classifier = DomainClassifier(*unet.bottleneck_shape, hidden=8)
    source, target = torch.randn(2, 4000), torch.randn(2, 4000)
    speech, noise_ref = torch.randn(2, 4000), torch.randn(2, 4000)
    batch = SimpleNamespace(sig=(source,), speech_sig=(speech,), noise_sig=(noise_ref,))
    hparams = {"grl_scale": 1.0, "loss_clamp": 30, "noise_weight": 1.0}

    def grads(beta: float) -> dict[str, torch.Tensor]:
        brain = brains.DANNBrain(modules={"unet": unet, "classifier": classifier},
                                 hparams={**hparams, "dann_beta": beta}, run_opts={"device": "cpu"},
                                 epoch_datasets=[], total_steps=1, base_lr=1e-3, other_dataset=None)
        brain.on_stage_start(sb.Stage.VALID)  # resets the per-epoch statistics only
        brain.other = iter([SimpleNamespace(sig=(target,), id=["t1", "t2"])])
        unet.zero_grad(set_to_none=False), classifier.zero_grad(set_to_none=False)
        brain.compute_objectives(brain.compute_forward(batch, None), batch, None).backward()
        return {n: p.grad.clone() for n, p in [*unet.named_parameters(), *(("cls." + n, p) for n, p in
                                                                           classifier.named_parameters())]}

    domain = {n: with_domain - plain for (n, with_domain), plain in zip(grads(1.0).items(), grads(0.0).values())}
    # the same domain loss without reversal, computed by hand
    unet.zero_grad(set_to_none=False), classifier.zero_grad(set_to_none=False)
    logits = classifier(unet.encode(torch.cat([source, target])))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([0.0, 0, 1, 1])).backward()
    direct = {n: p.grad.clone() for n, p in [*unet.named_parameters(), *(("cls." + n, p) for n, p in
                                                                         classifier.named_parameters())]}
    encoder = [n for n in direct if n.startswith(("encoder.", "context."))]
    decoder = [n for n in direct if n.startswith("decoder.")]
    assert encoder and decoder
    for name in encoder:
        torch.testing.assert_close(domain[name], -direct[name], atol=1e-5, rtol=1e-3)
    for name in decoder:
        assert float(domain[name].abs().max()) < 1e-6 and float(direct[name].abs().max()) == 0
    for name in (n for n in direct if n.startswith("cls.")):
        torch.testing.assert_close(domain[name], direct[name], atol=1e-5, rtol=1e-3)


def test_teacher_updates_remixit_protocols_and_srst_frozen():
    from types import SimpleNamespace

    from speechlib.tasks.se_uda import brains

    def state(mode: str, every: int = 1):
        teacher, student = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        fake = SimpleNamespace(teacher=teacher, teacher_update=mode, modules=SimpleNamespace(unet=student),
                               hparams=SimpleNamespace(teacher_update_every=every, teacher_momentum=0.9))
        return fake, teacher.weight.detach().clone(), student.weight.detach().clone()

    fake, t0, s0 = state("replace", every=2)
    brains.RemixITBrain.end_of_epoch(fake, 1)
    torch.testing.assert_close(fake.teacher.weight, t0)  # not yet: every 2 epochs
    brains.RemixITBrain.end_of_epoch(fake, 2)
    torch.testing.assert_close(fake.teacher.weight, s0)
    fake, t0, s0 = state("ema_epoch")
    brains.RemixITBrain.end_of_epoch(fake, 1)
    torch.testing.assert_close(fake.teacher.weight, 0.9 * t0 + 0.1 * s0)
    brains.RemixITBrain.on_fit_batch_end(fake, None, None, None, True)  # per-step EMA is not this mode
    torch.testing.assert_close(fake.teacher.weight, 0.9 * t0 + 0.1 * s0)
    fake, t0, s0 = state("ema_step")
    brains.RemixITBrain.on_fit_batch_end(fake, None, None, None, True)
    torch.testing.assert_close(fake.teacher.weight, 0.9 * t0 + 0.1 * s0)
    brains.RemixITBrain.end_of_epoch(fake, 1)
    torch.testing.assert_close(fake.teacher.weight, 0.9 * t0 + 0.1 * s0)
    for mode in ("frozen", brains.SRSTBrain.teacher_update):  # SRST: Algorithm 1's fixed teacher
        fake, t0, _ = state(mode)
        brains.RemixITBrain.end_of_epoch(fake, 1)
        brains.RemixITBrain.on_fit_batch_end(fake, None, None, None, True)
        torch.testing.assert_close(fake.teacher.weight, t0)


def test_mixture_consistency_and_lr_schedule():
    speech, noise, mixture = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 0.0]]), torch.tensor([[2.0, 2.0]])
    s, n = selftrain.mixture_consistency(speech, noise, mixture)
    torch.testing.assert_close(s, torch.tensor([[1.25, 2.0]]))
    torch.testing.assert_close(n, torch.tensor([[0.75, 0.0]]))
    from speechlib.tasks.se_uda.brains import cosine_lr

    assert cosine_lr(0, 100, 1.0, 10, 0.1) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 1.0, 10, 0.1) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 1.0, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine_lr(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)


def test_report_statistics_against_scipy():
    from scipy import stats

    from speechlib.tasks.se_uda.report import bootstrap_mean_ci, paired_bootstrap, seed_mean_ci

    per_seed = np.array([1.0, 2.0, 4.0])
    mean, half = seed_mean_ci(per_seed)
    low, high = stats.t.interval(0.95, 2, loc=per_seed.mean(), scale=stats.sem(per_seed))
    assert mean == pytest.approx(7 / 3) and half == pytest.approx((high - low) / 2)
    values = np.random.default_rng(0).normal(3.0, 1.0, 400)
    mean, low, high = bootstrap_mean_ci(values, 2000)
    normal = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert mean == pytest.approx(values.mean()) and (high - low) / 2 == pytest.approx(normal, rel=0.15)
    base = np.random.default_rng(1).normal(0.0, 5.0, 400)  # a large spread shared by both systems
    diff, low, high = paired_bootstrap(base + 0.5 + 0.1 * values, base, 2000)
    assert diff == pytest.approx(0.5 + 0.1 * values.mean()) and 0 < low < diff < high < 1.0


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
        for index in range(30):  # 6 readers per language, 5 files each (real DNS file names)
            _write(root / "datasets" / "clean" / lang_dir / "sub" /
                   f"book_{index:03d}_chp_0001_reader_{index % 6:05d}_{index}_seg_1.wav", 0.1)
    for index in range(10):
        _write(root / "datasets" / "noise" / f"door-knock {index}.wav")
    languages = {"fr": ["missing_dir", "french_data"], "de": "german_speech"}  # candidates: first existing
    counts = dns.prepare_speech(root, languages, tmp_path / "tr", tmp_path / "te", test_percent=30,
                                valid_dir=tmp_path / "va", valid_percent=10)
    assert sum(counts) == 60 and counts[1] == 2 * 2 * 5  # round(6 * 0.3) = 2 readers per language
    spk = {name: read_dict(tmp_path / name / "utt2spk") for name in ("tr", "te", "va")}
    assert not set(spk["tr"].values()) & set(spk["te"].values())      # reader-disjoint
    assert set(spk["va"].values()) <= set(spk["tr"].values()) and spk["va"]  # valid: training readers
    assert not set(spk["tr"]) & set(spk["va"])                          # ... other utterances
    assert all(read_dict(tmp_path / "tr" / "utt2lang")[u] == u.split("-")[0] for u in spk["tr"])
    nt, ne = dns.prepare_noise(root, tmp_path / "ntr", tmp_path / "nte", test_percent=30)
    assert nt + ne == 10 and all(" " not in u for u in read_dict(tmp_path / "ntr" / "wav.scp"))
    with pytest.raises(InputError, match="no directory for any language"):
        dns.clean_speech(root, {"zh": "mandarin_speech"})
    with pytest.warns(UserWarning, match="'zh' is not in this corpus"):
        assert len(dns.clean_speech(root, {"zh": "mandarin_speech", "fr": "french_data"})) == 30
    with pytest.raises(InputError, match="speaker_pattern"):
        dns.clean_speech(root, {"fr": "french_data"}, speaker_pattern=r"speaker_(\d+)")


def test_source_lists_keep_the_source_language_only(tmp_path):
    """The mini corpus's test-clean holds several languages (target ones too): the source-domain
    lists keep English only, every table of the data dir consistent; none left is refused."""
    from speechlib.tasks.se_uda.prepare import keep_language

    langs = {"a-1-0": "en", "a-1-1": "en", "b-1-0": "fr", "c-1-0": "it", "c-1-1": "en"}
    tables = {"utt2lang": langs, "wav.scp": {u: f"/x/{u}.flac" for u in langs},
              "utt2spk": {u: u.split("-")[0] for u in langs}, "text": {u: "words" for u in langs},
              "spk2utt": {"a": "a-1-0 a-1-1", "b": "b-1-0", "c": "c-1-0 c-1-1"}, "spk2gender": {"a": "f", "b": "m", "c": "f"}}
    for name, table in tables.items():
        (tmp_path / name).write_text("".join(f"{k} {v}\n" for k, v in table.items()))
    assert keep_language(tmp_path, "en") == 2
    for name in ("utt2lang", "wav.scp", "utt2spk", "text"):
        assert sorted(read_dict(tmp_path / name)) == ["a-1-0", "a-1-1", "c-1-1"], name
    assert read_dict(tmp_path / "spk2utt") == {"a": "a-1-0 a-1-1", "c": "c-1-1"}
    assert read_dict(tmp_path / "spk2gender") == {"a": "f", "c": "f"}
    with pytest.raises(InputError, match="no utterance in language 'de'"):
        keep_language(tmp_path, "de")


def test_dns_reader_of_serves_real_and_mini_names():
    pattern = r"^.*?reader_(\d+)|^([^-]+)-|^(.+)_[^_]+$"  # the configs' pattern
    assert dns.reader_of("book_00002_chp_0009_reader_06709_1_seg_1", pattern) == "06709"
    assert dns.reader_of("ast_june-fr_digits_star", pattern) == "ast_june"
    assert dns.reader_of("syn_awb_s0006", pattern) == "syn_awb"


def test_single_reader_language_is_training_only():
    entries = {f"xx-r0-{i}": ("xx", "r0", f"/a/{i}") for i in range(4)}
    entries.update({f"yy-r{i}-{i}": ("yy", f"r{i}", f"/b/{i}") for i in range(4)})
    with pytest.warns(UserWarning, match="single reader"):
        train, valid, test = dns.split_by_reader(entries, 30)
    assert all(e[0] == "yy" for e in test.values()) and len(test) == 1


def test_leakage_finds_links_and_copies_only(tmp_path):
    from speechlib.data.leakage import shared_files

    a, other = tmp_path / "a.wav", tmp_path / "other.wav"
    _write(a, 0.2)
    _write(other, 0.3)
    link, copy = tmp_path / "link.wav", tmp_path / "copy.wav"
    link.hardlink_to(a)
    copy.write_bytes(a.read_bytes())
    found = shared_files([str(a)], [str(link), str(copy), str(other)])
    assert found == {str(link), str(copy)}


def _mini_data(root: Path) -> None:
    """A tiny data folder with every dir the fixed sets read (2 utterances or clips each)."""
    for name in ("source_speech_valid", "target_speech_valid", "source_speech_test", "target_speech_test",
                 "english_speech_test", "source_noise_valid", "target_noise_train", "source_noise_test",
                 "target_noise_test"):
        wav = {}
        for index in range(2):
            path = root / "audio" / name / f"{index}.wav"
            _write(path, 0.4 + 0.1 * index)
            wav[f"spk{index}-{name}{index}"] = str(path)
        (root / name).mkdir(parents=True)
        (root / name / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in wav.items()))
        (root / name / "utt2spk").write_text("".join(f"{k} {k.split('-')[0]}\n" for k in wav))


def test_fixed_sets_do_not_depend_on_training_sizes_or_seed(tmp_path):
    from speechlib.tasks.se_uda import mix

    _mini_data(tmp_path / "data")
    hp = {"sample_rate": 16000, "test_seed": 7, "train_snr_range": [-5, 5], "valid_segment_seconds": 0.3,
          "num_valid": 3, "test_snrs": [-5, 0], "english_test_snrs": [0], "source_test_snrs": [0],
          "max_test_utts": None, "max_test_seconds": 1.0, "seed": 1, "num_source_train": 10,
          "segment_seconds": 1.0}
    hashes = []
    for changes in ({}, {"seed": 3, "num_source_train": 5000, "segment_seconds": 4.0}):
        data = tmp_path / f"run{len(hashes)}"
        import shutil
        shutil.copytree(tmp_path / "data", data)
        load = mix.AudioCache(16000, "error")
        for spec in mix.mixture_specs({**hp, **changes}):
            mix.make_set(data, spec, {**hp, **changes}, load)
        hashes.append({spec.name: mix.read_manifest(data / spec.name)["audio"] for spec in mix.mixture_specs(hp)})
    assert hashes[0] == hashes[1] and len(hashes[0]) == 6
    # a set is written once: the same inputs leave it untouched; another test_seed draws anew
    before = (data / "target_test_snr0" / "wav.scp").stat().st_mtime_ns
    mix.make_set(data, mix.mixture_specs(hp)[3], hp, mix.AudioCache(16000, "error"))
    assert (data / "target_test_snr0" / "wav.scp").stat().st_mtime_ns == before
    mix.make_set(data, mix.mixture_specs(hp)[2], {**hp, "test_seed": 8}, mix.AudioCache(16000, "error"))
    assert mix.read_manifest(data / "source_test_snr0")["audio"] != hashes[0]["source_test_snr0"]


def test_remixed_mixtures_are_reproducible_and_new_each_epoch(tmp_path):
    from speechlib.tasks.se_uda.data import RemixedMixtures

    _mini_data(tmp_path)
    make = lambda frozen=False: RemixedMixtures(tmp_path / "source_speech_test", tmp_path / "target_noise_train",  # noqa: E731
                                                5, 0.25, (-5, 5), 16000, 1, True, "s", frozen=frozen)
    first, again = make(), make()
    item = first[2]
    torch.testing.assert_close(item["sig"], again[2]["sig"])
    torch.testing.assert_close(item["sig"], item["speech_sig"] + item["noise_sig"])
    assert item["sig"].shape == (4000,) and item["id"] == "s000002"
    first.set_epoch(2)
    assert not torch.equal(first[2]["sig"], item["sig"])
    frozen = make(frozen=True)
    frozen.set_epoch(2)
    torch.testing.assert_close(frozen[2]["sig"], item["sig"])


def test_enhance_cli_file_dir_scp_and_rate(tmp_path):
    """The command in-process (each interpreter start costs seconds of CPU); the refusal as a user
    sees it, from a subprocess: one line, exit 1, no traceback."""
    from speechlib.tasks.se_uda import enhance
    from speechlib.tasks.se_uda.common import save_model

    model = SpeechNoiseUNet((4, 8, 8, 8))
    save_model(tmp_path / "exp" / "models" / "srst_similar", model)
    _write(tmp_path / "in" / "a.wav", 1.0)
    _write(tmp_path / "in" / "b.wav", 0.7)
    _write(tmp_path / "in8k.wav", 0.5, sr=8000)
    (tmp_path / "wav.scp").write_text(f"u1 {tmp_path / 'in' / 'a.wav'}\nu2 {tmp_path / 'in' / 'b.wav'}\n")
    base = ["--model", str(tmp_path / "exp"), "--quiet"]
    threads = torch.get_num_threads()
    try:
        assert enhance.main(base + ["--in", str(tmp_path / "in" / "a.wav"), "--out", str(tmp_path / "o.wav")]) == 0
        assert soundfile.info(tmp_path / "o.wav").frames == 16000
        assert enhance.main(base + ["--in", str(tmp_path / "in"), "--out", str(tmp_path / "odir"),
                                    "--batch-size", "2"]) == 0
        assert sorted(p.name for p in (tmp_path / "odir").iterdir()) == ["a.wav", "b.wav"]
        assert enhance.main(base + ["--in", str(tmp_path / "wav.scp"), "--out", str(tmp_path / "oscp")]) == 0
        assert set(read_dict(tmp_path / "oscp" / "wav.scp")) == {"u1", "u2"}
        # the model runs at 16 kHz, the output stays 8 kHz
        assert enhance.main(base + ["--in", str(tmp_path / "in8k.wav"), "--out", str(tmp_path / "r.wav")]) == 0
        assert (soundfile.info(tmp_path / "r.wav").samplerate, soundfile.info(tmp_path / "r.wav").frames) == (8000, 4000)
    finally:
        torch.set_num_threads(threads)
    out = run([PYTHON, "-m", "speechlib.tasks.se_uda.enhance", "--model", str(tmp_path / "exp"), "--system", "dann",
               "--in", str(tmp_path / "in8k.wav"), "--out", str(tmp_path / "x.wav")])
    assert out.returncode == 1 and "not a model directory" in out.stderr and "Traceback" not in out.stderr
