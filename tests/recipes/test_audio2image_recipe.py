"""End-to-end: egs/audio2image's tiny config through run.sh on the --small mini corpus (every
stage, every table), then the user commands `generate` and `retrieve` on its model directory,
their bad-input lines, and a finished stage skipped on a re-run.

`mini_small` is the session fixture of tests/fixtures_mini.py (registered in conftest)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import PYTHON, REPO, run, write_tone

pytestmark = pytest.mark.timeout(1800)   # the tiny run took 670 s on the loaded shared machine


def run_recipe(recipe: Path, mini: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["./run.sh", "--config", "conf/tiny_audio2image.yaml", "--seeds", "1 2", *args], cwd=recipe,
               env={"MAIN_ROOT": str(REPO), "SPEECHLIB_MINI": str(mini), "VGGSOUND_CSV": ""}, timeout=1700)


def test_tiny_recipe_end_to_end(tmp_path, mini_small, recipe_runs):
    recipe = recipe_runs.get("audio2image")
    exp = recipe / "exp" / "tiny_audio2image"
    results = (exp / "RESULTS.md").read_text()
    for title in ("Audio -> picture retrieval", "Held-out retrieval by kind of sound",
                  "Table 1 (automatic 2AFC, judge: classifier on real pictures)",
                  "Table 1 (automatic 2AFC, judge: image-text zero-shot prompts)", "Generation speed"):
        assert title in results, title
    for row in ("| WavBriVL seed 1 |", "| Wav2CLIP seed 2 |", "| WavBriVL - Wav2CLIP (paired over seeds, t) |",
                "| chance |", "| *WavBriVL (paper)* | *72 - 78* | *10 - 16* | *9 - 15* |"):
        assert row in results, row
    assert (exp / "figure4_generated.png").stat().st_size > 1000
    assert (exp / "learning_curves.png").stat().st_size > 1000
    page = (exp / "2afc" / "index.html").read_text()
    assert "answer-neither" in page and '"target": "' in page
    # the kit's layout: one directory per trained system, model directories in the one format
    for system in ("brivl", "wavbrivl_seed1", "wav2clip_seed2", "vqgan", "judge"):
        assert (exp / system / "loss_curve.png").is_file() and (exp / system / "train_log.txt").is_file(), system
    for model_dir in ("model", "brivl/model", "wavbrivl_seed1/model", "wav2clip_seed2/model", "vqgan/model"):
        assert (exp / model_dir / "model.json").is_file(), model_dir
    assert (exp / "brivl" / "model" / "tokenizer.model").is_file()

    # user commands: one file, a directory, a wav.scp; inputs untouched
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    tone = write_tone(sounds / "tone.wav", seconds=0.02)   # shorter than WavLM's receptive field: padded
    write_tone(sounds / "low.wav", seconds=1.0, freq=220.0)
    before = tone.read_bytes()
    env = {"MAIN_ROOT": str(REPO)}
    gen = run([PYTHON, "-m", "speechlib.tasks.audio2image.generate", "--model", str(exp), "--in", str(tone),
               "--out", str(tmp_path / "tone.png"), "--steps", "2"], env=env)
    assert gen.returncode == 0, gen.stderr[-2000:]
    assert Image.open(tmp_path / "tone.png").size == (32, 32) and tone.read_bytes() == before
    gen = run([PYTHON, "-m", "speechlib.tasks.audio2image.generate", "--model", str(exp), "--in", str(sounds),
               "--out", str(tmp_path / "pics"), "--steps", "2", "--system", "wav2clip", "--batch-size", "1",
               "--threads", "2"], env=env)
    assert gen.returncode == 0 and "2 thread(s)" in gen.stderr, gen.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["low.png", "tone.png"]
    gallery = recipe / "exp" / "tiny_audio2image" / "data" / "images"
    ret = run([PYTHON, "-m", "speechlib.tasks.audio2image.retrieve", "--model", str(exp), "--in",
               str(exp / "data" / "test" / "wav.scp"), "--gallery", str(gallery), "--top", "3"], env=env)
    assert ret.returncode == 0, ret.stderr[-2000:]
    lines = [line.split("\t") for line in ret.stdout.splitlines() if "\t" in line]
    assert lines and all(len(fields) == 4 for fields in lines) and {f[1] for f in lines} == {"1", "2", "3"}

    # bad input: one line naming the file, non-zero exit
    bad = run([PYTHON, "-m", "speechlib.tasks.audio2image.generate", "--model", str(exp), "--in",
               str(tmp_path / "missing.wav"), "--out", str(tmp_path / "x.png")], env=env)
    assert bad.returncode == 2 and "missing.wav" in bad.stderr and "does not exist" in bad.stderr
    (sounds / "broken.wav").write_bytes(b"RIFF not really a wav")
    gen = run([PYTHON, "-m", "speechlib.tasks.audio2image.generate", "--model", str(exp), "--in", str(sounds),
               "--out", str(tmp_path / "pics2"), "--steps", "1"], env=env)
    assert gen.returncode == 1 and "broken.wav" in gen.stderr and "2 done, 1 refused, 0 failed of 3" in gen.stdout
    assert sorted(p.name for p in (tmp_path / "pics2").iterdir()) == ["low.png", "tone.png"]
    bad = run([PYTHON, "-m", "speechlib.tasks.audio2image.retrieve", "--model", str(tmp_path), "--in", str(tone),
               "--gallery", str(gallery)], env=env)
    assert bad.returncode == 1 and "not a model directory" in bad.stderr and len(bad.stderr.splitlines()) == 1
    bad = run([PYTHON, "-m", "speechlib.tasks.audio2image.generate", "--model", str(exp / "wavbrivl_seed1" / "model"),
               "--in", str(tone), "--out", str(tmp_path / "y.png")], env=env)   # no VQGAN in an audio tower's dir
    assert bad.returncode == 1 and "audio_encoder model (system wavbrivl), not a audio2image audio2image" in bad.stderr

    # a finished stage is skipped on a re-run
    out = run_recipe(recipe, mini_small, "--stage", "4", "--stop-stage", "4")
    assert out.returncode == 0 and "up to date" in (exp / "log" / "evaluate.log").read_text()
