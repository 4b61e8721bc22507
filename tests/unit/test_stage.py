"""Stage plumbing: config resolution and overrides, seeding, exp-dir records, idempotence."""
from __future__ import annotations

import json

import pytest
import torch

from speechlib.io.errors import InputError
from speechlib.tasks.stage import start_stage

CONFIG = """
seed: 3
corpus: mini
output_folder: !PLACEHOLDER
lr: 0.1
double_lr: !ref <lr> * 2
"""


def test_resolves_overrides_seeds_and_records(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    exp = tmp_path / "exp"
    stage = start_stage("train", [str(config), "--output_folder", str(exp), "--lr", "0.5"])
    assert stage.hparams["double_lr"] == 1.0
    first = torch.rand(3)
    start_stage("train", [str(config), "--output_folder", str(exp), "--lr", "0.5"])
    assert torch.equal(first, torch.rand(3))
    saved = (exp / "conf" / "train.yaml").read_text()
    assert "lr: 0.5" in saved and "double_lr: 1.0" in saved
    versions = json.loads((exp / "conf" / "train.versions.json").read_text())
    assert versions["corpus"] == "mini" and versions["torch"].startswith("2.11.0")


def test_done_marker_follows_the_config(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    out = tmp_path / "out.txt"
    stage = start_stage("prep", [str(config), "--output_folder", str(tmp_path / "e")])
    assert not stage.is_done()
    out.write_text("x")
    stage.mark_done()
    assert start_stage("prep", [str(config), "--output_folder", str(tmp_path / "e")]).is_done((out,))
    changed = start_stage("prep", [str(config), "--output_folder", str(tmp_path / "e"), "--lr", "0.2"])
    assert not changed.is_done((out,))
    out.unlink()
    assert not start_stage("prep", [str(config), "--output_folder", str(tmp_path / "e")]).is_done((out,))


def test_bad_config_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="config file does not exist"):
        start_stage("x", [str(tmp_path / "none.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_folder: x\nmodel: !new:torch.nn.Linear\n  in_features: 3\n")
    with pytest.raises(InputError, match="cannot build the objects"):
        start_stage("x", [str(bad)])


def test_seed_reaches_the_weights_the_config_builds(tmp_path):
    config = tmp_path / "m.yaml"
    config.write_text("seed: 5\noutput_folder: !PLACEHOLDER\nmodel: !new:torch.nn.Linear [4, 2]\n")
    argv = [str(config), "--output_folder", str(tmp_path / "e")]
    first = start_stage("train", argv).hparams["model"].weight.detach().clone()
    torch.manual_seed(1234)
    assert torch.equal(first, start_stage("train", argv).hparams["model"].weight)
    other = start_stage("train", argv + ["--seed", "6"]).hparams["model"].weight
    assert not torch.equal(first, other)
