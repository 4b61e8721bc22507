"""Run a Kaldi-style job array as local processes (the engine behind utils/run.py).

Queue options (--mem, --time, --num-threads, --config, ...) are accepted and ignored here so
that the same `$cmd` line works with every backend; `--gpu N` is honoured: concurrency is capped
at (visible GPUs // N) and each job gets its own CUDA_VISIBLE_DEVICES. Concurrency is also capped
by the open-file limit (`ulimit -n`: each running job holds a few descriptors), and a log
directory that cannot be written stops the call before any job starts. A job that could not be
started is reported as such and makes the exit status non-zero. Arrays print `done/total` at
least every 30 s.
"""
from __future__ import annotations

import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

from speechlib.io.progress import Progress
from speechlib.launch.jobs import JobSpec, LaunchError, log_footer, log_header, parse_call, report

PROGRAM = "run.py"
FDS_PER_JOB = 4  # the log file, /dev/null, and the pipe Popen uses to report a failed exec
FDS_RESERVED = 16  # for this process itself (Python, its own streams)


def fd_slots() -> int:
    """How many jobs may run at once under the soft open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        used = 3
    return (soft - used - FDS_RESERVED) // FDS_PER_JOB


def check_log_dir(spec: JobSpec) -> None:
    """Create the (first) log's directory and prove it writable, before any job starts."""
    folder = spec.log_path(spec.first).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{PROGRAM}.{os.getpid()}.probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise LaunchError(f"cannot write the logs in {folder}: {err.strerror or err}; no job was started") from None


def visible_gpus() -> list[str]:
    """GPU ids this process may use, without importing torch (the launcher must start fast)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [item.strip() for item in env.split(",") if item.strip()]
        return [] if ids[:1] == ["-1"] else ids
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(index) for index, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


class LocalArray:
    """Runs the tasks of one array with bounded concurrency and stops them all on a signal."""

    def __init__(self, spec: JobSpec):
        self.spec = spec
        self.codes: dict[int, int] = {}
        self.running: dict[int, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = False
        gpus_per_job = spec.int_option("gpu", 0)
        slots = spec.int_option("max_jobs_run", 0) or len(spec.task_ids)
        self.gpu_pool: queue.Queue[list[str]] | None = None
        if gpus_per_job > 0:
            gpus = visible_gpus()
            if len(gpus) < gpus_per_job:
                raise LaunchError(f"--gpu {gpus_per_job} asks for more GPUs than are visible "
                                  f"({len(gpus)}; check nvidia-smi and CUDA_VISIBLE_DEVICES)")
            self.gpu_pool = queue.Queue()
            for start in range(0, len(gpus) - gpus_per_job + 1, gpus_per_job):
                self.gpu_pool.put(gpus[start:start + gpus_per_job])
            slots = min(slots, self.gpu_pool.qsize())
        budget = fd_slots()
        if budget < 1:
            raise LaunchError(f"too few file descriptors to start a job (ulimit -n is "
                              f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]}); raise it with ulimit -n")
        self.slots = max(1, min(slots, budget))
        self.tasks: queue.Queue[int] = queue.Queue()
        for task in spec.task_ids:
            self.tasks.put(task)

    def run_task(self, task: int) -> int:
        argv = self.spec.argv(task)
        log_path = self.spec.log_path(task)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        gpus = self.gpu_pool.get() if self.gpu_pool is not None else None
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        started = time.monotonic()
        try:
            with open(log_path, "w", encoding="utf-8") as log:
                log.write(log_header(argv))
                log.flush()
                try:
                    with self.lock:
                        if self.stopping:
                            return 130
                        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, env=env,
                                                start_new_session=True)
                        self.running[task] = proc
                    code = proc.wait()
                except FileNotFoundError:
                    log.write(f"{PROGRAM}: command not found: {argv[0]}\n")
                    code = 127
                except PermissionError:
                    log.write(f"{PROGRAM}: command not executable: {argv[0]}\n")
                    code = 126
                finally:
                    with self.lock:
                        self.running.pop(task, None)
                if code < 0:
                    code = 128 - code
                log.write(log_footer(time.monotonic() - started, code))
        finally:
            if gpus is not None:
                self.gpu_pool.put(gpus)
        return code

    def worker(self) -> None:
        while not self.stopping:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                return
            try:
                self.codes[task] = self.run_task(task)
            except OSError as err:  # no log, no process: the job never started
                self.spec.not_run[task] = f"{self.spec.log_path(task)}: {err.strerror or err}"

    def stop(self, signum: int, _frame) -> None:
        with self.lock:
            self.stopping = True
            for proc in self.running.values():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        print(f"{PROGRAM}: stopped by signal {signum}; running jobs terminated", file=sys.stderr)

    def run(self) -> dict[int, int]:
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.slots)]
            for thread in threads:
                thread.start()
            total = len(self.spec.task_ids)
            progress = Progress(total, PROGRAM, unit="job", enabled=total > 1)
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    finished = len(self.codes) + len(self.spec.not_run)
                    if finished > progress.done:
                        progress.update(finished - progress.done)
                    else:
                        progress.tick()
            progress.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.stopping:
            raise SystemExit(130)
        return self.codes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print(f"\nusage: {PROGRAM} [--max-jobs-run N] [--gpu N] [--mem M] [--num-threads N] "
              f"[--time T] [JOB=1:N] <log> <command> [args...]")
        return 0 if argv else 1
    try:
        spec = parse_call(argv, PROGRAM)
        check_log_dir(spec)
        codes = LocalArray(spec).run()
    except LaunchError as err:
        print(f"{PROGRAM}: error: {err}", file=sys.stderr)
        return 1
    return report(PROGRAM, spec, codes)
