"""speechlib.io.inference / speechlib.io.inputs: the rules every user command inherits.

The models here are tiny NumPy functions, so each rule is checked against a result computed by
hand (a gain, a per-window normalisation), independent of any trained network.
"""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import time

import numpy as np
import pytest
import soundfile

from speechlib.io import inference
from speechlib.io.inputs import plan
from tests.helpers import PYTHON, REPO

RATE = 16000


def gain(factor: float = 0.5, context: int = 400, min_samples: int = 64):
    return lambda args: inference.WaveformModel(RATE, lambda batch: factor * batch, context, min_samples)


def normalise(args):
    """Output depends on every sample a window holds: zero padding would change it."""
    return inference.WaveformModel(RATE, lambda b: 0.1 * b / b.std(axis=1, keepdims=True), 800, 64)


def run(tmp_path, load, *argv, capsys=None, scoring=False) -> tuple[int, str]:
    code = inference.main("test.cmd", "a test command", load, argv=["--model", "m", "--quiet", *map(str, argv)],
                          memory_mb=100, scoring=scoring)
    return code, (capsys.readouterr() if capsys else None)


def tone(path, seconds=1.0, rate=RATE, channels=1, freq=440.0, amp=0.3, subtype="PCM_16"):
    t = np.arange(int(seconds * rate)) / rate
    data = np.stack([amp / (c + 1) * np.sin(2 * np.pi * freq * (c + 1) * t) for c in range(channels)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, data[:, 0] if channels == 1 else data, rate, subtype=subtype)
    return path


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_48k_stereo_keeps_rate_channels_length(tmp_path):
    source = tone(tmp_path / "in.wav", seconds=1.3, rate=48000, channels=2, freq=500.0)
    code, _ = run(tmp_path, gain(), "--in", source, "--out", tmp_path / "out.wav")
    assert code == 0
    data, rate = soundfile.read(tmp_path / "out.wav")
    original, _ = soundfile.read(source)
    assert rate == 48000 and data.shape == original.shape
    # Each channel on its own: channel 2 (1 kHz, half amplitude) is not mixed into channel 1.
    np.testing.assert_allclose(data[2000:-2000], 0.5 * original[2000:-2000], atol=2e-3)


def test_48k_stereo_output_equals_the_per_channel_scipy_path(tmp_path):
    """What a command writes for a 48 kHz stereo file, against the path computed by hand: each
    channel through scipy's resample_poly to the model's rate, the model, resample_poly back, cut
    to the input's length. The model is memoryless and non-linear (windows and cross-fades cannot
    change it, resampling back does not undo resampling down), written as float so that nothing
    is rounded to 16 bits: equal within float32 rounding."""
    from scipy.signal import resample_poly

    frames = 48000 + 7  # not a multiple of the 3:1 ratio
    rng = np.random.default_rng(5)
    data = (0.4 * rng.standard_normal((frames, 2))).astype(np.float32)
    soundfile.write(tmp_path / "in.wav", data, 48000, subtype="FLOAT")
    model = inference.WaveformModel(RATE, lambda batch: np.tanh(3 * batch) / 3, context=400, min_samples=64)
    runner = inference.Runner("test.cmd", model, chunk_seconds=0.3, suffix_subtype="FLOAT", progress=False)
    summary = runner.run(plan(str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), ".wav"))
    assert len(summary.done) == 1
    out, rate = soundfile.read(tmp_path / "out.wav", dtype="float32")
    assert rate == 48000 and out.shape == data.shape
    for channel in range(2):
        low = resample_poly(data[:, channel], 1, 3)
        expected = resample_poly(np.tanh(3 * low) / 3, 3, 1)[:frames]
        np.testing.assert_allclose(out[:, channel], expected, rtol=0, atol=1e-6)


def test_directory_mirrored_and_listed_outputs(tmp_path, capsys):
    tone(tmp_path / "in" / "a.wav")
    tone(tmp_path / "in" / "sub" / "deeper" / "b.flac")
    (tmp_path / "in" / "readme.txt").write_text("not audio")
    code, out = run(tmp_path, gain(), "--in", tmp_path / "in", "--out", tmp_path / "out", capsys=capsys)
    assert code == 0
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.wav")) == \
        ["a.wav", "sub/deeper/b.wav"]
    assert "ignoring 1 non-audio file" in out.err
    assert out.out.strip().splitlines()[-1].startswith("test.cmd: 2 done, 0 refused, 0 failed of 2")


def test_two_inputs_one_output_refused_before_work(tmp_path, capsys):
    tone(tmp_path / "in" / "a.wav")
    tone(tmp_path / "in" / "a.flac")
    code, out = run(tmp_path, gain(), "--in", tmp_path / "in", "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and not (tmp_path / "out").exists()
    assert "a.flac and a.wav would both be written" in out.err or "a.wav and a.flac would both" in out.err


@pytest.mark.parametrize("what", ["dir", "file", "inside", "scp-listing"])
def test_out_equal_to_in_refused_inputs_unchanged(tmp_path, capsys, what):
    source = tmp_path / "in"
    tone(source / "a.wav")
    (source / "wav.scp").write_text(f"a {source / 'a.wav'}\n")
    before = snapshot(tmp_path)
    argv = {"dir": (source, source), "file": (source / "a.wav", source / "a.wav"),
            "inside": (source, source / "enhanced"), "scp-listing": (source / "wav.scp", source)}[what]
    code, out = run(tmp_path, gain(), "--in", argv[0], "--out", argv[1], capsys=capsys)
    assert code == 2, out
    assert "refused" in out.err
    assert snapshot(tmp_path) == before


def test_hard_link_to_an_input_is_not_overwritten(tmp_path):
    tone(tmp_path / "in" / "a.wav")
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "in" / "a.wav", tmp_path / "out" / "a.wav")
    code, _ = run(tmp_path, gain(), "--in", tmp_path / "in" / "a.wav", "--out", tmp_path / "out")
    assert code == 2


@pytest.mark.parametrize("key", ["../escape", "/abs/escape", "a/b", "..", "-opt"])
def test_wav_scp_keys_that_leave_out_are_refused(tmp_path, capsys, key):
    tone(tmp_path / "a.wav")
    (tmp_path / "wav.scp").write_text(f"{key} {tmp_path / 'a.wav'}\n")
    code, out = run(tmp_path, gain(), "--in", tmp_path / "wav.scp", "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and key in out.err
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.wav").exists()


def test_symlink_inside_out_pointing_outside_is_refused(tmp_path, capsys):
    tone(tmp_path / "in" / "sub" / "x.wav")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    code, out = run(tmp_path, gain(), "--in", tmp_path / "in", "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and "outside --out" in out.err
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_wav_scp_with_pipes_and_a_failing_pipe_named(tmp_path, capsys):
    tone(tmp_path / "a.wav")
    (tmp_path / "wav.scp").write_text(f"good cat {tmp_path / 'a.wav'} |\nbad false |\n")
    code, out = run(tmp_path, gain(), "--in", tmp_path / "wav.scp", "--out", tmp_path / "out", capsys=capsys)
    assert code == 1
    assert "refused bad: command 'false'" in out.err.replace("\n", " ") or "bad" in out.err
    listing = (tmp_path / "out" / "wav.scp").read_text().split()
    assert listing[0] == "good" and os.path.isabs(listing[1])
    np.testing.assert_allclose(soundfile.read(tmp_path / "out" / "good.wav")[0],
                               0.5 * soundfile.read(tmp_path / "a.wav")[0], atol=1e-4)
    assert out.out.strip().splitlines()[-1].startswith("test.cmd: 1 done, 1 refused, 0 failed of 2")


def test_corrupt_file_named_while_others_processed(tmp_path, capsys):
    tone(tmp_path / "in" / "good.wav")
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "refused.txt").write_text("stale\n")
    code, out = run(tmp_path, gain(), "--in", tmp_path / "in", "--out", tmp_path / "out", capsys=capsys)
    assert code == 1 and "refused broken.wav" in out.err
    assert (tmp_path / "out" / "good.wav").is_file()
    assert (tmp_path / "out" / "refused.txt").read_text().startswith("broken.wav\t")
    # A re-run with nothing to refuse leaves no stale refused.txt.
    (tmp_path / "in" / "broken.wav").unlink()
    assert run(tmp_path, gain(), "--in", tmp_path / "in", "--out", tmp_path / "out")[0] == 0
    assert not (tmp_path / "out" / "refused.txt").exists()


def test_batch_independence_mixed_lengths(tmp_path):
    """A file's output alone equals its output next to others of other lengths (1e-5 relative)."""
    rng = np.random.default_rng(0)
    lengths = {"short": 0.2, "mid": 1.37, "long": 7.5, "mid2": 1.37}
    for name, seconds in lengths.items():
        soundfile.write(tmp_path / "in" / f"{name}.wav" if (tmp_path / "in").exists() else
                        (tmp_path / "in").mkdir() or tmp_path / "in" / f"{name}.wav",
                        0.2 * rng.standard_normal(int(seconds * RATE)), RATE, subtype="FLOAT")
    args = ("--chunk-seconds", 2, "--batch-size", 8, "--on-clip", "clip")
    assert run(tmp_path, normalise, "--in", tmp_path / "in", "--out", tmp_path / "batch", *args)[0] == 0
    for name in lengths:
        out = tmp_path / f"alone_{name}.wav"
        assert run(tmp_path, normalise, "--in", tmp_path / "in" / f"{name}.wav", "--out", out, *args)[0] == 0
        alone, together = soundfile.read(out)[0], soundfile.read(tmp_path / "batch" / f"{name}.wav")[0]
        assert np.linalg.norm(alone - together) <= 1e-5 * np.linalg.norm(alone)


def test_chunked_identity_is_exact_and_windows_cover(tmp_path):
    signal_ = 0.1 * np.random.default_rng(1).standard_normal(int(9.3 * RATE))
    soundfile.write(tmp_path / "long.wav", signal_, RATE, subtype="FLOAT")
    code, _ = run(tmp_path, gain(1.0), "--in", tmp_path / "long.wav", "--out", tmp_path / "o.wav",
                  "--chunk-seconds", 2)
    assert code == 0
    out, _ = soundfile.read(tmp_path / "o.wav")
    np.testing.assert_allclose(out, signal_, atol=1 / 32768)
    starts = inference.window_starts(100, 30, 20)
    assert starts[0] == 0 and starts[-1] == 70 and all(b - a <= 20 for a, b in zip(starts, starts[1:]))
    weights = sum(np.pad(inference.crossfade_weights(s, 30, 100, 10), (s, 100 - 30 - s)) for s in starts)
    assert weights.min() > 0.5


def test_clipping_is_never_silent(tmp_path, capsys):
    tone(tmp_path / "a.wav", amp=0.5)
    code, out = run(tmp_path, gain(4.0), "--in", tmp_path / "a.wav", "--out", tmp_path / "o.wav", capsys=capsys)
    assert code == 0 and "scaled by" in out.err
    assert np.max(np.abs(soundfile.read(tmp_path / "o.wav")[0])) <= 0.99 + 1e-4
    code, out = run(tmp_path, gain(4.0), "--in", tmp_path / "a.wav", "--out", tmp_path / "p.wav",
                    "--on-clip", "refuse", capsys=capsys)
    assert code == 1 and "would clip" in out.err and not (tmp_path / "p.wav").exists()


def test_non_finite_model_output_fails_the_file(tmp_path, capsys):
    tone(tmp_path / "a.wav")
    code, out = run(tmp_path, lambda a: inference.WaveformModel(RATE, lambda b: b / 0.0), "--in",
                    tmp_path / "a.wav", "--out", tmp_path / "o.wav", capsys=capsys)
    assert code == 1 and "non-finite" in out.err and not (tmp_path / "o.wav").exists()
    assert out.out.strip().splitlines()[-1].startswith("test.cmd: 0 done, 0 refused, 1 failed of 1")


def test_output_modes_follow_umask(tmp_path):
    tone(tmp_path / "in" / "a.wav")
    (tmp_path / "in" / "bad.wav").write_bytes(b"")
    (tmp_path / "wav.scp").write_text(f"a {tmp_path / 'in' / 'a.wav'}\nbad {tmp_path / 'in' / 'bad.wav'}\n")
    old = os.umask(0o022)
    try:
        run(tmp_path, gain(), "--in", tmp_path / "wav.scp", "--out", tmp_path / "out")
    finally:
        os.umask(old)
    for name in ("a.wav", "wav.scp", "refused.txt"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644, name


@pytest.mark.parametrize("option,value", [("--batch-size", "0"), ("--batch-size", "-1"), ("--threads", "0"),
                                          ("--chunk-seconds", "0"), ("--chunk-seconds", "nan")])
def test_bad_numbers_are_usage_errors(tmp_path, capsys, option, value):
    tone(tmp_path / "a.wav")
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, gain(), "--in", tmp_path / "a.wav", "--out", tmp_path / "o.wav", option, value)
    assert exit_.value.code == 2 and option in capsys.readouterr().err


def test_dash_name_extensionless_out_and_flac(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tone(tmp_path / "-dash.wav")
    assert run(tmp_path, gain(), "--in", "-dash.wav", "--out", "outdir")[0] == 0
    assert (tmp_path / "outdir" / "-dash.wav").is_file()
    (tmp_path / "existing").mkdir()
    assert run(tmp_path, gain(), "--in", "-dash.wav", "--out", "existing")[0] == 0
    assert (tmp_path / "existing" / "-dash.wav").is_file()
    assert run(tmp_path, gain(), "--in", "-dash.wav", "--out", "p.flac")[0] == 0
    assert soundfile.info(tmp_path / "p.flac").format == "FLAC"
    assert run(tmp_path, gain(), "--in", "-dash.wav", "--out", "d", "--format", "flac")[0] == 0
    assert soundfile.info(tmp_path / "d" / "-dash.flac").format == "FLAC"


def test_scoring_csv_quoted_and_windows_combined(tmp_path, capsys):
    rng = np.random.default_rng(2)
    signal_ = np.abs(rng.standard_normal(int(5.5 * RATE))) * 0.1
    (tmp_path / "in").mkdir()
    soundfile.write(tmp_path / "in" / "a, b.wav", np.stack([signal_, signal_], 1), RATE, subtype="FLOAT")

    def load(args):
        return inference.ScoringModel(
            RATE, lambda batch: list(batch.mean(axis=1)),
            lambda parts, weights: {"mean": float(np.average(parts, weights=weights))}, ("mean",))

    code, _ = run(tmp_path, load, "--in", tmp_path / "in", "--out", tmp_path / "s.csv", "--chunk-seconds", 2,
                  scoring=True)
    assert code == 0
    import csv

    rows = list(csv.reader(open(tmp_path / "s.csv")))
    assert rows[0] == ["file", "mean"] and rows[1][0] == "a, b.wav"
    # Windows 0-2, 2-4, 3.5-5.5 s, weighted by the samples each adds: the whole file's mean.
    assert float(rows[1][1]) == pytest.approx(signal_.mean(), abs=1e-4)


SLOW = """
import sys, time
from speechlib.io import inference
from speechlib.io.errors import exit_on_input_error
def slow(batch):   # 30 files take 30 s: the interrupt lands mid-run on any machine
    time.sleep(1.0)
    return batch
exit_on_input_error("slow", lambda: inference.main("slow", "slow", lambda a: inference.WaveformModel(16000, slow),
                                                  memory_mb=100))
"""


def test_sigint_leaves_no_partial_output(tmp_path):
    for index in range(30):
        tone(tmp_path / "in" / f"f{index:02d}.wav", seconds=2.0)
    proc = subprocess.Popen([PYTHON, "-c", SLOW, "--model", "m", "--in", str(tmp_path / "in"), "--out",
                             str(tmp_path / "out"), "--batch-size", "1", "--quiet"],
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=subprocess.PIPE, text=True,
                            # A run started in the background by a non-interactive shell inherits SIGINT
                            # ignored, and Python then keeps ignoring it: give the command a user's Ctrl-C.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "out").glob("f*.wav"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    written = list((tmp_path / "out").iterdir())
    assert 2 <= len(written) < 30
    for path in written:
        assert path.name.startswith("f") and soundfile.info(path).frames == 32000


def test_mp3_and_ogg_inputs_in_a_directory(tmp_path):
    tone(tmp_path / "in" / "x.ogg", subtype="VORBIS")
    tone(tmp_path / "in" / "y.mp3", rate=22050, subtype="MPEG_LAYER_III")
    the_plan = plan(tmp_path / "in", tmp_path / "out")
    assert [item.name for item in the_plan.items] == ["x.ogg", "y.mp3"]
    assert run(tmp_path, gain(), "--in", tmp_path / "in", "--out", tmp_path / "out")[0] == 0
    for name in ("x", "y"):
        source = next((tmp_path / "in").glob(f"{name}.*"))
        decoded = inference.read_audio(str(source))
        info = soundfile.info(tmp_path / "out" / f"{name}.wav")
        assert (info.samplerate, info.frames) == (decoded.sample_rate, len(decoded.data))


def test_apply_model_in_memory_is_batch_independent():
    rng = np.random.default_rng(3)
    signals = [0.1 * rng.standard_normal(int(s * RATE)).astype(np.float32) for s in (0.3, 2.9, 1.1, 0.3)]
    model = normalise(None)
    together = inference.apply_model(model, signals, batch_size=3, chunk_seconds=1.0)
    for signal, joint in zip(signals, together):
        alone = inference.apply_model(model, [signal], batch_size=3, chunk_seconds=1.0)[0]
        assert joint.shape == signal.shape
        assert np.linalg.norm(alone - joint) <= 1e-5 * np.linalg.norm(alone)


def test_hooks_see_all_channels_and_carry_tags(tmp_path, capsys):
    """`before` scales a recording, `after` undoes it and tags the output; a refusal from
    `before` names the file (as a restore without provenance would)."""
    tone(tmp_path / "in" / "a.wav", channels=2)
    soundfile.write(tmp_path / "in" / "b.wav", 0.1 * np.ones(RATE), RATE)

    def before(signals, info):
        if info["name"] == "b.wav":
            raise inference.InputError("no provenance tag")
        info["gain"] = 0.5 / max(float(np.abs(s).max()) for s in signals)
        return [s * info["gain"] for s in signals]

    def after(outputs, info):
        info["out_tags"]["comment"] = f"gain={info['gain']:.3f}"
        return [o / info["gain"] for o in outputs]

    load = lambda args: inference.WaveformModel(RATE, lambda b: b, 0, 1, before=before, after=after)  # noqa: E731
    code, out = run(tmp_path, load, "--in", tmp_path / "in", "--out", tmp_path / "out", capsys=capsys)
    assert code == 1 and "refused b.wav: no provenance tag" in out.err
    np.testing.assert_allclose(soundfile.read(tmp_path / "out" / "a.wav")[0],
                               soundfile.read(tmp_path / "in" / "a.wav")[0], atol=1e-4)
    decoded = inference.read_audio(str(tmp_path / "out" / "a.wav"))
    assert decoded.tags["comment"].startswith("gain=")
