"""A throw-away single-node Slurm (munged + slurmctld + slurmd) on this host, for tests and
benchmarks.

Everything it needs lives in one fresh directory: its own munge key and socket, its own
slurm.conf (unique ClusterName, fresh StateSaveLocation, free ports), its own spool and logs.
It never touches /etc/slurm or a system munged, so it can run beside a real installation and
beside another copy of itself. The daemons run in the foreground as our children and are
stopped by their pids. Root is needed (slurmd starts jobs as their submitting user).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")


def missing_programs() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def node_memory_mb() -> int:
    """What slurmd will find, minus headroom (a node configured above it is drained)."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(int(line.split()[1]) / 1024 * 0.9)
    return 1024


class LocalSlurm:
    """Start with start(), use env (SLURM_CONF) for client commands, stop with stop()."""

    def __init__(self) -> None:
        # Not under pytest's tmp dir: munged insists every directory above its socket is
        # searchable by all users, and /tmp/pytest-of-root is 0700.
        self.root = Path(tempfile.mkdtemp(prefix="speechlib-slurm-"))
        self.root.chmod(0o711)
        self.name = "t" + uuid.uuid4().hex[:8]
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.memory_mb = node_memory_mb()
        self.conf = self.root / "slurm.conf"
        self.socket = self.root / "run" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self.extra: list[str] = []

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        for name in list(env):  # never inherit the state of an enclosing Slurm job
            if name.startswith(("SLURM_JOB", "SLURM_ARRAY", "SLURM_STEP", "SBATCH_")):
                del env[name]
        return env

    def config_text(self, ctld_port: int, slurmd_port: int) -> str:
        r = self.root
        return "\n".join([
            f"ClusterName={self.name}",
            f"SlurmctldHost={self.host}",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=100",
            "ReturnToService=2",
            "KillWait=5",
            # Stock Slurm waits 3 s (batch_sched_delay) before starting a batch job freed up
            # by a finished one; with 0 the next array task starts within ~1 s.
            "SchedulerParameters=batch_sched_delay=0",
            *self.extra,
            f"NodeName={self.host} CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN",
            "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    def start(self, timeout_s: float = 60) -> "LocalSlurm":
        for sub in ("run", "log", "state", "spool", "munge"):
            (self.root / sub).mkdir(mode=0o755)
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True,
                       capture_output=True)
        self.conf.write_text(self.config_text(free_port(), free_port()))
        log = self.root / "log"
        self._spawn("munged", ["munged", "--foreground", f"--socket={self.socket}",
                               f"--key-file={key}", f"--pid-file={self.root / 'run' / 'munged.pid'}",
                               f"--log-file={log / 'munged.log'}",
                               f"--seed-file={self.root / 'munge' / 'seed'}"])
        self._wait_for(lambda: self.socket.exists(), timeout_s, "munged")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.host])
        self._wait_for(self.node_idle, timeout_s, "slurmd to register (sinfo shows idle)")
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env)
        out.close()

    def node_idle(self) -> bool:
        done = subprocess.run(["sinfo", "--noheader", "--Node", "--format=%T"], env=self.env,
                              capture_output=True, text=True, timeout=30)
        return done.returncode == 0 and done.stdout.split() == ["idle"]

    def _wait_for(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for "
                                       f"{what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}:\n{self.logs()}")

    def logs(self, lines: int = 15) -> str:
        out = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"== {path}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop the daemons by pid (slurmd first, munged last), then remove the directory."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalSlurm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
