"""speechlib.launch.distributed: command construction, Slurm variables, and real runs
(torchrun with 2 gloo processes on CPU; srun through the local Slurm; egs/toy's loss curve)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechlib.launch.distributed import expand_first_host, plan, slurm_rank_env

from tests.helpers import REPO
PY = sys.executable
TRAIN = [PY, "-m", "speechlib.tasks.toy.train", "conf/x.yaml", "--lr", "0.1"]
ALLREDUCE = """
import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
line = (f"rank {dist.get_rank()} of {dist.get_world_size()} sum {int(value.item())} "
        f"local {os.environ['LOCAL_RANK']} master {os.environ['MASTER_ADDR']}\\n")
os.write(1, line.encode())  # one write: lines of the two processes never interleave
dist.destroy_process_group()
"""


def env_with_repo() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return {k: v for k, v in env.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE"))}


def test_one_process_runs_the_command_unchanged():
    assert plan(1, TRAIN, {}).argv == TRAIN
    assert plan(0, TRAIN, {}).mode == "single"


def test_one_node_uses_torchrun_with_the_commands_python():
    result = plan(4, TRAIN, {}, backend="gloo")
    assert result.mode == "torchrun"
    assert result.argv == [PY, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
                           "--nproc-per-node=4", "--module", "speechlib.tasks.toy.train",
                           "conf/x.yaml", "--lr", "0.1", "--distributed_backend=gloo"]
    script = plan(2, ["python3", "train.py", "a.yaml"], {}).argv
    assert script[0] == "python3" and script[-3:] == ["train.py", "a.yaml",
                                                      "--distributed_backend=nccl"]
    assert "--no-python" in plan(2, ["./train.sh"], {}).argv


def test_several_slurm_nodes_use_srun_one_task_per_gpu():
    env = {"SLURM_JOB_ID": "77", "SLURM_JOB_NUM_NODES": "3"}
    result = plan(4, TRAIN, env)
    assert result.mode == "srun"
    assert result.argv[:5] == ["srun", "--nodes=3", "--ntasks=12", "--ntasks-per-node=4",
                               "--kill-on-bad-exit=1"]
    assert result.argv[5:9] == [sys.executable, "-m", "speechlib.launch.distributed",
                                "--slurm-rank"]
    assert result.argv[-1] == "--distributed_backend=nccl"
    # one node inside a Slurm job: torchrun, unless srun is asked for
    assert plan(2, TRAIN, {"SLURM_JOB_ID": "77", "SLURM_JOB_NUM_NODES": "1"}).mode == "torchrun"
    with pytest.raises(ValueError, match="needs a Slurm allocation"):
        plan(2, TRAIN, {}, launcher="srun")


def test_rank_and_master_from_slurm_variables():
    env = {"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NODELIST": "gpu[07-09,12]", "SLURM_STEP_TASKS_PER_NODE": "4(x2)"}
    assert slurm_rank_env(env) == {"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8",
                                   "MASTER_ADDR": "gpu07", "MASTER_PORT": str(20000 + 4242),
                                   "LOCAL_WORLD_SIZE": "4"}
    assert slurm_rank_env({**env, "MASTER_PORT": "1234"})["MASTER_PORT"] == "1234"
    assert expand_first_host("node1,node2") == "node1"
    assert expand_first_host("a-b[3,5-6],c") == "a-b3"
    with pytest.raises(SystemExit, match="outside an srun step"):
        slurm_rank_env({})


def test_torchrun_starts_two_gloo_processes(tmp_path):
    script = tmp_path / "allreduce.py"
    script.write_text(ALLREDUCE)
    done = subprocess.run([PY, "-m", "speechlib.launch.distributed", "--ngpu", "2", "--", PY,
                           str(script)], env=env_with_repo(), capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = sorted(line for line in done.stdout.splitlines() if line.startswith("rank"))
    assert [line.split()[:6] for line in ranks] == [["rank", "0", "of", "2", "sum", "3"],
                                                    ["rank", "1", "of", "2", "sum", "3"]]


def test_srun_across_slurm_tasks(slurm_cluster, tmp_path):
    """Through utils/slurm.py and the local Slurm: srun starts 2 tasks, ranks come from Slurm."""
    script = tmp_path / "allreduce.py"
    script.write_text(ALLREDUCE)
    conf = tmp_path / "slurm.conf"
    conf.write_text("command sbatch --export=ALL\noption ntasks_per_node=* --ntasks-per-node=$0\n")
    env = {**env_with_repo(), "SLURM_CONF": slurm_cluster.conf.as_posix()}
    done = subprocess.run([PY, str(REPO / "utils" / "slurm.py"), "--config", str(conf),
                           "--ntasks-per-node", "2", "log/ddp.log", PY, "-m",
                           "speechlib.launch.distributed", "--launcher", "srun", "--ngpu", "2",
                           "--backend", "gloo", "--", PY, str(script)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "log" / "ddp.log").read_text()
    assert done.returncode == 0, done.stderr + log
    ranks = sorted(line.split() for line in log.splitlines() if line.startswith("rank"))
    assert [r[:6] for r in ranks] == [["rank", "0", "of", "2", "sum", "3"],
                                      ["rank", "1", "of", "2", "sum", "3"]]
    assert {r[7] for r in ranks} == {"0", "1"} and ranks[0][9] == slurm_cluster.host


def toy_curve(workdir: Path, data: Path, name: str, launcher: list[str], batch: int) -> list[dict]:
    out = workdir / name
    train = [PY, "-m", "speechlib.tasks.toy.train", "conf/mini_toy.yaml", "--output_folder",
             str(out), "--data_folder", str(data), "--device", "cpu", "--number_of_epochs", "3",
             "--batch_size", str(batch), "--train_dataloader_opts",
             f"{{batch_size: {batch}, shuffle: False}}", "--sorting", "ascending"]
    done = subprocess.run([*launcher, *train], cwd=REPO / "egs" / "toy", env=env_with_repo(),
                          capture_output=True, text=True, timeout=300)
    # A finished rank's gloo teardown used to abort now and then (exit -6); ranks now leave
    # through speechlib.io.errors.exit_process, so any failure here is a real one.
    assert done.returncode == 0, done.stderr[-4000:]
    return [{"epoch": row["epoch"], "train_loss": row["train"]["loss"], "valid_loss": row["valid"]["loss"]}
            for row in json.loads((out / "classifier" / "loss_curve.json").read_text())]


def test_toy_two_processes_match_one_with_twice_the_batch(tmp_path):
    """DDP with 2 x B equals 1 process with 2B: same samples per step, gradients averaged.

    Sequential order (shuffle off, DistributedSampler unshuffled via `sorting`) makes the two
    runs see the same samples at every step. The validation loss is computed on the whole
    validation set by rank 0 and must match closely; the training loss rank 0 reports is the
    mean over its own half of each batch, so it matches only approximately.
    """
    data = tmp_path / "data"
    prep = subprocess.run([PY, "-m", "speechlib.tasks.toy.prepare", "conf/mini_toy.yaml",
                           "--output_folder", str(tmp_path / "prep"), "--data_folder", str(data)],
                          cwd=REPO / "egs" / "toy", env=env_with_repo(), capture_output=True,
                          text=True, timeout=120)
    assert prep.returncode == 0, prep.stderr[-3000:]
    one = toy_curve(tmp_path, data, "one", [], 16)
    two = toy_curve(tmp_path, data, "two", [PY, "-m", "speechlib.launch.distributed", "--ngpu",
                                            "2", "--backend", "gloo", "--"], 8)
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        assert b["valid_loss"] == pytest.approx(a["valid_loss"], rel=1e-3)
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=0.02)
    assert sorted(p.name for p in (tmp_path / "two" / "classifier" / "save").iterdir())  # rank 0 checkpointed
    # The ranks leave with os._exit: the TensorBoard events queued in the writer's thread must be on disk.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "two" / "classifier" / "tensorboard"))
    events.Reload()
    assert [e.value for e in events.Scalars("loss/valid")] == pytest.approx([b["valid_loss"] for b in two], rel=1e-5)
