"""utils/slurm.py: config parsing and job script without Slurm; job arrays against a real one.

The cluster tests use the session's `slurm_cluster` (tests/slurm_fixtures.py): a single-node
Slurm started on this host. They run under CI=true and are skipped elsewhere without root.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechlib.launch.jobs import LaunchError, parse_call
from speechlib.launch.slurm import ArrayFiles, job_script
from speechlib.launch.slurm_conf import DEFAULT_CONFIG, parse_config

from tests.helpers import REPO
SLURM_PY = str(REPO / "utils" / "slurm.py")
RUN_PY = str(REPO / "utils" / "run.py")
PY = sys.executable
TRICKY = ["a b", "$(echo pwned)", "x; echo injected", "'q'", "JOB"]


def launch(args: list[str], cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PY, SLURM_PY, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def in_queue(env: dict[str, str], name: str) -> str:
    """Pending/running jobs named `name` (squeue's default states)."""
    return subprocess.run(["squeue", "--noheader", f"--name={name}", "--format=%i %T"],
                          env=env, capture_output=True, text=True, timeout=30).stdout.strip()


# ---------------------------------------------------------------- no Slurm needed

def test_config_maps_options_and_defaults():
    conf = parse_config("command sbatch --export=ALL  # site options\n"
                        "option mem=* --mem=$0\noption mem=0\n"
                        "option num-threads=* --cpus-per-task=$0\n"
                        "option gpu=* -p gpu --gres=gpu:$0\noption gpu=0\ndefault gpu=0\n")
    assert conf.command == ["sbatch", "--export=ALL"]
    assert conf.sbatch_args({}) == []
    assert conf.sbatch_args({"mem": "4G", "num_threads": "2", "gpu": "1"}) == \
        ["-p", "gpu", "--gres=gpu:1", "--mem=4G", "--cpus-per-task=2"]
    assert conf.sbatch_args({"mem": "0", "max_jobs_run": "3", "config": "x"}) == []


def test_config_rejects_undescribed_options():
    conf = parse_config("option gpu=0\noption gpu=1 --gres=gpu:1\n", "site.conf")
    with pytest.raises(LaunchError, match="--mem is not described in site.conf"):
        conf.sbatch_args({"mem": "4G"})
    with pytest.raises(LaunchError, match="--gpu 2 is not allowed"):
        conf.sbatch_args({"gpu": "2"})
    with pytest.raises(LaunchError, match="unknown keyword"):
        parse_config("optoin mem=* --mem $0")
    with pytest.raises(LaunchError, match="has no 'option gpu"):
        parse_config("default gpu=0")


def test_shipped_configs_describe_every_launcher_option():
    for path in (DEFAULT_CONFIG, REPO / "egs" / "toy" / "conf" / "slurm.conf"):
        conf = parse_config(path.read_text(), str(path))
        assert conf.command[0] == "sbatch"
        args = conf.sbatch_args({"mem": "1G", "num_threads": "2", "time": "1:00:00", "gpu": "0"})
        assert args == ["--mem=1G", "--cpus-per-task=2", "--time=1:00:00"]


def test_job_script_runs_argv_literally_and_writes_runpy_logs(tmp_path, monkeypatch):
    """The generated script, run by hand as task 2: no shell interpretation, run.py's log."""
    monkeypatch.chdir(tmp_path)
    spec = parse_call(["JOB=1:3", "log/x.JOB.log", PY, "-c",
                       "import sys; print(sys.argv[1:])", *TRICKY], "slurm.py")
    files = ArrayFiles.for_spec(spec)
    files.qdir.mkdir(parents=True)
    files.script.write_text(job_script(spec, files, threads=3))
    done = subprocess.run(["bash", str(files.script)], env={**os.environ,
                          "SLURM_ARRAY_TASK_ID": "2"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "log" / "x.2.log").read_text().splitlines()
    expected = ["a b", "$(echo pwned)", "x; echo injected", "'q'", "2"]
    assert log[0].startswith(f"# {PY} -c ") and "'$(echo pwned)'" in log[0]
    assert re.match(r"# Started at \w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4} on \S+$", log[1])
    assert log[2] == "#"
    assert log[3] == repr(expected)
    # Wall-clock seconds: a loaded machine may take a second or more to start Python.
    accounted = re.fullmatch(r"# Accounting: time=(\d+) threads=3", log[4])
    ended = re.fullmatch(r"# Ended \(code 0\) at .*, elapsed time (\d+) seconds", log[5])
    assert accounted and ended and accounted[1] == ended[1]
    assert (files.qdir / "x.2.exit").read_text() == "0\n"


def test_missing_sbatch_is_one_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no Slurm client on PATH
    done = launch(["--config", str(DEFAULT_CONFIG), "JOB=1:2", "log.JOB.log", "true"],
                  tmp_path, env)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "sbatch not found" in done.stderr and "check with" in done.stderr


def test_undescribed_option_fails_before_submitting(tmp_path):
    done = launch(["--config", str(DEFAULT_CONFIG), "--queue", "long", "log", "true"], tmp_path)
    assert done.returncode == 1
    assert "--queue is not described" in done.stderr


# ---------------------------------------------------------------- against a real Slurm

def test_array_substitutes_job_and_writes_logs(slurm_cluster, tmp_path):
    args = ["--config", str(DEFAULT_CONFIG), "JOB=1:3", "exp/log/echo.JOB.log",
            PY, "-c", "import sys; print(sys.argv[1:])", *TRICKY]
    done = launch(args, tmp_path, slurm_cluster.env)
    assert done.returncode == 0, done.stderr
    for task in (1, 2, 3):
        log = (tmp_path / "exp" / "log" / f"echo.{task}.log").read_text().splitlines()
        assert log[3] == repr(TRICKY[:-1] + [str(task)])
        assert log[-2] == "# Accounting: " + log[-2].split(": ", 1)[1]
        assert log[-1].startswith("# Ended (code 0) at ")
    assert (tmp_path / "exp" / "log" / "q" / "echo.sh").is_file()
    assert not in_queue(slurm_cluster.env, "echo")


def test_failures_reported_like_run_py(slurm_cluster, tmp_path):
    code = "import sys; t = int(sys.argv[1]); print('task', t, 'says hi'); sys.exit(3 * (t > 2))"
    outputs = {}
    for name, program in (("slurm.py", SLURM_PY), ("run.py", RUN_PY)):
        done = subprocess.run([PY, program, "--config", str(DEFAULT_CONFIG), "JOB=1:4",
                               f"{name}/x.JOB.log", PY, "-c", code, "JOB"], cwd=tmp_path,
                              env=slurm_cluster.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        lines = [line for line in done.stderr.splitlines() if "submitted job" not in line]
        text = "\n".join(lines).replace(name, "PROG")
        outputs[name] = re.sub(r"\d\d:\d\d:\d\d|time=\d+|elapsed time \d+", "T", text)
    assert outputs["slurm.py"] == outputs["run.py"]
    assert "PROG: 2 / 4 failed, log is in PROG/x.*.log" in outputs["slurm.py"]
    assert "task 3 says hi" in outputs["slurm.py"]
    assert "(code 3)" in outputs["slurm.py"]


def test_killed_task_reported_as_out_of_memory(slurm_cluster, tmp_path):
    done = launch(["--config", str(DEFAULT_CONFIG), "JOB=1:2", "log/oom.JOB.log",
                   "bash", "-c", 'echo allocating; [ "$1" = 2 ] && kill -9 $$; true', "_", "JOB"],
                  tmp_path, slurm_cluster.env)
    assert done.returncode == 1
    assert "1 / 2 failed" in done.stderr
    assert "out of memory" in done.stderr and "exit 137" in done.stderr


def test_mem_and_threads_reach_sbatch(slurm_cluster, tmp_path):
    show = "import os; print(os.environ['SLURM_MEM_PER_NODE'], os.environ['SLURM_CPUS_PER_TASK'])"
    threads = min(2, slurm_cluster.cpus)
    done = launch(["--config", str(DEFAULT_CONFIG), "--mem", "300M", "--num-threads",
                   str(threads), "--time", "5:00", "--max-jobs-run", "1", "log/env.log",
                   PY, "-c", show], tmp_path, slurm_cluster.env)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "log" / "env.log").read_text().splitlines()
    assert log[3] == f"300 {threads}"
    assert log[-2].endswith(f"threads={threads}")


def test_rejected_option_shows_sbatch_message_and_queues_nothing(slurm_cluster, tmp_path):
    done = launch(["--config", str(DEFAULT_CONFIG), "--mem", "100000T", "JOB=1:2",
                   "log/big.JOB.log", "true"], tmp_path, slurm_cluster.env)
    assert done.returncode == 1
    assert "sbatch rejected the job" in done.stderr
    assert "Memory specification" in done.stderr or "memory" in done.stderr.lower()
    assert not in_queue(slurm_cluster.env, "big")

    conf = tmp_path / "bad.conf"
    conf.write_text("command sbatch --partition=nosuchpartition\n")
    done = launch(["--config", str(conf), "JOB=1:2", "log/part.JOB.log", "true"],
                  tmp_path, slurm_cluster.env)
    assert done.returncode == 1
    assert "invalid partition" in done.stderr.lower(), done.stderr
    assert not in_queue(slurm_cluster.env, "part")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_cancels_the_array(slurm_cluster, tmp_path, signum):
    name = f"sleep{int(signum)}"
    proc = subprocess.Popen([PY, SLURM_PY, "--config", str(DEFAULT_CONFIG), "JOB=1:3",
                             f"log/{name}.JOB.log", "sleep", "300"], cwd=tmp_path,
                            env=slurm_cluster.env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while "RUNNING" not in in_queue(slurm_cluster.env, name):
        assert time.monotonic() < deadline, "array never started"
        time.sleep(0.3)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "cancelled job" in stderr
    assert not in_queue(slurm_cluster.env, name)


def test_controller_down_is_one_line(slurm_cluster, tmp_path):
    text = slurm_cluster.conf.read_text()
    dead = re.sub(r"SlurmctldPort=\d+", "SlurmctldPort=9", text)  # nothing listens on port 9
    conf = tmp_path / "dead.conf"
    conf.write_text(dead)
    env = {**slurm_cluster.env, "SLURM_CONF": str(conf)}
    started = time.monotonic()
    done = launch(["--config", str(DEFAULT_CONFIG), "JOB=1:2", "log/x.JOB.log", "true"],
                  tmp_path, env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "cannot be reached" in done.stderr and "scontrol ping" in done.stderr
    assert time.monotonic() - started < 100


def test_squeue_is_asked_at_most_once_a_second(slurm_cluster, tmp_path, monkeypatch):
    from speechlib.launch import slurm as launcher
    calls: list[float] = []
    real = launcher.run_client

    def counting(argv, timeout=60):
        if argv[0] == "squeue":
            calls.append(time.monotonic())
        return real(argv, timeout)

    monkeypatch.setattr(launcher, "run_client", counting)
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    monkeypatch.chdir(tmp_path)
    code = launcher.main(["--config", str(DEFAULT_CONFIG), "JOB=1:2", "log/s.JOB.log",
                          "sleep", "3"])
    assert code == 0
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert len(calls) >= 2 and min(gaps) >= 0.99
