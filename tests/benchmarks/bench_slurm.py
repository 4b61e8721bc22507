#!/usr/bin/env python3
"""Benchmark: 50 trivial array tasks through utils/slurm.py on a throw-away local Slurm.

    python tests/benchmarks/bench_slurm.py [--tasks 50]

Prints a table and writes tests/benchmarks/results/slurm.json. Three rows, so the launcher's own
cost can be told apart from Slurm's scheduling cost:
  - utils/slurm.py            the launcher (one sbatch --array, status files, squeue <= 1/s)
  - sbatch --wait --array     Slurm alone, same array, no launcher (Slurm's own waiting)
  - utils/run.py              the local backend, for scale
Per-task overhead = wall time / tasks (the tasks themselves run `true`). The launcher's squeue
calls are counted and the shortest gap between two of them is recorded (must be >= 1 s).
Needs root (it starts munged, slurmctld and slurmd).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from speechlib.launch import slurm as launcher  # noqa: E402
from tests.slurm_cluster import LocalSlurm  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "slurm.json"


def time_launcher(cluster: LocalSlurm, workdir: Path, tasks: int) -> dict:
    """utils/slurm.py in this process, with run_client wrapped to timestamp squeue calls."""
    calls: list[float] = []
    real_run_client = launcher.run_client

    def counting(argv, timeout=60):
        if argv[0] == "squeue":
            calls.append(time.monotonic())
        return real_run_client(argv, timeout)

    launcher.run_client = counting
    old_env, old_cwd = dict(os.environ), os.getcwd()
    os.environ.update(cluster.env)
    os.chdir(workdir)
    try:
        started = time.monotonic()
        with contextlib.redirect_stderr(io.StringIO()):
            code = launcher.main(["--config", str(REPO / "utils" / "conf" / "slurm.conf"),
                                  f"JOB=1:{tasks}", "slurm/log/t.JOB.log", "true"])
        wall = time.monotonic() - started
    finally:
        launcher.run_client = real_run_client
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    return {"name": "utils/slurm.py", "exit": code, "wall_s": wall, "squeue_calls": len(calls),
            "min_squeue_gap_s": min(gaps) if gaps else None}


def time_command(name: str, argv: list[str], env: dict, workdir: Path) -> dict:
    started = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=workdir, capture_output=True, text=True)
    return {"name": name, "exit": done.returncode, "wall_s": time.monotonic() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_slurm.py: needs root to start a local Slurm", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    with LocalSlurm() as cluster:
        rows = [time_launcher(cluster, workdir, args.tasks)]
        rows.append(time_command("sbatch --wait --array (no launcher)",
                                 ["sbatch", "--wait", f"--array=1-{args.tasks}",
                                  "--output=/dev/null", "--wrap", "true"], cluster.env, workdir))
        cpus = cluster.cpus
    rows.append(time_command("utils/run.py (local)",
                             [sys.executable, str(REPO / "utils" / "run.py"), f"JOB=1:{args.tasks}",
                              "local/log/t.JOB.log", "true"], dict(os.environ), workdir))
    shutil.rmtree(workdir, ignore_errors=True)
    for row in rows:
        row["per_task_s"] = row["wall_s"] / args.tasks
    print(f"{args.tasks} trivial tasks, node with {cpus} CPUs (one task per CPU at a time)")
    print(f"{'launcher':38s} {'exit':>4s} {'wall s':>8s} {'per task s':>10s} {'squeue':>6s} "
          f"{'min gap s':>9s}")
    for row in rows:
        gap = row.get("min_squeue_gap_s")
        print(f"{row['name']:38s} {row['exit']:4d} {row['wall_s']:8.2f} {row['per_task_s']:10.3f} "
              f"{row.get('squeue_calls', ''):>6} {'' if gap is None else f'{gap:.2f}':>9s}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "tasks": args.tasks, "node_cpus": cpus, "host": platform.node(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(REPO)}")
    return 0 if all(row["exit"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
