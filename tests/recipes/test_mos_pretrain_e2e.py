"""End-to-end: egs/mos_pretrain's tiny config through run.sh on the --small mini corpus.

Fills every table row that can run on a CPU-only machine without downloaded weights; checks the
parameter counts Table II reports against the saved models, the predict command, and that a
finished stage re-run does nothing.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from speechlib.tasks.mos_pretrain.score import TABLE1, TABLE2, TABLE3
from speechlib.tasks.mos_pretrain.systems import count_params, load_encoder
from tests.helpers import PYTHON, REPO, run

pytestmark = pytest.mark.timeout(900)  # includes building the shared --small mini corpus when first
RECIPE = REPO / "egs" / "mos_pretrain"
NOT_HERE = {"wav2vec2", "hubert", "dasheng"}  # need local weights


@pytest.fixture(scope="module")
def recipe(recipe_runs, mini_small) -> tuple[Path, Path]:
    """The session's one tiny run (tests/recipes/conftest.py) and the mini corpus it read."""
    return recipe_runs.get("mos_pretrain"), mini_small


def run_recipe(recipe: Path, mini: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["./run.sh", *args], cwd=recipe, env={"MAIN_ROOT": str(REPO), "SPEECHLIB_MINI": str(mini)}, timeout=540)


def numeric(cells) -> bool:
    return all(isinstance(c, (int, float)) and c == c for c in cells)


def mean_of(cell: str) -> float:
    """The mean of a "mean ± std" or "mean [low, high]" cell."""
    return float(str(cell).split()[0])


def test_every_runnable_row_is_filled_with_its_runs(recipe):
    dest, _ = recipe
    exp = dest / "exp" / "tiny_mos_pretrain"
    tables = {t["title"].split(":")[0].split(",")[0]: t for t in
              json.loads((exp / "results.json").read_text())["tables"]}
    t1, t2, t3 = tables["Table I"], tables["Table II"], tables["Table III"]
    assert list(t1["rows"]) == [row[0] for row in TABLE1]
    hp_runs = {"pase_baseline": 2, "pase_noise": 2}  # tiny config: 2 pre-training seeds x 2 heads
    for label, system, *_ in TABLE1:
        cells = t1["rows"][label]
        run_file = json.loads((exp / "encoders" / system / "seed1" / "mos_vcc.json").read_text())
        head_lcc = [h["lcc"] for h in run_file["heads"]]
        assert len(head_lcc) == 2
        if hp_runs.get(system) == 2:  # the row averages both seeds' heads: check against the files
            other = json.loads((exp / "encoders" / system / "seed2" / "mos_vcc.json").read_text())
            expected = (sum(head_lcc) + sum(h["lcc"] for h in other["heads"])) / 4
            assert mean_of(cells[1]) == pytest.approx(expected, abs=1e-3), label
            assert cells[-1] == "2 x 2"
        else:
            assert mean_of(cells[1]) == pytest.approx(sum(head_lcc) / 2, abs=1e-3), label
        if system != "pase_baseline":
            assert "[" in cells[5], label  # difference to the baseline with its CI
    controls = tables["Controls"]["rows"]
    assert all(mean_of(cells[1]) == mean_of(cells[1]) for cells in controls.values())
    for label, system, *_ in TABLE2:
        cells = t2["rows"][label]
        if system in NOT_HERE:
            assert cells[0] == "not run: no local weights"
        else:
            assert cells[0] in (100, 256, 64, 128) and mean_of(cells[4]) == mean_of(cells[4]), label
    dns = [name for name in t2["rows"] if name.startswith("DNSMOS")]
    assert len(dns) == 2 and all(numeric(t2["rows"][d][3:]) and numeric(t3["rows"][d]) for d in dns)
    assert all(mean_of(t3["rows"][row[0]][1]) == mean_of(t3["rows"][row[0]][1]) for row in TABLE3)
    probes = tables["Linear probes of the frozen encoders (held-out noisy chunks)"]["rows"]
    assert 0.0 <= mean_of(probes["PASE baseline"][0]) <= 1.0
    histograms = tables["Noise-label histograms of the pre-training draws"]["rows"]
    assert set(histograms) == {"snr", "category", "region"}
    assert (exp / "figure2.png").stat().st_size > 10_000
    assert "Table I" in (dest / "RESULTS.md").read_text()
    assert list((exp / "encoders" / "pase_noise" / "seed1" / "tensorboard").iterdir())
    for kit_file in ("train_log.txt", "loss_curve.json", "loss_curve.png", "throughput.json", "config.fingerprint"):
        assert (exp / "encoders" / "pase_noise" / "seed1" / kit_file).is_file(), kit_file
        assert (exp / "encoders" / "pase_noise" / "seed1" / "head_vcc" / kit_file).is_file(), kit_file


def test_table2_parameter_counts_match_the_models(recipe):
    dest, _ = recipe
    exp = dest / "exp" / "tiny_mos_pretrain"
    rows = {t["title"].split(":")[0]: t for t in json.loads((exp / "results.json").read_text())["tables"]}["Table II"]
    for label, system, *_ in TABLE2:
        if system in NOT_HERE:
            continue
        encoder, meta = load_encoder(exp / "encoders" / system / "seed1")  # the first pre-training seed's
        assert meta["encoder_params"] == count_params(encoder)
        assert rows["rows"][label][2] == f"{count_params(encoder) / 1e6:.2f}M"
        total = count_params(encoder) + meta["worker_params"]
        assert rows["rows"][label][1] == f"{total / 1e6:.2f}M"
        assert rows["rows"][label][0] == encoder.emb_dim


def test_predict_command_and_idempotent_rerun(recipe):
    dest, mini = recipe
    exp = dest / "exp" / "tiny_mos_pretrain"
    scp = dest / "data" / "tiny_mos_pretrain" / "nisqa_test" / "wav.scp"
    first_wav = scp.read_text().split("\n")[0].split(maxsplit=1)[1]
    for target, expected in ((scp, None), (first_wav, 1), (str(Path(first_wav).parent), None)):
        out = run([PYTHON, "-m", "speechlib.tasks.mos_pretrain.predict", "--model", str(exp), "--in", str(target)])
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().split("\n")
        assert lines[0] == "file,mos" and (expected is None or len(lines) == 2)
        assert all(1.0 <= float(line.rsplit(",", 1)[1]) <= 5.0 for line in lines[1:])
    out = run([PYTHON, "-m", "speechlib.tasks.mos_pretrain.predict", "--model", str(exp), "--in", str(scp),
               "--system", "nope"])
    assert out.returncode == 1 and "encoders/nope: not a model directory" in out.stderr
    out = run_recipe(dest, mini, "--config", "conf/tiny_mos_pretrain.yaml", "--stop-stage", "2")
    assert out.returncode == 0, out.stderr
    assert "is up to date" in (exp / "log" / "prepare.log").read_text()
    assert "pase_baseline seed 1 is up to date" in "".join(
        p.read_text() for p in (exp / "log").glob("pretrain_pase.*.log"))


def test_pase_pretraining_under_ddp_on_cpu(recipe):
    """--ngpu 2 on a CPU machine: two gloo processes pre-train PASE (BatchNorm stays BatchNorm:
    SyncBatchNorm is GPU-only and stopped this run before), rank 0 saves the encoder."""
    dest, _ = recipe
    out = run([PYTHON, "-m", "speechlib.launch.distributed", "--ngpu", "2", "--backend", "gloo", "--",
               PYTHON, "-m", "speechlib.tasks.mos_pretrain.pretrain", "conf/tiny_mos_pretrain.yaml",
               "--output_folder", "exp/ddp", "--data_folder", "data/tiny_mos_pretrain", "--group", "pase",
               "--job", "1", "--nj", "1", "--pase_systems", "[pase_baseline]", "--pretrain_seeds", "[1]",
               "--device", "cpu"], cwd=dest, env={"OMP_NUM_THREADS": "1"}, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    run_folder = dest / "exp" / "ddp" / "encoders" / "pase_baseline" / "seed1"
    encoder, _ = load_encoder(run_folder)
    assert not any("SyncBatchNorm" in type(m).__name__ for m in encoder.modules())
    curve = json.loads((run_folder / "loss_curve.json").read_text())
    assert curve and all(row["train"]["loss"] == row["train"]["loss"] for row in curve)  # finite, not NaN
