"""End-to-end: egs/se_uda's tiny config through run.sh on the --small mini corpus (every stage,
every Table 1 row), plus the bad-input paths of training and mixing.

`mini_small` is the session fixture of tests/fixtures_mini.py (registered in conftest)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import PYTHON, REPO, copy_recipe, run

pytestmark = pytest.mark.timeout(900)
RECIPE = REPO / "egs" / "se_uda"
TABLE1_ROWS = ("Noisy", "Source model", "RemixIT", "DANN", "DANN+RemixIT", "SRST (random source)",
               "SRST (similar source)", "Target model")


@pytest.fixture()
def recipe(tmp_path) -> Path:
    return copy_recipe("se_uda", tmp_path)


def run_recipe(recipe: Path, mini: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["./run.sh", "--config", "conf/tiny_se_uda.yaml", *args], cwd=recipe,
               env={"MAIN_ROOT": str(REPO), "SPEECHLIB_MINI": str(mini), "LIBRISPEECH": "", "WHAM": "", "DNS": ""},
               timeout=800)


def test_tiny_recipe_end_to_end(recipe, mini_small):
    out = run_recipe(recipe, mini_small)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    exp = recipe / "exp" / "tiny_se_uda"
    results = (exp / "RESULTS.md").read_text()
    number = r"-?\d+\.\d+"
    for row in TABLE1_ROWS:
        line = next(l for l in results.splitlines() if l.startswith(f"| {row} |"))
        cells = line.strip("|").split("|")[1:]
        assert len(cells) == 9 and all(re.fullmatch(number, c.strip()) for c in cells), line
        assert f"| *{row} (paper)* |" in results
    assert "Table 2: the language gap" in results and "| DNS English: Gap |" in results
    assert (exp / "figure3_domain_scores.png").stat().st_size > 1000
    assert (recipe / "figures" / "tiny_se_uda-figure3_domain_scores.png").is_file()
    assert "(figures/tiny_se_uda-figure3_domain_scores.png)" in (recipe / "RESULTS.md").read_text()
    scores = json.loads((exp / "srst" / "domain_scores.json").read_text())
    assert scores["source"] and scores["target"]
    srst_log = (exp / "log" / "train_srst_similar.txt").read_text()
    assert "source_share: 3.00e-01" in srst_log and "source_share: 2.70e-01" in srst_log
    assert list((exp / "tensorboard").iterdir())
    # adaptation stages never read target clean speech: the noisy target set has no references
    assert not (recipe / "data" / "tiny" / "target_train" / "utt2speech").exists()
    assert (recipe / "data" / "tiny" / "target_train_oracle" / "utt2speech").exists()
    # finished stages are skipped on a re-run
    out = run_recipe(recipe, mini_small, "--stage", "2", "--stop-stage", "2")
    assert out.returncode == 0 and "up to date" in (exp / "log" / "train_source.log").read_text()


def _mixture_dir(path: Path, utts: list[str], bad: str | None) -> None:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = {"wav.scp": [], "utt2speech": [], "utt2noise": [], "utt2spk": []}
    for utt in utts:
        speech = rng.standard_normal(8000).astype(np.float32) * 0.1
        noise = rng.standard_normal(8000).astype(np.float32) * 0.1
        mix = speech + noise
        if utt == bad:
            mix[100] = np.nan
        for name, signal in (("mix", mix), ("speech", speech), ("noise", noise)):
            soundfile.write(path / f"{utt}_{name}.wav", signal, 16000, subtype="FLOAT")
        lines["wav.scp"].append(f"{utt} {path / f'{utt}_mix.wav'}")
        lines["utt2speech"].append(f"{utt} {path / f'{utt}_speech.wav'}")
        lines["utt2noise"].append(f"{utt} {path / f'{utt}_noise.wav'}")
        lines["utt2spk"].append(f"{utt} {utt.split('-')[0]}")
    for name, content in lines.items():
        (path / name).write_text("\n".join(sorted(content)) + "\n")


def test_nan_loss_stops_training_with_utterance_ids(tmp_path):
    _mixture_dir(tmp_path / "data" / "source_train", ["s1-a", "s1-b", "s2-c", "s2-d"], bad="s2-c")
    out = run([PYTHON, "-m", "speechlib.tasks.se_uda.train", str(RECIPE / "conf" / "tiny_se_uda.yaml"),
               "--system", "source", "--data_folder", str(tmp_path / "data"), "--output_folder",
               str(tmp_path / "exp"), "--batch_size", "4", "--device", "cpu"])
    assert out.returncode == 1, out.stderr[-2000:]
    assert "non-finite training loss" in out.stderr and "s2-c" in out.stderr


def test_mixing_resamples_a_target_file_at_another_rate(tmp_path):
    from speechlib.tasks.se_uda.mix import AudioCache

    path = tmp_path / "x.wav"
    soundfile.write(path, 0.1 * np.sin(np.arange(8000) / 5.0), 8000)
    cache = AudioCache(16000, "resample")
    assert cache("u", str(path)).shape == (16000,) and cache.resampled == 1
    from speechlib.io.errors import InputError
    with pytest.raises(InputError, match="8000 Hz, expected 16000 Hz"):
        AudioCache(16000, "error")("u", str(path))
