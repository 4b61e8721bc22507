"""Every user command over a hostile input set, generated here (issue 17).

For each command (enhance, protect, restore, predict) and each input the documented outcome is
asserted: processed (output with the input's rate, channels and length; or a score row), or
refused with a message naming it; the exit status; that no file outside --out changed (a
snapshot of the whole tree before and after) and that inputs are byte-identical. Models are tiny
and untrained: what is tested is the handling of files, not the models.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os

import numpy as np
import pytest
import soundfile
import torch

from speechlib.io.audio import read_audio

RATE = 16000
# name -> what the front end must do with it ("done", or a phrase its refusal contains)
EXPECTED = {
    "rate8k.wav": "done", "rate22k.flac": "done", "stereo44k_24bit.wav": "done", "float48k.wav": "done",
    "vorbis.ogg": "done", "mpeg.mp3": "done", "clipped.wav": "done", "sub/deep/nested.wav": "done",
    "sp ace.wav": "done", "comma,name.wav": "done", "ünï-cödé.wav": "done", "-dash.wav": "done",
    "new\nline.wav": "done",
    "empty.wav": "empty", "10ms.wav": "too short", "silent.wav": "silent", "nan.wav": "non-finite",
    "inf.flac": "non-finite", "truncated.wav": "truncated", "text_renamed.wav": "cannot read audio",
    "short_0.3s.wav": "done",
}
# predict refuses recordings under 0.5 s (too short for a MOS): documented in its --help
EXPECTED_PER_COMMAND = {"predict": {"short_0.3s.wav": "too short"}}


def _speech_like(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    voice = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    data = np.stack([voice * (1 - 0.3 * c) + 0.02 * rng.standard_normal(t.size) for c in range(channels)], 1)
    return data[:, 0] if channels == 1 else data


def build_hostile_set(root) -> None:
    """The inputs of issue 17 (except the 10-minute file: see tests/benchmarks)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sub" / "deep").mkdir(parents=True)
    write = soundfile.write
    write(root / "rate8k.wav", _speech_like(1.0, 8000), 8000)
    write(root / "rate22k.flac", _speech_like(1.2, 22050), 22050)
    write(root / "stereo44k_24bit.wav", _speech_like(1.2, 44100, 2), 44100, subtype="PCM_24")
    write(root / "float48k.wav", _speech_like(1.1, 48000), 48000, subtype="FLOAT")
    write(root / "vorbis.ogg", _speech_like(1.2, 16000), 16000, subtype="VORBIS")
    write(root / "mpeg.mp3", _speech_like(1.2, 16000), 16000, subtype="MPEG_LAYER_III")
    write(root / "short_0.3s.wav", _speech_like(0.3, RATE), RATE)
    write(root / "clipped.wav", np.clip(4 * _speech_like(1.0, RATE), -1, 1), RATE)
    write(root / "sub" / "deep" / "nested.wav", _speech_like(1.3, RATE, seed=1), RATE)
    for name in ("sp ace.wav", "comma,name.wav", "ünï-cödé.wav", "-dash.wav", "new\nline.wav"):
        write(root / name, _speech_like(1.0, RATE, seed=len(name)), RATE)
    write(root / "empty.wav", np.zeros(0), RATE)
    write(root / "10ms.wav", _speech_like(0.01, RATE), RATE)
    write(root / "silent.wav", np.zeros(RATE), RATE)
    nan = _speech_like(1.0, RATE).astype(np.float32)
    nan[100:200] = np.nan
    write(root / "nan.wav", nan, RATE, subtype="FLOAT")
    inf = _speech_like(1.0, RATE).astype(np.float32)
    inf[5] = np.inf
    write(root / "inf.flac", np.nan_to_num(inf), RATE)  # FLAC cannot hold inf: patch the samples below
    buffer = io.BytesIO()
    soundfile.write(buffer, inf, RATE, format="WAV", subtype="FLOAT")
    (root / "inf.flac").write_bytes(buffer.getvalue())  # a float WAV named .flac: read by content
    whole = io.BytesIO()
    soundfile.write(whole, _speech_like(3.0, RATE), RATE, format="WAV", subtype="PCM_16")
    (root / "truncated.wav").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 3])
    (root / "text_renamed.wav").write_text("this is a text file with a .wav name\n")
    (root / "notes.txt").write_text("not audio: ignored by name")


def write_scp_inputs(root, audio) -> dict[str, str]:
    """wav.scp variants: {file name: expected plan-level outcome ("ok" or a refusal phrase)}."""
    good = audio / "rate8k.wav"  # also the name of protect's output of it (for restore)
    (root / "pipes.scp").write_text(f"piped cat '{good}' |\nfailing false |\nplain {audio / 'clipped.wav'}\n"
                                    f"missing {audio / 'does_not_exist.wav'}\n")
    (root / "crlf.scp").write_text(f"a {good}\r\nb {good}\r\n")
    (root / "dups.scp").write_text(f"a {good}\na {good}\n")
    (root / "escape.scp").write_text(f"../../victim {good}\n/abs/victim {good}\n")
    (root / "bom.scp").write_text(f"\ufeffa {good}\n")
    return {"crlf.scp": "carriage return", "dups.scp": "duplicate key", "escape.scp": "path separator",
            "bom.scp": "byte-order mark"}


def hostile_inputs(name: str, models, folder):
    """(input dir, {name: expected outcome}) for a command. restore gets what protect made of the
    hostile set (it may refuse recordings that were never protected), plus the hostile files that
    protect refused, so that it faces the same bad inputs."""
    import shutil

    expected = {**EXPECTED, **EXPECTED_PER_COMMAND.get(name, {})}
    build_hostile_set(folder / "raw")
    if name != "restore":
        return folder / "raw", expected
    protect = command("protect", models)[0]
    assert protect(["--model", str(models / "vp"), "--in", str(folder / "raw"), "--out", str(folder / "prot"),
                    "--quiet"]) == 1
    for bad in [n for n, outcome in expected.items() if outcome != "done"] + ["notes.txt"]:
        shutil.copy(folder / "raw" / bad, folder / "prot" / bad)
    (folder / "prot" / "refused.txt").unlink()  # protect's own listing: not audio, ignored anyway
    shutil.rmtree(folder / "raw")
    return folder / "prot", {(os.path.splitext(n)[0] + ".wav" if outcome == "done" else n): outcome
                             for n, outcome in expected.items()}


def tree(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tiny model directory per command."""
    from speechlib.nn.mos_head import MOSHead
    from speechlib.nn.pase import PASEEncoder
    from speechlib.nn.speaker import build_encoder, save_pretrained
    from speechlib.nn.ssed import SSED
    from speechlib.nn.unet import SpeechNoiseUNet
    from speechlib.tasks.mos_pretrain.systems import save_encoder, save_head
    from speechlib.tasks.se_uda.common import save_model
    from speechlib.tasks.voice_privacy.model_io import save_models

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_model(root / "se_uda", SpeechNoiseUNet((4, 8, 8, 8)))
    kwargs = {"channels": (4, 8, 8), "strides": (4, 4), "residual_blocks": 1, "kernel": 7, "eps": 0.05}
    save_pretrained(build_encoder("ecapa", 80, 16, 8), root / "speaker", "ecapa", 16, 8)  # for --report only
    save_models(root / "vp" / "model", kwargs, SSED(**kwargs), SSED(**kwargs), root / "speaker", RATE, "none (test)")
    pase = {"emb_dim": 8, "sinc_filters": 4, "sinc_kernel": 33, "kernels": [20, 11], "strides": [10, 4],
            "channels": [8, 8]}
    save_encoder(root / "mos" / "encoders" / "sys", PASEEncoder(**pase).eval(), "pase", pase, {})
    save_head(root / "mos" / "encoders" / "sys" / "head_nisqa", MOSHead(8, 4).state_dict())
    return root


def command(name: str, models):
    """(main(argv) -> exit status, --model value, extra args, waveform?) per user command."""
    from speechlib.tasks.mos_pretrain import predict
    from speechlib.tasks.se_uda import enhance
    from speechlib.tasks.voice_privacy.apply import main as vp_main

    return {
        "enhance": (enhance.main, models / "se_uda", [], True),
        "protect": (lambda argv: vp_main("protect", "", argv), models / "vp", [], True),
        "restore": (lambda argv: vp_main("restore", "", argv), models / "vp" / "model" / "restore", [], True),
        "predict": (predict.main, models / "mos", ["--system", "sys"], False),
    }[name]


COMMANDS = ["enhance", "protect", "restore", "predict"]


@pytest.mark.parametrize("name", COMMANDS)
def test_mixed_directory(tmp_path, models, capsys, name):
    main, model, extra, waveform = command(name, models)
    inputs, expected = hostile_inputs(name, models, tmp_path)
    capsys.readouterr()
    before = tree(tmp_path)
    out = tmp_path / ("out" if waveform else "scores.csv")
    code = main(["--model", str(model), "--in", str(inputs), "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr()
    assert code == 1, err.err  # some inputs were refused
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(out.name)} == before  # inputs untouched
    done = sorted(n for n, outcome in expected.items() if outcome == "done")
    refused = {n: outcome for n, outcome in expected.items() if outcome != "done"}
    for input_name, phrase in refused.items():
        line = next((line for line in err.err.splitlines() if line.startswith(f"voice_privacy.{name}: refused {input_name}:")
                     or f" refused {input_name}: " in line), "")
        assert phrase in line, (input_name, phrase, err.err)
    summary = err.out.strip().splitlines()[-1]
    assert f"{len(done)} done, {len(refused)} refused, 0 failed of {len(expected)}" in summary
    assert "ignoring 1 non-audio file" in err.err
    if waveform:
        for input_name in done:
            source = read_audio(str(inputs / input_name))
            target = out / (os.path.splitext(input_name)[0] + ".wav")
            info = soundfile.info(target)
            assert (info.samplerate, info.channels, info.frames) == (source.sample_rate, source.channels,
                                                                    len(source.data)), input_name
            assert np.max(np.abs(soundfile.read(target)[0])) <= 1.0
        listed = (out / "refused.txt").read_text()
        assert all(repr(n) in listed if "\n" in n else f"{n}\t" in listed for n in refused)
    else:
        rows = list(csv.reader(open(out, newline="")))
        assert rows[0] == ["file", "mos"] and sorted(r[0] for r in rows[1:]) == done
        assert all(1.0 <= float(r[1]) <= 5.0 for r in rows[1:])


@pytest.mark.parametrize("name", COMMANDS)
def test_wav_scp_inputs(tmp_path, models, capsys, name):
    main, model, extra, waveform = command(name, models)
    audio, _ = hostile_inputs(name, models, tmp_path)
    refusals = write_scp_inputs(tmp_path, audio)
    capsys.readouterr()
    before = tree(tmp_path)
    out = tmp_path / ("out" if waveform else "scores.csv")
    for scp, phrase in refusals.items():  # refused as a whole before any work: exit 2, nothing written
        code = main(["--model", str(model), "--in", str(tmp_path / scp), "--out", str(out), "--quiet", *extra])
        assert code == 2 and phrase in capsys.readouterr().err, scp
        assert tree(tmp_path) == before and not out.exists()
    code = main(["--model", str(model), "--in", str(tmp_path / "pipes.scp"), "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 1
    assert "refused failing: command failed: 'false': exit code 1" in err and "refused missing: audio file does not exist" in err
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith(out.name)} == before
    if waveform:
        from speechlib.io.kaldi import read_dict

        assert sorted(read_dict(out / "wav.scp")) == ["piped", "plain"]
        assert soundfile.info(out / "piped.wav").samplerate == 8000
    else:
        assert sorted(r[0] for r in list(csv.reader(open(out)))[1:]) == ["piped", "plain"]


@pytest.mark.parametrize("name", COMMANDS)
def test_out_over_inputs_and_collisions_refused(tmp_path, models, capsys, name):
    main, model, extra, waveform = command(name, models)
    inputs = tmp_path / "in"
    inputs.mkdir()
    soundfile.write(inputs / "dup.wav", _speech_like(1.0, RATE), RATE)
    soundfile.write(inputs / "dup.flac", _speech_like(1.0, RATE), RATE)
    before = tree(tmp_path)
    cases = [inputs, inputs / "dup.wav"] if waveform else [inputs / "dup.wav"]
    for target in cases:  # --out equal to --in (a directory, a file)
        source = inputs if target == inputs else inputs / "dup.wav"
        code = main(["--model", str(model), "--in", str(source), "--out", str(target), "--quiet", *extra])
        assert code == 2 and "refused" in capsys.readouterr().err
    if waveform:  # dup.wav + dup.flac -> one output name
        code = main(["--model", str(model), "--in", str(inputs), "--out", str(tmp_path / "o"), "--quiet", *extra])
        assert code == 2 and "would both be written" in capsys.readouterr().err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", COMMANDS)
def test_foreign_model_directory_refused_in_one_line(tmp_path, models, capsys, name):
    main, _, extra, waveform = command(name, models)
    soundfile.write(tmp_path / "a.wav", _speech_like(1.0, RATE), RATE)
    foreign = {"enhance": models / "vp" / "model" / "protect", "protect": models / "se_uda",
               "restore": models / "vp" / "model" / "protect", "predict": models / "se_uda"}[name]
    from speechlib.io.errors import InputError

    with pytest.raises(InputError) as err:
        main(["--model", str(foreign), "--in", str(tmp_path / "a.wav"), "--out",
              str(tmp_path / ("o.wav" if waveform else "o.csv")), "--quiet", *extra])
    assert "not a" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", COMMANDS)
def test_batch_independence(tmp_path, models, name):
    """A file's output alone equals its output among files of other lengths (1e-5 relative),
    a long file included (cut into windows by --chunk-seconds 1)."""
    main, model, extra, waveform = command(name, models)
    lengths = {"a": 1.13, "b": 3.7, "c": 1.5, "d": 1.13}
    source = tmp_path / ("raw" if name == "restore" else "in")
    source.mkdir()
    for index, (key, seconds) in enumerate(lengths.items()):
        soundfile.write(source / f"{key}.wav", _speech_like(seconds, RATE, seed=index), RATE, subtype="FLOAT")
    if name == "restore":  # restore what protect made
        assert command("protect", models)[0](["--model", str(models / "vp"), "--in", str(source), "--out",
                                              str(tmp_path / "in"), "--quiet"]) == 0
    options = ["--chunk-seconds", "1", "--batch-size", "8", "--quiet", "--on-clip", "clip"] if waveform else \
        ["--chunk-seconds", "1", "--batch-size", "8", "--quiet"]

    def result(source, out):
        assert main(["--model", str(model), "--in", str(source), "--out", str(out), *options, *extra]) == 0
        if waveform:
            return {p.stem: soundfile.read(p)[0] for p in sorted(out.glob("*.wav")) if p.is_file()} \
                if out.is_dir() else {out.stem: soundfile.read(out)[0]}
        return {os.path.splitext(os.path.basename(r[0]))[0]: np.array([float(r[1])])
                for r in list(csv.reader(open(out)))[1:]}

    together = result(tmp_path / "in", tmp_path / ("all" if waveform else "all.csv"))
    for key in lengths:
        alone = result(tmp_path / "in" / f"{key}.wav", tmp_path / (f"{key}.wav" if waveform else f"{key}.csv"))
        alone = next(iter(alone.values()))
        assert np.linalg.norm(alone - together[key]) <= 1e-5 * np.linalg.norm(alone), key


def test_mushra_predict_refuses_clicks_and_bad_numbers(tmp_path, capsys):
    """mushra_gml.predict (pairs, not on the one-input front end) keeps the front end's rules: a
    recording under MIN_SECONDS is refused by name; bad numbers are usage errors (exit 2)."""
    from speechlib.io.errors import InputError
    from speechlib.io.inference import MIN_SECONDS
    from speechlib.tasks.mushra_gml import predict

    build_hostile_set(tmp_path)
    listener = predict.Listener.__new__(predict.Listener)  # load_pair needs only the model's rate
    listener.sample_rate = RATE
    with pytest.raises(InputError, match=f"too short: 0.010 s, the model needs at least {MIN_SECONDS:.3f} s") as err:
        listener.load_pair(str(tmp_path / "rate8k.wav"), str(tmp_path / "10ms.wav"), 0.5)
    assert "10ms.wav" in str(err.value)
    ref, deg = listener.load_pair(str(tmp_path / "rate8k.wav"), str(tmp_path / "rate8k.wav"), 0.5)
    assert ref.shape == deg.shape == (2, RATE)
    for bad in (["--threads", "0"], ["--sample", "-1"], ["--max-offset", "-1"]):
        with pytest.raises(SystemExit) as code:
            predict.parse_args(["--model", "m", "--ref", "a.wav", "--deg", "b.wav", *bad])
        assert code.value.code == 2, bad


def test_audio2image_sounds_refused_by_the_front_end_rule(tmp_path, capsys):
    """audio2image.generate/retrieve read sounds with read_items: silent, empty, non-finite,
    truncated and non-audio inputs are refused by name, the others loaded."""
    from types import SimpleNamespace

    from speechlib.io.inference import Summary
    from speechlib.io.inputs import plan
    from speechlib.tasks.audio2image.generate import read_items

    build_hostile_set(tmp_path / "in")
    items = plan(tmp_path / "in", None).items
    summary = Summary(total=len(items))
    loaded = read_items("audio2image.generate", items, SimpleNamespace(sample_rate=RATE, settings={"max_seconds": 2}),
                        summary)
    err = capsys.readouterr().err
    expected = {**EXPECTED, "10ms.wav": "done"}  # the audio tower pads a click (see read_items)
    refused = {n: outcome for n, outcome in expected.items() if outcome != "done"}
    assert sorted(summary.refused) == sorted(refused)
    for name, phrase in refused.items():
        assert phrase in summary.refused[name] and f"refused {name}: " in err, name
    assert sorted(item.name for item, _ in loaded) == sorted(n for n, o in expected.items() if o == "done")
