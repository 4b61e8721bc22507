"""End-to-end: egs/toy through run.sh, stage skipping, and resume after a kill mid-epoch."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, copy_recipe, run

pytestmark = pytest.mark.timeout(600)


@pytest.fixture()
def recipe(tmp_path) -> Path:
    return copy_recipe("toy", tmp_path)


def run_recipe(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["./run.sh", *args], cwd=recipe, env={"MAIN_ROOT": str(REPO)})


def test_full_run_then_stage_skipping(recipe_runs, tmp_path):
    """The session's tiny run (tests/recipes/conftest.py), then stage skipping on a copy of it."""
    tiny = ("--config", "conf/tiny_toy.yaml")
    finished = recipe_runs.get("toy")
    exp = finished / "exp" / "tiny_toy"
    results = (exp / "RESULTS.md").read_text()
    assert "| linear on mean log-mel |" in results and "| chance | 33.33 |" in results
    assert (finished / "RESULTS.md").is_file()
    for stage in ("prepare", "train", "score"):
        assert (exp / "conf" / f"{stage}.yaml").is_file()
    system = exp / "classifier"
    assert len(json.loads((system / "loss_curve.json").read_text())) == 2
    assert list((system / "tensorboard").iterdir()) and (system / "loss_curve.png").stat().st_size > 1000
    assert (system / "train_log.txt").read_text().count("epoch:") == 2
    assert "\r" not in (exp / "log" / "train.log").read_text()
    assert (exp / "run.sh").read_text().rstrip().endswith("exec ./run.sh --config conf/tiny_toy.yaml \"$@\"")

    recipe = tmp_path / "toy"
    shutil.copytree(finished, recipe, symlinks=True)
    exp = recipe / "exp" / "tiny_toy"
    prepare_log = exp / "log" / "prepare.log"
    before = prepare_log.stat().st_mtime_ns
    out = run_recipe(recipe, *tiny, "--stage", "3")
    assert out.returncode == 0 and "Stage 1" not in out.stdout and "Stage 3: score" in out.stdout
    assert "Successfully finished. [elapsed=" in out.stdout
    assert (exp / "run.sh").read_text().rstrip().endswith("exec ./run.sh --config conf/tiny_toy.yaml --stage 3 \"$@\"")
    assert prepare_log.stat().st_mtime_ns == before
    # the resume script replays the original arguments plus new ones
    out = run(["bash", str(exp / "run.sh"), "--stage", "3"], env={"MAIN_ROOT": str(REPO)})
    assert out.returncode == 0 and "Stage 3" in out.stdout
    # a finished stage re-run with the same options does nothing
    out = run_recipe(recipe, *tiny, "--stop-stage", "1")
    assert out.returncode == 0 and "is up to date" in prepare_log.read_text()


def test_bad_options_fail_with_one_line(recipe):
    out = run_recipe(recipe, "--stgae", "2")
    assert out.returncode != 0 and out.stderr.strip().endswith("invalid option --stgae (see --help)")
    out = run_recipe(recipe, "--config", "conf/missing.yaml")
    assert out.returncode != 0 and "conf/missing.yaml: no such file" in out.stderr


def test_killed_training_resumes_from_its_checkpoint(recipe):
    config = (recipe / "conf" / "mini_toy.yaml").read_text()
    for key, value in {"utts_per_colour": 40, "batch_size": 1, "ckpt_interval_steps": 20,
                       "number_of_epochs": 2}.items():
        config = "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line
                           for line in config.splitlines())
    (recipe / "conf" / "resume.yaml").write_text(config + "\n")
    assert run_recipe(recipe, "--config", "conf/resume.yaml", "--stop-stage", "1").returncode == 0
    exp = recipe / "exp" / "resume"
    train = ["./run.sh", "--config", "conf/resume.yaml", "--stage", "2", "--stop-stage", "2"]
    env = dict(os.environ, MAIN_ROOT=str(REPO), PYTHONPATH=str(REPO))
    proc = subprocess.Popen(train, cwd=recipe, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any("brain_intra_epoch_ckpt" in p.read_text() for p in exp.glob("classifier/save/CKPT*/CKPT.yaml")):
            break
        time.sleep(0.05)
    else:
        pytest.fail("no intra-epoch checkpoint appeared")
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    curve = exp / "classifier" / "loss_curve.json"
    epochs_before = len(json.loads(curve.read_text())) if curve.exists() else 0
    assert epochs_before < 2, "training finished before the kill: the test proves nothing"

    out = run(train, cwd=recipe, env={"MAIN_ROOT": str(REPO)})
    assert out.returncode == 0, out.stdout + out.stderr
    log = (exp / "log" / "train.log").read_text()
    assert "(mid-epoch)" in log.split("resuming: loading checkpoint")[1].splitlines()[0]
    assert [row["epoch"] for row in json.loads(curve.read_text())] == [1, 2]
