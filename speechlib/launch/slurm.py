"""Run a Kaldi-style job array on Slurm (the engine behind utils/slurm.py).

Same call and same logs as utils/run.py, so a recipe moves to the cluster by changing one line
of cmd.sh:

    utils/slurm.py [--config conf/slurm.conf] [--gpu N] [--mem M] [--num-threads N] [--time T]
        [--max-jobs-run N] JOB=1:N exp/log/x.JOB.log command args...

One `sbatch --array=1-N%max` job is submitted. Its job script (written next to the logs, in
q/<name>.sh) writes each task's log in run.py's format and the task's exit status to
q/<name>.<task>.exit; Slurm's own output for a task goes to q/<name>.<task>.out. The launcher
waits for the status files (cheap) and asks squeue at most once a second whether the array has
ended (so a task Slurm killed without a status file, e.g. out of memory, time limit or
cancelled, is noticed and reported). Exit codes are not read from sacct: many clusters, and
every small test setup, run without the accounting daemon. Ctrl-C or SIGTERM cancels the
array (scancel) and waits until it has left the queue.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from speechlib.launch.jobs import JobSpec, LaunchError, parse_call, report
from speechlib.launch.slurm_conf import SlurmConfig, load_config

PROGRAM = "slurm.py"

#: Slurm job states after which a task will not run again.
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY",
                          "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED",
                          "SPECIAL_EXIT"})
#: Exit status reported for a task that Slurm ended without it writing its status file.
STATE_CODES = {"OUT_OF_MEMORY": 137, "CANCELLED": 143, "TIMEOUT": 143, "PREEMPTED": 143,
               "DEADLINE": 143}
UNREACHABLE = ("Unable to contact slurm controller", "Could not establish a configuration",
               "Connection refused", "Zero Bytes were transmitted", "Socket timed out")
POLL_SQUEUE_MIN_S = 1.0   # never ask squeue more often than this
POLL_SQUEUE_MAX_S = 10.0  # long jobs: back off to this
POLL_FILES_S = 0.2        # status files are local stat() calls: cheap


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived while waiting: cancel the array."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@dataclass
class ArrayFiles:
    """Where one array keeps its job script, status files and Slurm's own output."""

    qdir: Path
    name: str

    @classmethod
    def for_spec(cls, spec: JobSpec) -> "ArrayFiles":
        base = Path(spec.log_template).name
        if spec.variable:
            base = base.replace(spec.variable, "")
        base = re.sub(r"\.log$", "", base.replace("..", "."))
        base = re.sub(r"[^A-Za-z0-9_.+-]", "_", base).strip("._") or "job"
        return cls(spec.log_path(spec.first).parent / "q", base)

    @property
    def script(self) -> Path:
        return self.qdir / f"{self.name}.sh"

    def status(self, task: int) -> Path:
        return self.qdir / f"{self.name}.{task}.exit"

    def slurm_output(self, task: int | str) -> Path:
        return self.qdir / f"{self.name}.{task}.out"


def job_script(spec: JobSpec, files: ArrayFiles, threads: int) -> str:
    """A bash script that runs task $SLURM_ARRAY_TASK_ID and writes its log like run.py.

    Every argument is shell-quoted and the command is started with `exec` in a subshell, so
    it runs as an argv list (no word splitting, no `$(...)`, no builtins); the array variable
    is substituted with bash's literal `${x//JOB/$task}`, the same as str.replace.
    """
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        "# Written by utils/slurm.py; Slurm runs it once per array task.",
        f"cd {q(os.getcwd())} || exit 1",
        'task="${SLURM_ARRAY_TASK_ID:?not started as a Slurm array task}"',
        f"log={q(spec.log_template)}",
        f"header={q(shlex.join(spec.command))}",
        "argv=(" + " ".join(q(arg) for arg in spec.command) + ")",
    ]
    if spec.variable:
        var = spec.variable
        lines += [f'log="${{log//{var}/$task}}"',
                  f'header="${{header//{var}/$task}}"',
                  f'argv=("${{argv[@]//{var}/$task}}")']
    stamp = "$(date '+%a %b %d %H:%M:%S %Y')"  # as jobs.now(): no zone
    lines += [
        f"status={q(str(files.qdir / files.name))}.$task.exit",
        'mkdir -p -- "$(dirname -- "$log")"',
        "{",
        "  printf '# %s\\n' \"$header\"",
        f"  printf '# Started at %s on %s\\n#\\n' \"{stamp}\" \"$(hostname)\"",
        '} > "$log"',
        "# A trap (not an ignore) so the command still dies on scancel and the footer is written.",
        "trap ':' TERM INT",
        "start=$SECONDS",
        '( exec -- "${argv[@]}" ) < /dev/null >> "$log" 2>&1',
        "code=$?",
        "elapsed=$((SECONDS - start))",
        f"printf '# Accounting: time=%d threads=%d\\n' \"$elapsed\" {threads} >> \"$log\"",
        f"printf '# Ended (code %d) at %s, elapsed time %d seconds\\n' \"$code\" \"{stamp}\" "
        "\"$elapsed\" >> \"$log\"",
        'printf \'%d\\n\' "$code" > "$status.tmp" && mv -f -- "$status.tmp" "$status"',
        'exit "$code"',
    ]
    return "\n".join(lines) + "\n"


def slurm_problem(stderr: str) -> str | None:
    """One line when Slurm itself is unreachable (not the job's fault), else None."""
    if any(marker in stderr for marker in UNREACHABLE):
        first = next((line for line in stderr.splitlines() if line.strip()), stderr).strip()
        return (f"the Slurm controller cannot be reached ({first}); "
                f"check with: scontrol ping && sinfo")
    return None


def run_client(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a Slurm client command; a missing binary is one clear line, not a traceback."""
    if shutil.which(argv[0]) is None:
        raise LaunchError(f"{argv[0]} not found on PATH: is Slurm installed here? "
                          f"check with: command -v {argv[0]} && sinfo")
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LaunchError(f"{argv[0]} did not answer within {timeout:.0f} s: the Slurm "
                          f"controller may be down; check with: scontrol ping") from None


def submit(config: SlurmConfig, spec: JobSpec, files: ArrayFiles, extra: list[str]) -> str:
    """sbatch the array; return its job id. A rejected job is an error with sbatch's message."""
    array = f"{spec.first}-{spec.last}"
    limit = spec.int_option("max_jobs_run", 0)
    if limit:
        array += f"%{limit}"
    argv = config.command + ["--parsable", f"--job-name={files.name}", f"--array={array}",
                             f"--output={files.slurm_output('%a')}", *extra, str(files.script)]
    done = run_client(argv)
    if done.returncode != 0:
        problem = slurm_problem(done.stderr)
        if problem:
            raise LaunchError(problem)
        message = done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}"
        message = "\n  ".join(message.splitlines())
        raise LaunchError(f"sbatch rejected the job (nothing was queued):\n  {message}\n"
                          f"  command: {shlex.join(argv)}")
    match = re.search(r"(\d+)(?:;\S*)?\s*$", done.stdout.strip()) or \
        re.search(r"Submitted batch job (\d+)", done.stdout)
    if not match:
        raise LaunchError(f"cannot read a job id from sbatch's answer: {done.stdout.strip()!r}")
    return match.group(1)


@dataclass
class Waiter:
    """Follows one submitted array until every task has ended."""

    job_id: str
    spec: JobSpec
    files: ArrayFiles
    states: dict[int, str] = field(default_factory=dict)
    squeue_calls: int = 0
    last_squeue: float = float("-inf")

    def status_codes(self) -> dict[int, int]:
        codes = {}
        for task in self.spec.task_ids:
            try:
                codes[task] = int(self.files.status(task).read_text().strip())
            except (OSError, ValueError):
                pass
        return codes

    def poll_squeue(self) -> bool | None:
        """Task states from squeue; True when the array has ended, None when squeue failed."""
        self.squeue_calls += 1
        self.last_squeue = time.monotonic()
        done = run_client(["squeue", "--noheader", "--array", "--states=all",
                           f"--jobs={self.job_id}", "--format=%K %T"])
        if done.returncode != 0:
            if "Invalid job id" in done.stderr:
                return True  # already purged from the controller's memory
            return None
        active = False
        for line in done.stdout.split("\n"):
            parts = line.split()
            if len(parts) != 2:
                continue
            ids, state = parts
            if state not in FINAL_STATES:
                active = True
            if ids.isdigit():
                self.states[int(ids)] = state
        return not active

    def wait(self) -> dict[int, int]:
        started = time.monotonic()
        failures = 0
        total = len(self.spec.task_ids)
        while True:
            if len(self.status_codes()) == total:
                break
            waited = time.monotonic() - started
            interval = POLL_SQUEUE_MIN_S if waited < 60 else \
                min(POLL_SQUEUE_MAX_S, POLL_SQUEUE_MIN_S * waited / 60)
            if time.monotonic() - self.last_squeue >= interval:
                ended = self.poll_squeue()
                if ended is None:
                    failures += 1
                    if failures == 5:
                        print(f"{PROGRAM}: squeue keeps failing; still waiting for job "
                              f"{self.job_id} (check with: scontrol ping)", file=sys.stderr)
                elif ended:
                    self.settle()
                    break
                else:
                    failures = 0
            time.sleep(POLL_FILES_S)
        return self.final_codes()

    def settle(self, grace_s: float = 5.0) -> None:
        """The array has ended: give status files written on another node time to appear."""
        deadline = time.monotonic() + grace_s
        missing = [task for task in self.spec.task_ids
                   if self.states.get(task) in (None, "COMPLETED", "FAILED")]
        while time.monotonic() < deadline:
            if all(self.files.status(task).exists() for task in missing):
                return
            time.sleep(POLL_FILES_S)

    def final_codes(self) -> dict[int, int]:
        codes = self.status_codes()
        for task in self.spec.task_ids:
            state = self.states.get(task)
            if state not in FINAL_STATES:
                state = None  # seen earlier, not final: says nothing about how the task ended
            if task not in codes:
                codes[task] = STATE_CODES.get(state or "", 1)
                self.note(task, f"no exit status was written; Slurm's final state: "
                                f"{state or 'unknown (left the queue)'}")
            if state == "OUT_OF_MEMORY":
                codes[task] = 137
            if state and state not in ("COMPLETED", "FAILED"):
                self.note(task, f"Slurm ended this task as {state}")
        return codes

    def note(self, task: int, message: str) -> None:
        """Append what Slurm knows to the task's log, so report()'s tail shows it."""
        log = self.spec.log_path(task)
        extra = ""
        output = self.files.slurm_output(task)
        if output.is_file() and output.stat().st_size:
            extra = "".join(f"# slurm: {line}\n" for line in
                            output.read_text(errors="replace").splitlines()[-5:])
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"# {PROGRAM}: {message}\n{extra}")
        except OSError:
            pass


def cancel(job_id: str, timeout_s: float = 60) -> bool:
    """scancel the array and wait (one squeue a second) until it has left the queue."""
    run_client(["scancel", job_id])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = run_client(["squeue", "--noheader", f"--jobs={job_id}", "--format=%i"])
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            pass
        elif not done.stdout.strip():
            return True
        time.sleep(POLL_SQUEUE_MIN_S)
    return False


def prepare(spec: JobSpec, files: ArrayFiles, threads: int) -> None:
    """Write the job script; remove the logs and status files of an earlier run of this array,
    so a task that never starts cannot be mistaken for one that finished."""
    files.qdir.mkdir(parents=True, exist_ok=True)
    for task in spec.task_ids:
        for stale in (files.status(task), spec.log_path(task), files.slurm_output(task)):
            stale.unlink(missing_ok=True)
    files.script.write_text(job_script(spec, files, threads), encoding="utf-8")
    files.script.chmod(0o755)


def run_array(spec: JobSpec) -> dict[int, int]:
    config = load_config(spec.options.get("config"))
    extra = config.sbatch_args(spec.options)
    threads = spec.int_option("num_threads", 1) or 1
    files = ArrayFiles.for_spec(spec)
    prepare(spec, files, threads)

    def interrupt(signum: int, _frame) -> None:
        raise Interrupted(signum)

    # Signals are held back while sbatch runs: a job id is never lost between submit and wait.
    held = {signal.SIGINT, signal.SIGTERM}
    previous = {sig: signal.signal(sig, interrupt) for sig in held}
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            job_id = submit(config, spec, files, extra)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
        count = len(spec.task_ids)
        print(f"{PROGRAM}: submitted job {job_id} ({count} task{'s' * (count != 1)}), "
              f"logs in {spec.log_glob()}", file=sys.stderr)
        try:
            return Waiter(job_id, spec, files).wait()
        except Interrupted as stop:
            for sig in held:
                signal.signal(sig, signal.SIG_IGN)
            gone = cancel(job_id)
            print(f"{PROGRAM}: stopped by signal {stop.signum}; cancelled job {job_id}"
                  + ("" if gone else " (still in squeue after 60 s; check with: squeue)"),
                  file=sys.stderr)
            raise SystemExit(130) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 1
    try:
        spec = parse_call(argv, PROGRAM)
        codes = run_array(spec)
    except LaunchError as err:
        print(f"{PROGRAM}: error: {err}", file=sys.stderr)
        return 1
    return report(PROGRAM, spec, codes)
