"""Unit tests of the mushra_gml building blocks, each against an independent calculation."""
from __future__ import annotations

import numpy as np
import pytest

from speechlib.io.errors import InputError
from speechlib.signal.codecs import CODECS, encode_decode, lowpass_anchor

SR = 48000


def _band_noise(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return lowpass_anchor(0.1 * rng.standard_normal((int(seconds * SR), channels)), SR, 4000)


# -- codecs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_keeps_shape_and_alignment(codec):
    x = _band_noise(1.0)
    y = encode_decode(x, SR, codec, 96)
    assert y.shape == x.shape and y.dtype == np.float32
    inner = slice(2000, -2000)
    lags = range(-40, 41)
    best = max(lags, key=lambda k: float(np.sum(x[inner] * np.roll(y, k, axis=0)[inner])))
    assert best == 0  # time-aligned to the sample
    assert 10 * np.log10(np.sum(x ** 2) / np.sum((x - y) ** 2)) > 8  # a real decode, not noise


def test_align_recovers_a_known_shift_of_stereo_and_mono():
    from speechlib.signal.codecs import align

    x = _band_noise(0.5)
    for lag in (-300, 0, 777):  # the signal late by `lag` samples, zero-filled
        late = np.roll(x, lag, axis=0)
        if lag > 0:
            late[:lag] = 0
        elif lag < 0:
            late[lag:] = 0
        out = align(x, late, 1000)
        inner = slice(800, -800)
        np.testing.assert_allclose(out[inner], x[inner], atol=1e-6)
        np.testing.assert_allclose(align(x[:, 0], late[:, 0], 1000)[inner], x[inner, 0], atol=1e-6)


def test_segment_lag_search_equals_the_full_correlation_on_codec_outputs(monkeypatch):
    """predict's alignment (`segment`: the central 65536 samples' correlation, then the full
    correlation climbed exactly from its peaks) finds the full correlation's lag, computed here
    independently (scipy.signal.correlate in float64), on real codec outputs with known delays
    (dual mono among them); a sustained tone (peaks at every period) and a central pause are
    left to the full correlation."""
    from scipy.signal import correlate

    from speechlib.signal import codecs

    exact_terms = []  # lags the segment search evaluated exactly (none: the full correlation was used)
    product = codecs._lag_product
    monkeypatch.setattr(codecs, "_lag_product", lambda r, s, lag: exact_terms.append(lag) or product(r, s, lag))
    t = np.arange(5 * SR) / SR
    noise = _band_noise(5.0, seed=3) * (1.2 + np.sin(2 * np.pi * 3 * t))[:, None]  # a varying level
    tone = (noise + 0.3 * np.sin(2 * np.pi * 220 * t)[:, None]).astype(np.float32)
    paused = noise.astype(np.float32)
    paused[len(t) // 2 - 40000:len(t) // 2 + 40000] *= 1e-3
    cases = [(noise, "aac", 24, False, True), (noise, "opus", 12, True, True), (noise, "mp3", 32, False, True),
             (noise, "vorbis", 48, False, True), (tone, "aac", 32, False, False), (paused, "opus", 24, False, False)]
    for signal, codec, kbps, mono, segment_used in cases:
        ref = signal.sum(axis=1)
        coded = encode_decode(signal, SR, codec, kbps, mono=mono).sum(axis=1)
        for delay in (0, -1500, 4096):
            late = np.concatenate([np.zeros(delay, np.float32), coded])[:len(coded) + 200] if delay >= 0 \
                else coded[-delay:]
            full = correlate(late.astype(np.float64), ref.astype(np.float64), mode="full", method="fft")
            lags = np.arange(-4096, 4097)
            expected = int(lags[np.argmax(full[lags + len(ref) - 1])])
            assert expected == delay, (codec, delay)
            exact_terms.clear()
            assert codecs.best_lag(ref, late, 4096, segment=1 << 16) == expected, (codec, delay)
            assert bool(exact_terms) == segment_used, (codec, delay)
            assert codecs.best_lag(ref, late, 4096) == expected, (codec, delay)


def test_codec_dual_mono_and_other_rate():
    x = _band_noise(1.0)
    y = encode_decode(x, SR, "aac", 48, mono=True)
    assert y.shape == x.shape and np.array_equal(y[:, 0], y[:, 1])
    z = encode_decode(x[:44100, 0], 44100, "opus", 24)  # Opus codes at 48 kHz internally
    assert z.shape == (44100,)


def test_codec_errors_are_one_line():
    with pytest.raises(InputError, match="unknown codec"):
        encode_decode(_band_noise(0.1), SR, "ac4", 64)


def test_lowpass_anchor_attenuates_above_cutoff():
    t = np.arange(SR) / SR
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 8000 * t)
    out_low, out_high = lowpass_anchor(low, SR, 3500), lowpass_anchor(high, SR, 3500)
    inner = slice(4800, -4800)
    assert abs(np.std(out_low[inner]) / np.std(low[inner]) - 1) < 0.01
    assert 20 * np.log10(np.std(out_high[inner]) / np.std(high[inner])) < -60


# -- gammatone ----------------------------------------------------------------------------------

def test_gammatone_matches_fft_gtgram_exactly():
    import torch
    from gammatone.fftweight import fft_gtgram

    from speechlib.signal.gammatone import GammatoneSpectrogram

    x = np.random.default_rng(1).standard_normal(SR + 777)
    reference = fft_gtgram(x, SR, 0.08, 0.02, 32, 50)
    ours = GammatoneSpectrogram(SR, 32, 50.0, 0.08, 0.02)(torch.tensor(x, dtype=torch.float32)).numpy()
    assert ours.shape == reference.shape
    # the package leaves its last column empty when (samples - nfft) is a multiple of the hop
    filled = reference.any(axis=0)
    np.testing.assert_allclose(ours[:, filled], reference[:, filled], rtol=1e-4, atol=1e-6 * reference.max())


def test_gammatone_close_to_true_filterbank_on_short_clip():
    """The package's IIR filterbank (gtgram) and our FFT weighting pick the same band for tones
    across the range and order the bands alike (the FFT method sums magnitudes, the filterbank
    takes the RMS, so levels differ by a bandwidth factor, not in where energy lies)."""
    import torch
    from gammatone.gtgram import gtgram

    from speechlib.signal.gammatone import GammatoneSpectrogram

    g = GammatoneSpectrogram(SR)
    t = np.arange(SR // 4) / SR
    for freq in (120.0, 450.0, 1000.0, 2500.0, 6000.0, 12000.0, 19000.0):
        tone = np.sin(2 * np.pi * freq * t)
        filterbank = gtgram(tone, SR, 0.08, 0.02, 32, 50)
        ours = g(torch.tensor(tone, dtype=torch.float32)).numpy()
        fb_profile, our_profile = filterbank.mean(axis=1), ours.mean(axis=1)
        assert abs(int(np.argmax(fb_profile)) - int(np.argmax(our_profile))) <= 1, freq
        near = np.abs(np.arange(32) - np.argmax(fb_profile)) <= 3
        assert np.corrcoef(np.log(fb_profile[near]), np.log(our_profile[near]))[0, 1] > 0.9, freq


def test_stereo_pair_features_batched_and_swap():
    import torch

    from speechlib.signal.augment import swap_left_right, swap_left_right_features
    from speechlib.signal.gammatone import GammatoneSpectrogram, stereo_pair_features

    g = GammatoneSpectrogram(SR)
    rng = np.random.default_rng(3)
    ref = torch.tensor(rng.standard_normal((3, 2, SR // 2)), dtype=torch.float32)
    cod = ref + 0.1 * torch.randn(3, 2, SR // 2)
    feats = stereo_pair_features(g, ref, cod)
    assert feats.shape == (3, 4, 2, 32, g.num_frames(SR // 2))
    # one item alone gives the same as in the batch
    torch.testing.assert_close(stereo_pair_features(g, ref[1:2], cod[1:2])[0], feats[1], rtol=1e-4, atol=1e-4)
    # M and S from the L and R spectra equal the gammatone of the mid and side signals
    mid = torch.log10(g((ref[:, 0] + ref[:, 1]) / 2) + 1e-5)
    torch.testing.assert_close(feats[:, 2, 0], mid, rtol=1e-4, atol=1e-4)
    side = torch.log10(g((cod[:, 0] - cod[:, 1]) / 2) + 1e-5)
    torch.testing.assert_close(feats[:, 3, 1], side, rtol=1e-4, atol=1e-4)
    # frames in chunks (here one frame at a time) give the same as one pass
    torch.testing.assert_close(stereo_pair_features(g, ref, cod, chunk_blocks=1), feats, rtol=1e-5, atol=1e-5)
    # L/R swap of the waveform keeps M, negates S; on features: L and R planes exchange
    swapped = swap_left_right(ref)
    torch.testing.assert_close(swapped.mean(1), ref.mean(1))
    torch.testing.assert_close((swapped[:, 0] - swapped[:, 1]) / 2, -(ref[:, 0] - ref[:, 1]) / 2)
    torch.testing.assert_close(stereo_pair_features(g, swapped, swap_left_right(cod)),
                               swap_left_right_features(feats), rtol=1e-4, atol=1e-4)


# -- augmentation -------------------------------------------------------------------------------

def _scores(batch: int, listeners: int, seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 101, (batch, listeners), generator=gen).float()
    mask = torch.ones(batch, listeners, dtype=torch.bool)
    mask[0, -2:] = False  # a smaller panel
    return scores, mask


def test_cutmix_area_and_labels_per_listener():
    import torch

    from speechlib.signal.augment import cutmix

    features = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1, 1, 1).expand(4, 4, 2, 32, 50).clone()
    scores, mask = _scores(4, 5)
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        mixed, mixed_scores, lam = cutmix(features, scores, mask, 0.7, gen)
        for i in range(4):
            changed = (mixed[i] != features[i]).float()
            if changed.sum() == 0:  # paired with itself, or an empty box (lam = 1)
                continue
            partner = int(mixed[i][changed.bool()][0])
            area = float(changed[0, 0].mean())  # the same box on every plane
            assert torch.all(changed == changed[0, 0])
            box = changed[0, 0].bool()  # one rectangle of (band, frame), clipped to the plane
            assert torch.equal(box, box.any(1, keepdim=True) & box.any(0, keepdim=True))
            assert area == pytest.approx(1 - float(lam), abs=1e-6)  # lam recomputed from the clipped box
            # eq. 5 per listener; slot k pairs with slot k where the partner has that listener,
            # else with one of the partner's listeners
            for k in range(5):
                mixed_k = float(mixed_scores[i, k])
                if mask[i, k] and mask[partner, k]:
                    expected = float(lam) * scores[i, k] + (1 - float(lam)) * scores[partner, k]
                    assert mixed_k == pytest.approx(float(expected), abs=1e-4)
                elif mask[i, k]:
                    candidates = [float(lam * scores[i, k] + (1 - lam) * scores[partner, j])
                                  for j in range(5) if mask[partner, j]]
                    assert min(abs(mixed_k - c) for c in candidates) < 1e-4


def test_mixup_blends_features_and_listener_scores():
    import torch

    from speechlib.signal.augment import mixup

    gen = torch.Generator().manual_seed(5)
    features = torch.randn(3, 4, 2, 8, 10)
    scores, mask = _scores(3, 4)
    mask[:] = True
    mixed, mixed_scores, lam = mixup(features, scores, mask, 0.7, gen)
    lam = float(lam)
    for i in range(3):
        # find the partner from the features, then check the labels with the same partner
        partner = min(range(3), key=lambda j: float((mixed[i] - lam * features[i] - (1 - lam) * features[j]).abs().max()))
        torch.testing.assert_close(mixed[i], lam * features[i] + (1 - lam) * features[partner])
        torch.testing.assert_close(mixed_scores[i], lam * scores[i] + (1 - lam) * scores[partner])


def test_pair_listeners_falls_back_to_a_rated_listener():
    import torch

    from speechlib.signal.augment import pair_listeners

    mask_a = torch.ones(2, 4, dtype=torch.bool)
    mask_b = torch.tensor([[True, True, False, False], [True, True, True, True]])
    pairs = pair_listeners(mask_a, mask_b, torch.Generator().manual_seed(0))
    assert pairs[1].tolist() == [0, 1, 2, 3]
    assert pairs[0, :2].tolist() == [0, 1] and all(int(p) in (0, 1) for p in pairs[0, 2:])


# -- metrics ------------------------------------------------------------------------------------

def test_nlls_against_scipy():
    import torch
    from scipy import stats

    from speechlib.metrics.mushra import gaussian_nll, logistic_nll

    s = torch.linspace(-3, 3, 13, dtype=torch.float64)
    mu, log_scale = torch.tensor(0.4, dtype=torch.float64), torch.tensor(-0.3, dtype=torch.float64)
    scale = float(np.exp(-0.3))
    np.testing.assert_allclose(logistic_nll(s, mu, log_scale).numpy(),
                               -stats.logistic.logpdf(s.numpy(), loc=0.4, scale=scale), rtol=1e-10)
    np.testing.assert_allclose(gaussian_nll(s, mu, log_scale).numpy(),
                               -stats.norm.logpdf(s.numpy(), loc=0.4, scale=scale), rtol=1e-10)
    far = logistic_nll(torch.tensor([1e4]), torch.tensor(0.0), torch.tensor(0.0))  # no overflow
    assert torch.isfinite(far).all()


def test_logistic_std_and_t_ci():
    from scipy import stats

    from speechlib.metrics.mushra import distribution_std, t_ci_halfwidth

    a = 3.0
    samples = np.random.default_rng(0).logistic(0, a, 400000)
    assert distribution_std(np.log(a), "logistic") == pytest.approx(np.pi * a / np.sqrt(3))
    assert distribution_std(np.log(a), "logistic") == pytest.approx(samples.std(), rel=0.01)
    assert distribution_std(np.log(a), "logistic") == pytest.approx(stats.logistic.std(scale=a))
    x = np.array([60, 72, 55, 80, 66, 71, 58.0])
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert t_ci_halfwidth(x.std(ddof=1), len(x)) == pytest.approx((high - low) / 2)


def test_outlier_ratio_coverage_and_table_metrics_by_hand():
    from scipy import stats

    from speechlib.metrics.mushra import ci_coverage, outlier_ratio, panel_statistics, test_set_metrics

    subjective, ci = np.array([20.0, 50.0, 80.0, 90.0]), np.array([5.0, 5.0, 5.0, 5.0])
    predicted = np.array([26.0, 52.0, 74.0, 95.0])  # outside, inside, outside, on the edge
    assert outlier_ratio(predicted, subjective, ci) == 0.5
    assert ci_coverage(predicted, np.array([7.0, 1.0, 5.0, 4.0]), subjective) == 0.25  # only the first
    m = test_set_metrics(predicted, subjective, ci, predicted_ci=np.array([4.0, 5.0, 6.0, 7.0]))
    assert m["rp"] == pytest.approx(stats.pearsonr(predicted, subjective)[0])
    assert m["rs"] == pytest.approx(stats.spearmanr(predicted, subjective)[0])
    assert m["ci_rmse"] == pytest.approx(np.sqrt(np.mean([1, 0, 1, 4])))
    scores = np.array([[10.0, 20.0, np.nan], [50, 60, 70]])
    mean, std, n = panel_statistics(np.nan_to_num(scores), np.isfinite(scores))
    np.testing.assert_allclose(mean, [15, 60]); np.testing.assert_allclose(std, [np.std([10, 20], ddof=1), 10])
    assert n.tolist() == [2, 3]


# -- network ------------------------------------------------------------------------------------

def test_inse_net_shapes_and_any_length():
    import torch

    from speechlib.nn.inse import StereoInSENet

    model = StereoInSENet(outputs=2).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 4, 2, 32, 60)).shape == (2, 2)
        assert model(torch.randn(1, 4, 2, 32, 17)).shape == (1, 2)
    assert StereoInSENet(outputs=1)(torch.randn(2, 4, 2, 32, 20)).shape == (2, 1)


def test_predict_listener_network_equals_the_plain_network(tmp_path):
    """predict runs the network with channels-last weights (2x faster on a CPU thread): the same
    outputs as the network as trained, with non-trivial batch-norm statistics."""
    import torch

    from speechlib.nn.inse import StereoInSENet
    from speechlib.tasks.mushra_gml.predict import Listener, resolve_model
    from speechlib.tasks.mushra_gml.train import save_listener

    torch.manual_seed(0)
    hp = {"sample_rate": SR, "corpus": "test", "score_centre": 50.0, "score_scale": 25.0,
          "gammatone": {"num_bands": 32}, "model": {"stem": 8, "branches": [8, 16], "hidden": 32,
                                                    "stem_stride": [2, 4]}}
    model = StereoInSENet(outputs=2, **hp["model"])
    for norm in model.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
    save_listener(tmp_path / "model", model, hp, "gml", SR, seed=0)
    listener = Listener(resolve_model(str(tmp_path)))
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in listener.model.parameters() if p.dim() == 4)
    features = torch.randn(2, 4, 2, 32, 70)
    with torch.inference_mode():
        torch.testing.assert_close(listener.model(features), model.eval()(features), rtol=1e-5, atol=1e-5)


# -- listening-test readers and BS.1534-3 post-screening -----------------------------------------

ODAQ_XML = """<?xml version="1.0" encoding="UTF-8"?>
<MUSHRA>
  <info subjectName="{who}" testName="ODAQ" stimuliDirectory="ODAQ_listening_test" trialsPerSession="2" testStatus="finished"/>
  <session>
    <trial trialName="LP_item01" trialSeconds="95.2" referencePlays="4">
      <testFile fileName="item01_reference.wav" plays="2" score="{ref1}"/>
      <testFile fileName="item01_lp35.wav" plays="1" score="{lp1}"/>
      <testFile fileName="item01_lp70.wav" plays="1" score="45"/>
      <testFile fileName="item01_LP_5k.wav" plays="3" score="62"/>
    </trial>
    <trial trialName="LP_item02" trialSeconds="80.0" referencePlays="3">
      <testFile fileName="item02_reference.wav" plays="2" score="{ref2}"/>
      <testFile fileName="item02_lp35.wav" plays="1" score="{lp2}"/>
      <testFile fileName="item02_lp70.wav" plays="1" score="40"/>
      <testFile fileName="item02_LP_5k.wav" plays="3" score="58"/>
    </trial>
  </session>
</MUSHRA>
"""


def _odaq(tmp_path, listeners):
    results, audio = tmp_path / "results", tmp_path / "ODAQ_listening_test"
    results.mkdir()
    for trial in ("LP_item01", "LP_item02"):
        (audio / trial).mkdir(parents=True)
        for name in ("reference", "lp35", "lp70", "LP_5k"):
            (audio / trial / f"{trial.split('_')[1]}_{name}.wav").write_bytes(b"")
    for who, (ref1, ref2, lp1, lp2) in listeners.items():
        (results / f"{who}.xml").write_text(ODAQ_XML.format(who=who, ref1=ref1, ref2=ref2, lp1=lp1, lp2=lp2))
    return results, audio


def test_odaq_reader_real_layout(tmp_path):
    from speechlib.data.odaq import read_odaq

    results, audio = _odaq(tmp_path, {"L01": (100, 95, 20, 15), "L02": (98, 100, 10, 30)})
    ratings = read_odaq([results], audio)
    assert len(ratings) == 16
    first = ratings[0]
    assert (first.test, first.trial, first.condition, first.listener, first.score) == \
        ("LP", "LP_item01", "item01_reference", "L01", 100.0)
    assert first.reference.endswith("LP_item01/item01_reference.wav")
    assert ratings[3].coded.endswith("LP_item01/item01_LP_5k.wav") and ratings[3].score == 62


def test_odaq_reader_bad_score_names_file_and_line(tmp_path):
    from speechlib.data.odaq import read_odaq

    results, audio = _odaq(tmp_path, {"L01": (100, 95, 120, 15)})
    with pytest.raises(InputError, match=r"L01\.xml:7: score 120 is outside 0-100"):
        read_odaq([results], audio)


WEBMUSHRA_CSV = """session_test_id,email,age,gender,trial_id,rating_stimulus,rating_score,rating_time,rating_comment
mushra_codec,{who}@x.org,31,female,trial1,reference,{ref},20331,
mushra_codec,{who}@x.org,31,female,trial1,anchor35,{anchor},20331,
mushra_codec,{who}@x.org,31,female,trial1,C1,55,20331,sounds thin
mushra_codec,{who}@x.org,31,female,trial2,reference,100,15770,
mushra_codec,{who}@x.org,31,female,trial2,anchor35,12,15770,
mushra_codec,{who}@x.org,31,female,trial2,C1,71,15770,
"""


def test_webmushra_reader_real_layout(tmp_path):
    from speechlib.data.webmushra import read_webmushra_csv

    path = tmp_path / "mushra.csv"
    path.write_text(WEBMUSHRA_CSV.format(who="ann", ref=97, anchor=20))
    ratings = read_webmushra_csv(path)
    assert len(ratings) == 6
    assert (ratings[2].test, ratings[2].trial, ratings[2].condition, ratings[2].listener, ratings[2].score) == \
        ("mushra_codec", "trial1", "C1", "ann@x.org", 55.0)
    path.write_text(WEBMUSHRA_CSV.format(who="ann", ref="n/a", anchor=20))
    with pytest.raises(InputError, match=r"mushra\.csv:2: score 'n/a' is not a number"):
        read_webmushra_csv(path)


def test_post_screening_on_constructed_listeners(tmp_path):
    from speechlib.data.listening_tests import Rating, post_screen

    def listener(name, ref_scores, anchor_scores):
        return [r for t, (ref, anchor) in enumerate(zip(ref_scores, anchor_scores))
                for r in (Rating("T", f"t{t}", "reference", name, ref), Rating("T", f"t{t}", "lp35", name, anchor),
                          Rating("T", f"t{t}", "aac_64", name, 70.0))]

    trials = 20
    good = listener("good", [100] * 17 + [85] * 3, [20] * trials)     # 15 % below 90: kept (not > 15 %)
    sloppy = listener("sloppy", [100] * 16 + [85] * 4, [20] * trials)  # 20 %: excluded
    high = listener("high", [100] * trials, [95] * 4 + [30] * 16)      # anchor > 90 in 20 %: excluded
    kept, report = post_screen(good + sloppy + high)
    assert report.kept == {"T": ["good"]}
    assert set(report.excluded["T"]) == {"sloppy", "high"}
    assert "hidden reference < 90 in 20%" in report.excluded["T"]["sloppy"]
    assert "anchor > 90 in 20%" in report.excluded["T"]["high"]
    assert {r.listener for r in kept} == {"good"} and len(kept) == 3 * trials


def test_generic_csv_missing_trial_and_bad_score(tmp_path):
    from speechlib.data.listening_tests import check_complete, read_generic_csv

    path = tmp_path / "scores.csv"
    header = "test,trial,condition,listener,score,reference,coded\n"
    rows = [f"T,{t},{c},{w},50,ref.wav,{c}.wav\n" for w in ("a", "b") for t in ("x", "y") for c in ("reference", "aac")]
    path.write_text(header + "".join(rows[:-2]))  # listener b lacks trial y
    with pytest.raises(InputError, match=r"scores\.csv: test T: listener b has no score for trial y"):
        check_complete(read_generic_csv(path))
    path.write_text(header + rows[0] + rows[1].replace(",50,", ",101,"))
    with pytest.raises(InputError, match=r"scores\.csv:3: score 101 is outside 0-100"):
        read_generic_csv(path)


# -- the simulated panel and the training split ---------------------------------------------------

def test_simulated_panel_careless_listeners_are_screened_out():
    from speechlib.data.listening_tests import Rating, post_screen
    from speechlib.tasks.mushra_gml.panel import (Condition, ExcerptTraits, PanelModel, latent_quality,
                                                  simulate_panel)

    rng = np.random.default_rng(0)
    names = ["reference", "lp35", "lp70", "aac_32", "aac_128", "opus_24", "mp3_64", "aac_24_mono"]
    traits = [ExcerptTraits(c, w, {3500: h, 5000: h / 2, 7000: h / 4})
              for c, w, h in rng.uniform([0, 0, 0.01], [1, 0.5, 0.2], size=(10, 3))]
    rows = [(t, Condition.parse(n)) for t in range(10) for n in names]
    latent = np.array([latent_quality(c, traits[t]) for t, c in rows])
    assert latent[0] == 100 and all(latent[i * 8 + 1] < latent[i * 8 + 2] < 100 for i in range(10))
    scores, careless = simulate_panel(latent, np.array([traits[t].criticality for t, _ in rows]),
                                      np.array([t for t, _ in rows]), 40, PanelModel(careless_share=0.3), rng)
    ratings = [Rating("T", f"x{t}", c.name, f"L{k}", float(scores[i, k]))
               for i, (t, c) in enumerate(rows) for k in range(40)]
    _, report = post_screen(ratings)
    excluded = {int(who[1:]) for who in report.excluded["T"]}
    assert set(np.flatnonzero(careless)) <= excluded  # every careless listener caught
    assert len(excluded - set(np.flatnonzero(careless))) <= 2  # few careful ones lost


def test_folds_keep_excerpts_whole():
    from speechlib.tasks.mushra_gml.train import fold_of_items

    items = [f"T-x{t}-c{c}" for t in range(10) for c in range(5)]
    folds = fold_of_items(items, 5, seed=3)
    for t in range(10):
        assert len(set(folds[t * 5:(t + 1) * 5])) == 1
    assert sorted(np.bincount(folds).tolist()) == [10] * 5
