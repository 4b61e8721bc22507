"""End-to-end: egs/audio2image's tiny config through run.sh on the --small mini corpus (every
stage, every table), then the user commands `generate` and `retrieve` on its model directory,
their bad-input lines, and a finished stage skipped on a re-run.

`mini_small` is the session fixture of tests/fixtures_mini.py (registered in conftest)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import PYTHON, REPO, copy_recipe, run, write_tone

pytestmark = pytest.mark.timeout(1800)   # the tiny run took 670 s on the loaded shared machine


def run_recipe(recipe: Path, mini: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["./run.sh", "--config", "conf/tiny_audio2image.yaml", "--seeds", "1 2", *args], cwd=recipe,
               env={"MAIN_ROOT": str(REPO), "SPEECHLIB_MINI": str(mini), "VGGSOUND_CSV": ""}, timeout=1700)


def test_tiny_recipe_end_to_end(tmp_path, mini_small):
    recipe = copy_recipe("audio2image", tmp_path)
    out = run_recipe(recipe, mini_small)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    exp = recipe / "exp" / "tiny_audio2image"
    results = (exp / "RESULTS.md").read_text()
    for title in ("Audio -> picture retrieval", "Table 1 (automatic 2AFC, judge: classifier on real pictures)",
                  "Table 1 (automatic 2AFC, judge: image-text zero-shot prompts)", "Generation speed"):
        assert title in results, title
    for row in ("| WavBriVL seed 1 |", "| Wav2CLIP seed 2 |", "| WavBriVL - Wav2CLIP (paired over seeds, t) |",
                "| chance |", "| *WavBriVL (paper)* | *72 - 78* | *10 - 16* | *9 - 15* |"):
        assert row in results, row
    assert (exp / "figure4_generated.png").stat().st_size > 1000
    page = (exp / "2afc" / "index.html").read_text()
    assert "answer-neither" in page and '"target": "' in page
    model = exp / "model"
    for name in ("hyperparams.yaml", "image_tower.pt", "audio_wavbrivl_seed1.pt", "audio_wav2clip_seed2.pt",
                 "vqgan.pt", "tokenizer.model"):
        assert (model / name).is_file(), name

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
               "--out", str(tmp_path / "pics"), "--steps", "2", "--system", "wav2clip"], env=env)
    assert gen.returncode == 0, gen.stderr[-2000:]
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
    assert bad.returncode == 1 and "missing.wav: no such file" in bad.stderr and len(bad.stderr.splitlines()) == 1
    bad = run([PYTHON, "-m", "speechlib.tasks.audio2image.retrieve", "--model", str(tmp_path), "--in", str(tone),
               "--gallery", str(gallery)], env=env)
    assert bad.returncode == 1 and "not an audio2image model directory" in bad.stderr

    # a finished stage is skipped on a re-run
    out = run_recipe(recipe, mini_small, "--stage", "4", "--stop-stage", "4")
    assert out.returncode == 0 and "up to date" in (exp / "log" / "evaluate.log").read_text()
