"""Run a training entry point on several GPUs (or CPU processes) with torch.distributed.

    python -m speechlib.launch.distributed --ngpu N [--backend nccl|gloo] [--launcher auto|torchrun|srun]
        -- python -m speechlib.tasks.<recipe>.train hparams.yaml [--overrides]

Recipes call it from their training stage as `--ngpu N`. What it does:
  - N <= 1 on one node: runs the command as it is (no process group).
  - one node, N > 1: `torchrun --standalone --nproc-per-node=N` starts N processes.
  - inside a Slurm allocation of several nodes (SLURM_JOB_NUM_NODES > 1), or --launcher srun:
    `srun --ntasks-per-node=N` starts one process per GPU on every node; each of them comes back
    here (--slurm-rank), takes RANK, LOCAL_RANK and WORLD_SIZE from SLURM_PROCID, SLURM_LOCALID
    and SLURM_NTASKS, MASTER_ADDR from the first host of SLURM_JOB_NODELIST and MASTER_PORT from
    the job id, then execs the command. torchrun is not needed on the nodes.
The training side is SpeechBrain's own DDP support: it joins the process group when RANK and
LOCAL_RANK are set, `--distributed_backend` (appended here when more than one process runs)
picks nccl or gloo, data preparation runs under `run_on_main`, checkpoints are written by rank 0.

Batch size is per process: N processes with `batch_size: B` train with a global batch of N x B,
so to keep a one-GPU recipe's optimisation unchanged, divide batch_size by N (or scale the
learning rate for the larger batch, at your own risk).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from dataclasses import dataclass

DEFAULT_PORT_BASE = 20000


@dataclass
class Plan:
    """What to exec, and the environment additions it needs."""

    argv: list[str]
    env: dict[str, str]
    mode: str  # "single", "torchrun", "srun" or "slurm-rank"


def is_python(program: str) -> bool:
    return re.fullmatch(r"python[0-9.]*", os.path.basename(program)) is not None


def torchrun_argv(nproc: int, command: list[str], extra: list[str] = ()) -> list[str]:
    """`python -m torch.distributed.run` for `command`, started with the command's own python."""
    if is_python(command[0]) and len(command) > 1:
        python, rest = command[0], command[1:]
        if rest[0] == "-m" and len(rest) > 1:
            target = ["--module", *rest[1:]]
        elif rest[0].startswith("-"):
            raise ValueError(f"cannot hand '{' '.join(command[:2])} ...' to torchrun: give a "
                             f"script or '-m module'")
        else:
            target = rest
    else:
        python, target = sys.executable, ["--no-python", *command]
    return [python, "-m", "torch.distributed.run", *extra, f"--nproc-per-node={nproc}", *target]


def expand_first_host(nodelist: str) -> str:
    """First host of a Slurm hostlist: 'gpu[07-09,12],cpu1' -> 'gpu07' (what scontrol does)."""
    first = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not first:
        raise ValueError(f"cannot read Slurm node list '{nodelist}'")
    prefix, ranges = first.group(1), first.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def master_port(env: dict[str, str]) -> str:
    """Given MASTER_PORT, else one derived from the job id, so jobs sharing a node differ."""
    if env.get("MASTER_PORT"):
        return env["MASTER_PORT"]
    job = env.get("SLURM_JOB_ID", "0")
    return str(DEFAULT_PORT_BASE + int(job) % 20000 if job.isdigit() else 29500)


def slurm_rank_env(env: dict[str, str]) -> dict[str, str]:
    """torch.distributed's env:// variables from those srun gives each task."""
    try:
        nodelist = env.get("SLURM_STEP_NODELIST") or env["SLURM_JOB_NODELIST"]
        out = {"RANK": env["SLURM_PROCID"], "LOCAL_RANK": env["SLURM_LOCALID"],
               "WORLD_SIZE": env["SLURM_NTASKS"], "MASTER_ADDR": expand_first_host(nodelist),
               "MASTER_PORT": master_port(env)}
    except KeyError as missing:
        raise SystemExit(f"distributed: --slurm-rank outside an srun step: {missing} is not set")
    per_node = re.match(r"(\d+)", env.get("SLURM_STEP_TASKS_PER_NODE") or
                        env.get("SLURM_TASKS_PER_NODE", ""))
    if per_node:
        out["LOCAL_WORLD_SIZE"] = per_node.group(1)
    return out


def with_backend(command: list[str], backend: str | None, world: int) -> list[str]:
    """SpeechBrain's --distributed_backend, only when a process group will exist."""
    if world <= 1 or backend is None or any(a.startswith("--distributed_backend") for a in command):
        return list(command)
    return [*command, f"--distributed_backend={backend}"]


def plan(ngpu: int, command: list[str], env: dict[str, str], backend: str | None = None,
         launcher: str = "auto") -> Plan:
    """Decide how to start `command` on `ngpu` processes per node."""
    if not command:
        raise ValueError("no training command given (put it after --)")
    ngpu = max(ngpu, 1)
    nodes = int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or 1)
    in_allocation = "SLURM_JOB_ID" in env
    if launcher == "auto":
        launcher = "srun" if in_allocation and nodes > 1 else "torchrun"
    if launcher == "srun":
        if not in_allocation:
            raise ValueError("--launcher srun needs a Slurm allocation (run it through "
                             "utils/slurm.py, sbatch or salloc)")
        inner = [sys.executable, "-m", "speechlib.launch.distributed", "--slurm-rank", "--",
                 *with_backend(command, backend or "nccl", nodes * ngpu)]
        return Plan(["srun", f"--nodes={nodes}", f"--ntasks={nodes * ngpu}",
                     f"--ntasks-per-node={ngpu}", "--kill-on-bad-exit=1", *inner], {}, "srun")
    if ngpu == 1:
        return Plan(list(command), {}, "single")
    extra = ["--standalone", "--nnodes=1"]
    return Plan(torchrun_argv(ngpu, with_backend(command, backend or "nccl", ngpu), extra),
                {}, "torchrun")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        split = argv.index("--")
        ours, command = argv[:split], argv[split + 1:]
    else:
        ours, command = argv, []
    parser = argparse.ArgumentParser(prog="python -m speechlib.launch.distributed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--ngpu", "--nproc-per-node", type=int, default=1,
                        help="processes per node, one per GPU (with --backend gloo: CPU processes)")
    parser.add_argument("--backend", choices=("nccl", "gloo", "mpi"), default=None,
                        help="process-group backend; default nccl (GPUs)")
    parser.add_argument("--launcher", choices=("auto", "torchrun", "srun"), default="auto")
    parser.add_argument("--slurm-rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    args = parser.parse_args(ours)
    env = dict(os.environ)
    try:
        if args.slurm_rank:
            result = Plan(command, slurm_rank_env(env), "slurm-rank")
        else:
            result = plan(args.ngpu, command, env, args.backend, args.launcher)
    except ValueError as err:
        print(f"distributed: error: {err}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(" ".join(result.argv))
        return 0
    if result.mode != "slurm-rank":
        print(f"distributed: {result.mode}: {shlex.join(result.argv)}", file=sys.stderr, flush=True)
    env.update(result.env)
    try:
        os.execvpe(result.argv[0], result.argv, env)
    except OSError as err:
        print(f"distributed: error: cannot run {result.argv[0]}: {err}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
