"""End-to-end: egs/mushra_gml on its tiny config (every stage, every table cell that can run),
then the predict command on mono, stereo, 44.1 kHz and mismatched-length input.

`mini_small` is the session fixture of tests/fixtures_mini.py (registered in conftest)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import PYTHON, REPO, run

pytestmark = pytest.mark.timeout(1800)  # a cap: the tiny run alone took 7.5 min at load average 12 on 2 cores


@pytest.fixture(scope="module")
def finished(recipe_runs) -> Path:
    """The session's one tiny run (tests/recipes/conftest.py)."""
    return recipe_runs.get("mushra_gml")


def run_recipe(recipe: Path, mini: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["./run.sh", "--config", "conf/tiny_mushra_gml.yaml", *args], cwd=recipe, timeout=1800,
               env={"MAIN_ROOT": str(REPO), "MUSIC48K": str(mini / "music48k"), "ODAQ": "", "ODAQ_AUDIO": "",
                    "WEBMUSHRA": "", "LISTENING_CSV": ""})


def test_tiny_recipe_fills_every_runnable_cell(finished):
    exp = finished / "exp" / "tiny_mushra_gml"
    payload = json.loads((exp / "results.json").read_text())
    tables = {t["title"].split(":")[0]: t for t in payload["tables"]}
    number = re.compile(r"^-?\d+\.\d+( ± \d+\.\d+)?$")
    for key, systems in (("Table I(a)", ("Non-GML", "GML", "GML w/ CutMix", "Non-GML w/ CutMix")),
                         ("Table I(b)", ("GML", "GML w/ CutMix"))):
        table = tables[key]
        for system in systems:
            cells = table["rows"][system]
            assert all(number.match(c) for c in cells[:9]), (key, system, cells)
            assert all(c.startswith("not run") for c in cells[9:]), (key, system, cells)
    visqol = tables["Table I(a)"]["rows"]["ViSQOL-v3"]
    assert all(number.match(c) for i, c in enumerate(visqol[:9]) if i % 3 != 2)
    assert [visqol[i] for i in (2, 5, 8)] == ["n.a."] * 3
    assert all(number.match(tables["Table I(a)"]["rows"]["ViSQOL-v3 + cubic map (ours)"][i]) for i in (2, 5, 8))
    results = (exp / "RESULTS.md").read_text()
    assert "simulated" in results and "*GML w/ CutMix (paper)*" in results
    for figure in ("figure1_nll.png", "figure2_histograms.png"):
        assert (exp / "figures" / figure).stat().st_size > 5000
    assert (finished / "RESULTS.md").is_file()
    screening = (exp / "log" / "simulate.log").read_text()
    assert "post-screening (ITU-R BS.1534-3)" in screening and "excluded" in screening
    model = json.loads((exp / "gml_cutmix_seed1" / "model" / "model.json").read_text())
    assert model["recipe"] == "mushra_gml" and model["extra"]["distribution"] == "logistic"


def _predict(*args: str) -> subprocess.CompletedProcess:
    return run([PYTHON, "-m", "speechlib.tasks.mushra_gml.predict", *args], env={"OMP_NUM_THREADS": "1"})


def test_predict_mono_stereo_44k_and_lengths(finished, tmp_path):
    from speechlib.io.audio import resample

    exp = finished / "exp" / "tiny_mushra_gml"
    excerpt = sorted((finished / "data" / "tiny" / "audio").iterdir())[0]
    ref, rate = soundfile.read(excerpt / "reference.flac", dtype="float32")
    coded, _ = soundfile.read(excerpt / "aac_32.flac", dtype="float32")
    out = _predict("--model", str(exp), "--ref", str(excerpt / "reference.flac"), "--deg",
                   str(excerpt / "aac_32.flac"), "--listeners", "12", "--sample", "5")
    assert out.returncode == 0, out.stderr
    mean = float(re.search(r"mean MUSHRA score (-?[\d.]+)", out.stdout).group(1))
    assert re.search(r"95 % CI \+-[\d.]+ for 12 listeners", out.stdout)
    assert len(re.search(r"simulated listener scores: (.*)", out.stdout).group(1).split()) == 5

    mono_ref, mono_deg = tmp_path / "ref_mono.wav", tmp_path / "deg_mono.wav"
    soundfile.write(mono_ref, ref.mean(axis=1), rate)
    soundfile.write(mono_deg, coded.mean(axis=1), rate)
    assert _predict("--model", str(exp), "--ref", str(mono_ref), "--deg", str(mono_deg)).returncode == 0

    ref44, deg44 = tmp_path / "ref44.wav", tmp_path / "deg44.flac"
    soundfile.write(ref44, resample(ref, rate, 44100), 44100)
    soundfile.write(deg44, resample(coded, rate, 44100), 44100)
    out44 = _predict("--model", str(exp), "--ref", str(ref44), "--deg", str(deg44), "--listeners", "12")
    assert out44.returncode == 0, out44.stderr
    mean44 = float(re.search(r"mean MUSHRA score (-?[\d.]+)", out44.stdout).group(1))
    assert abs(mean44 - mean) < 10  # the same pair through a resampler

    late = tmp_path / "late.wav"  # 0.1 s of delay: aligned, same prediction as the aligned pair
    soundfile.write(late, np.concatenate([np.zeros((rate // 10, 2), np.float32), coded]), rate)
    out_late = _predict("--model", str(exp), "--ref", str(excerpt / "reference.flac"), "--deg", str(late),
                        "--listeners", "12")
    assert out_late.returncode == 0, out_late.stderr
    assert float(re.search(r"mean MUSHRA score (-?[\d.]+)", out_late.stdout).group(1)) == pytest.approx(mean, abs=0.5)
    long = tmp_path / "long.wav"
    soundfile.write(long, np.concatenate([coded, coded]), rate)
    refused = _predict("--model", str(exp), "--ref", str(excerpt / "reference.flac"), "--deg", str(long))
    assert refused.returncode == 1
    assert "reference.flac" in refused.stderr and "long.wav" in refused.stderr and "--max-offset" in refused.stderr
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros_like(ref), rate)
    out_silent = _predict("--model", str(exp), "--ref", str(silent), "--deg", str(excerpt / "aac_32.flac"))
    assert out_silent.returncode == 1 and "silent.wav" in out_silent.stderr and "silent" in out_silent.stderr
    # a silent coded signal: refused with its own reason (no silent condition was trained on)
    quiet = _predict("--model", str(exp), "--ref", str(excerpt / "reference.flac"), "--deg", str(silent))
    assert quiet.returncode == 1 and "mean MUSHRA score" not in quiet.stdout
    assert "silent.wav" in quiet.stderr and "coded signal is silent" in quiet.stderr

    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"ref,deg\n{excerpt / 'reference.flac'},{excerpt / 'aac_32.flac'}\n{mono_ref},{mono_deg}\n")
    batch = _predict("--model", str(exp), "--pairs", str(pairs), "--out", str(tmp_path / "scores.csv"))
    assert batch.returncode == 0, batch.stderr
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert lines[0] == "file,mean,ci95,std" and len(lines) == 3
    before = pairs.read_bytes()
    clobber = _predict("--model", str(exp), "--pairs", str(pairs), "--out", str(pairs))
    assert clobber.returncode == 1 and "overwrite an input" in clobber.stderr and pairs.read_bytes() == before


def test_model_dir_of_another_recipe_is_refused(finished, tmp_path):
    out = _predict("--model", str(tmp_path), "--ref", "a.wav", "--deg", "b.wav")
    assert out.returncode == 1 and "not a model directory" in out.stderr
