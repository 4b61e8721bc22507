"""Stage plumbing: config resolution and overrides, seeding, exp-dir records, idempotence."""
from __future__ import annotations

import json
from pathlib import Path

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


def test_declared_options_and_job_spelling(tmp_path):
    from speechlib.tasks.stage import Option

    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    argv = [str(config), "--output_folder", str(tmp_path / "e"), "--system", "b", "--job", "2", "--nj", "3"]
    stage = start_stage("train_{system}.{job}of{nj}", argv, options=(Option("system", "which", ("a", "b")),),
                        jobs=True)
    assert (stage.name, stage.options["system"], stage.job, stage.nj) == ("train_b.2of3", "b", 2, 3)
    assert "stage options: --system b --job 2 --nj 3" in (tmp_path / "e" / "conf" / "train_b.2of3.yaml").read_text()
    with pytest.raises(InputError, match="--system is required"):
        start_stage("x", argv[:3], options=(Option("system", "which", ("a", "b")),))
    with pytest.raises(InputError, match="'c' is not one of a, b"):
        start_stage("x", argv[:3] + ["--system=c"], options=(Option("system", "which", ("a", "b")),))
    with pytest.raises(InputError, match="outside 1..3"):
        start_stage("x", argv[:3] + ["--job", "4", "--nj", "3"], options=(), jobs=True)


def test_undeclared_config_key_is_an_error_for_declared_stages(tmp_path, caplog):
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    argv = [str(config), "--output_folder", str(tmp_path / "e"), "--lrr", "0.5"]
    with pytest.raises(InputError, match="unknown config key.*--lrr"):
        start_stage("x", argv, options=())
    start_stage("x", argv)  # a stage that declares nothing yet: a warning
    assert "--lrr" in caplog.text and "will become an error" in caplog.text


def stage_modules() -> list[str]:
    """Every module under speechlib/tasks that is a stage entry point (calls start_stage)."""
    package = Path(__file__).resolve().parents[2] / "speechlib"
    return sorted("speechlib." + ".".join(path.relative_to(package).with_suffix("").parts)
                  for path in (package / "tasks").glob("*/*.py") if "start_stage(" in path.read_text())


@pytest.mark.parametrize("module", stage_modules())
def test_stage_module_prints_help_and_exits_0(module, monkeypatch, capsys):
    """`python -m speechlib.tasks.<recipe>.<stage> --help`, run in-process (runpy) to spare a
    Python start per module: usage on stdout, exit status 0, nothing else done."""
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    out = capsys.readouterr()
    assert exit_info.value.code in (0, None), out.err[-500:]
    assert "usage:" in out.out.lower(), out.out[-500:]


def test_num_threads_and_seed_are_read_beside_comments(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("seed: 7  # the seed\nnum_threads: 1   # pinned\noutput_folder: !PLACEHOLDER\n")
    torch.set_num_threads(2)
    start_stage("x", [str(config), "--output_folder", str(tmp_path / "e")], options=())
    assert torch.get_num_threads() == 1
    first = torch.rand(2)
    torch.manual_seed(7)
    assert torch.equal(first, torch.rand(2))


def test_set_seed_turns_on_deterministic_kernels_with_warnings_only():
    """set_seed sets torch's C++ flag directly (no inductor import); the public getters see it."""
    import torch

    from speechlib.tasks.stage import set_seed

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        torch.use_deterministic_algorithms(False)
        set_seed(1)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


FINISHED_RANK = """
import atexit, sys, threading, time
import torch.distributed as dist
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.stage import start_stage

def main():
    start_stage("train", [sys.argv[1], "--output_folder", sys.argv[2], "--distributed_backend", "gloo"])
    assert dist.is_initialized()
    atexit.register(lambda: open(sys.argv[3], "w").write("exit handlers ran"))
    # Finalization would wait for this thread (and then destroy gloo's C++ state): it must not.
    threading.Thread(target=time.sleep, args=(600,)).start()
    print("work done", end="")  # unflushed: exit_process must flush it
    return 3

exit_on_input_error("train", main)
"""


def test_a_finished_distributed_rank_exits_without_teardown(tmp_path):
    """A gloo rank's teardown now and then aborted a finished process (exit -6, a failed CI run):
    a rank leaves through os._exit after the exit handlers, with the stage's status."""
    import os
    import socket
    import subprocess
    import sys

    from tests.helpers import REPO

    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    marker = tmp_path / "handlers.txt"
    done = subprocess.run([sys.executable, "-c", FINISHED_RANK, str(config), str(tmp_path / "exp"), str(marker)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-3000:]
    assert done.stdout == "work done"
    assert marker.read_text() == "exit handlers ran"


def test_a_process_without_a_group_exits_the_usual_way():
    from speechlib.io.errors import exit_process

    with pytest.raises(SystemExit) as exited:
        exit_process(4)
    assert exited.value.code == 4
