"""End-to-end: egs/se_uda's tiny config through run.sh on the --small mini corpus (every stage,
every table, the source model beating the mixture on the source-domain test), no file shared by
a training and a test list, re-runs that skip and leave the fixed test sets as they were, plus
the bad-input paths of training and mixing.

`mini_small` is the session fixture of tests/fixtures_mini.py (registered in conftest)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechlib.io.kaldi import read_dict
from tests.helpers import PYTHON, REPO, run

pytestmark = pytest.mark.timeout(1800)  # includes the session's mini corpus build (9.5 min at load 15)
RECIPE = REPO / "egs" / "se_uda"
TABLE1_ROWS = ("Noisy", "Source model", "RemixIT", "DANN", "DANN+RemixIT", "SRST (random source)",
               "SRST (similar source)", "Target model")


@pytest.fixture(scope="module")
def tiny_run(recipe_runs) -> Path:
    """The session's one tiny run (every stage; tests/recipes/conftest.py); the tests below read it."""
    return recipe_runs.get("se_uda")


def run_recipe(recipe: Path, mini: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["./run.sh", "--config", "conf/tiny_se_uda.yaml", *args], cwd=recipe,
               env={"MAIN_ROOT": str(REPO), "SPEECHLIB_MINI": str(mini), "LIBRISPEECH": "", "WHAM": "", "DNS": ""},
               timeout=1100)


def _cell(results: str, row: str, column: int) -> float:
    line = next(l for l in results.splitlines() if l.startswith(f"| {row} |"))
    return float(line.strip("|").split("|")[column].split("±")[0])


def test_tiny_recipe_end_to_end(tiny_run):
    exp = tiny_run / "exp" / "tiny_se_uda"
    results = (exp / "RESULTS.md").read_text()
    cell = r"-?\d+\.\d+ ± \d+\.\d+"  # mean ± 95 % CI
    for row in TABLE1_ROWS:
        line = next(l for l in results.splitlines() if l.startswith(f"| {row} |"))
        cells = line.strip("|").split("|")[1:]
        assert len(cells) == 9 and all(re.fullmatch(cell, c.strip()) for c in cells), line
        assert f"| *{row} (paper)* |" in results
    assert "Table 2: the language gap" in results and "| DNS English: Gap |" in results
    paired = results.split("### Paired differences")[1].split("###")[0]
    for row in ("DANN", "RemixIT", "DANN+RemixIT", "SRST (random source)", "SRST (similar source)",
                "Target model (domain gap)"):
        assert re.search(rf"\| {re.escape(row)} \| [+-]\d+\.\d+ \[[+-]\d+\.\d+, [+-]\d+\.\d+\]", paired), row
    # the source model beats the mixture on the source-domain test (SI-SDRi, column 4)
    source = results.split("### Source-domain test set")[1].split("###")[0]
    assert _cell(source, "Source model", 4) > 0.1, source
    to_mixture = results.split("### Paired differences to the mixture")[1].split("###")[0]
    for row in ("Source model, source test 0 dB", "Target model, target test 0 dB"):
        assert re.search(rf"\| {row} \| [+-]\d+\.\d+ \[[+-]\d+\.\d+, [+-]\d+\.\d+\]", to_mixture), row
    for figure in ("figure3_domain_scores", "learning_curves", "si_sdr_vs_snr", "spectrograms"):
        assert (exp / f"{figure}.png").stat().st_size > 1000
        assert (tiny_run / "figures" / f"tiny_se_uda-{figure}.png").is_file()
    assert (exp / "examples" / "target0dB_srst_similar.flac").is_file()
    scores = json.loads((exp / "seed1" / "srst" / "domain_scores.json").read_text())
    assert scores["source"] and scores["target"]
    srst = [json.loads(l) for l in [(exp / "seed1" / "srst_similar" / "loss_curve.json").read_text()]][0]
    assert [round(row["train"]["source_share"], 2) for row in srst] == [0.30, 0.27]
    for system in ("source", "target"):  # validation each epoch
        curve = json.loads((exp / "seed1" / system / "loss_curve.json").read_text())
        assert all("si_sdri" in row["valid"] for row in curve)


def test_no_file_is_both_trained_on_and_tested(tiny_run):
    """By inode and by content: no training list shares a recording with a test or valid list."""
    from speechlib.data.leakage import audio_files, shared_files
    from speechlib.tasks.se_uda.prepare import HELD_OUT_DIRS, TRAIN_DIRS

    data = tiny_run / "data" / "tiny"
    training = audio_files(data / name for name in TRAIN_DIRS)
    held_out = audio_files(data / name for name in HELD_OUT_DIRS)
    assert training and held_out
    assert not shared_files(training, held_out)
    # and the DNS test readers are not training readers
    for lang_set in ("target_speech", "english_speech"):
        train_spk = set(read_dict(data / f"{lang_set}_train" / "utt2spk").values())
        assert not train_spk & set(read_dict(data / f"{lang_set}_test" / "utt2spk").values())


def test_reruns_skip_and_test_sets_stay_fixed(tiny_run, mini_small):
    from speechlib.tasks.se_uda.mix import read_manifest

    data = tiny_run / "data" / "tiny"
    sets = sorted(p.parent.name for p in data.glob("*/manifest.sha256"))
    before = {name: read_manifest(data / name)["audio"] for name in sets}
    assert {"source_test_snr0", "target_test_snr0", "english_test_snr0", "source_valid"} <= set(before)
    out = run_recipe(tiny_run, mini_small, "--stage", "1", "--stop-stage", "2", "--tag", "tiny_se_uda")
    assert out.returncode == 0, out.stdout[-2000:]
    log = (tiny_run / "exp" / "tiny_se_uda" / "seed1" / "log" / "train_source.log").read_text()
    assert "up to date" in log
    # other training sizes and seed: stage 1 runs again, and leaves every fixed set as it was
    out = run(["./run.sh", "--config", "conf/tiny_se_uda.yaml", "--stage", "1", "--stop-stage", "1", "--seed", "5"],
              cwd=tiny_run, env={"MAIN_ROOT": str(REPO), "SPEECHLIB_MINI": str(mini_small)}, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:]
    assert {name: read_manifest(data / name)["audio"] for name in sets} == before


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


def test_bad_training_audio_is_named_in_one_line(tmp_path):
    """A NaN sample in a source speech file: training stops at once with the file named."""
    data = tmp_path / "data"
    _mixture_dir(data / "source_valid", ["s1-a", "s1-b"], bad=None)
    rng = np.random.default_rng(0)
    for name, count in (("source_speech", 3), ("source_noise", 2)):
        (data / name).mkdir()
        wav = {}
        for index in range(count):
            signal = 0.1 * rng.standard_normal(16000).astype(np.float32)
            if name == "source_speech" and index == 1:
                signal[500] = np.nan
            path = data / name / f"f{index}.wav"
            soundfile.write(path, signal, 16000, subtype="FLOAT")
            wav[f"spk{index}-u{index}"] = str(path)
        (data / name / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in wav.items()))
        (data / name / "utt2spk").write_text("".join(f"{k} {k.split('-')[0]}\n" for k in wav))
    out = run([PYTHON, "-m", "speechlib.tasks.se_uda.train", str(RECIPE / "conf" / "tiny_se_uda.yaml"),
               "--system", "source", "--data_folder", str(data), "--output_folder", str(tmp_path / "exp"),
               "--batch_size", "4", "--num_source_train", "16", "--device", "cpu"])
    assert out.returncode == 1, out.stderr[-2000:]
    assert "f1.wav" in out.stderr and "Traceback" not in out.stderr


def test_mixing_resamples_a_target_file_at_another_rate(tmp_path):
    from speechlib.tasks.se_uda.mix import AudioCache

    path = tmp_path / "x.wav"
    soundfile.write(path, 0.1 * np.sin(np.arange(8000) / 5.0), 8000)
    cache = AudioCache(16000, "resample")
    assert cache("u", str(path)).shape == (16000,) and cache.resampled == 1
    from speechlib.io.errors import InputError
    with pytest.raises(InputError, match="8000 Hz, expected 16000 Hz"):
        AudioCache(16000, "error")("u", str(path))
