"""speechlib.io: atomic writes, Kaldi tables, audio files and pipes."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
from scipy.signal import welch

from speechlib.io.atomic import atomic_directory, atomic_open, atomic_write_text
from speechlib.io.audio import audio_info, check_not_silent, load_audio, resample, resample_channels, write_audio
from speechlib.io.errors import InputError
from speechlib.io.kaldi import read_dict, read_table, write_table
from speechlib.signal.noise import coloured_noise
from tests.helpers import write_tone


def test_atomic_open_leaves_old_content_when_interrupted(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_directory_swaps_complete_dirs_only(tmp_path):
    target = tmp_path / "d"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_tables_round_trip_sorted_in_c_locale(tmp_path):
    write_table(tmp_path / "t", {"b": "2", "B": "x y", "a": ["u1", "u2"], "é": "3"})
    assert (tmp_path / "t").read_text() == "B x y\na u1 u2\nb 2\né 3\n"
    assert read_dict(tmp_path / "t") == {"B": "x y", "a": "u1 u2", "b": "2", "é": "3"}


@pytest.mark.parametrize("content,line,message", [
    ("a 1\nb\n", 2, "has no value"),
    ("a 1\n\nb 2\n", 2, "empty line"),
    ("a 1\n b 2\n", 2, "starts with white space"),
])
def test_table_errors_name_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "utt2spk"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        read_table(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value)


def test_duplicate_key_is_named(tmp_path):
    (tmp_path / "text").write_text("a x\nb y\nb z\n")
    with pytest.raises(InputError, match=r"text:3: duplicate key 'b'"):
        read_dict(tmp_path / "text")


def test_pipe_and_file_read_the_same_samples(tmp_path):
    wav = write_tone(tmp_path / "a.wav")
    direct, sr = load_audio(str(wav), 16000)
    piped, sr2 = load_audio(f"cat {wav} |", 16000)
    assert sr == sr2 == 16000 and np.array_equal(direct, piped)
    part, _ = load_audio(str(wav), 16000, start=0.1, end=0.2)
    assert np.array_equal(part, direct[1600:3200])
    assert audio_info(str(wav)).duration == pytest.approx(0.5)


def test_audio_errors_name_utterance_and_path(tmp_path):
    wav = write_tone(tmp_path / "a.wav", sample_rate=8000)
    with pytest.raises(InputError, match=r"utterance 'u1': .*a.wav has sample rate 8000 Hz, expected 16000"):
        load_audio(str(wav), 16000, utt="u1")
    with pytest.raises(InputError, match=r"utterance 'u2': audio file does not exist: .*missing.wav"):
        load_audio(str(tmp_path / "missing.wav"), utt="u2")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(InputError, match=r"utterance 'u3': cannot read audio .*junk.wav"):
        load_audio(str(tmp_path / "junk.wav"), utt="u3")
    with pytest.raises(InputError, match=r"utterance 'u4': command failed"):
        load_audio("false |", utt="u4")
    with pytest.raises(InputError, match="silent"):
        check_not_silent(np.zeros(100, dtype=np.float32), "u5")


def test_resample_keeps_a_tone_and_its_level(tmp_path):
    sr_in, sr_out, freq = 48000, 16000, 1000.0
    t = np.arange(sr_in) / sr_in
    out = resample((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr_in, sr_out)
    assert out.shape == (sr_out,)
    spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(sr_out - 2000)))
    assert np.argmax(spectrum) * sr_out / (sr_out - 2000) == pytest.approx(freq, abs=2)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


@pytest.mark.parametrize("orig,target,length", [(48000, 16000, 48001), (16000, 48000, 16003), (44100, 16000, 44100),
                                                 (16000, 44100, 7001), (8000, 16000, 5), (48000, 16000, 2),
                                                 (16001, 16000, 999)])  # the last: resample_poly row by row
def test_resample_channels_equals_resample_poly_per_channel(orig, target, length):
    """The user commands' block-matrix resampler against scipy's resample_poly on each channel
    (the reference, called directly): same length, same samples within float32 rounding, for
    down- and up-sampling, uneven ratios, very short signals and a (frames, channels) transpose."""
    from scipy.signal import resample_poly

    frames = (0.5 * np.random.default_rng(length).standard_normal((length, 2))).astype(np.float32)
    out = resample_channels(frames.T, orig, target)
    gcd = np.gcd(orig, target)
    for channel in range(2):
        expected = resample_poly(frames[:, channel], target // gcd, orig // gcd)
        assert out[channel].shape == expected.shape and out.dtype == np.float32
        np.testing.assert_allclose(out[channel], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(resample_channels(frames.T, orig, orig), frames.T)


def test_write_audio_is_atomic_and_readable(tmp_path):
    signal = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    write_audio(tmp_path / "x.flac", signal, 16000)
    data, sr = soundfile.read(tmp_path / "x.flac", dtype="float32")
    assert sr == 16000 and np.allclose(data, signal, atol=1 / 32768)


@pytest.mark.parametrize("colour,exponent", [("white", 0.0), ("pink", 1.0), ("brown", 2.0)])
def test_coloured_noise_has_the_right_spectral_slope(colour, exponent):
    noise = coloured_noise(2**16, colour, np.random.default_rng(0))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=1e-4)
    freqs, psd = welch(noise, nperseg=4096)
    band = (freqs > 0.005) & (freqs < 0.4)
    slope = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.15)
