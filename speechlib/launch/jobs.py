"""What every Kaldi-style launcher (utils/run.py, utils/slurm.py) shares.

The interface is Kaldi's `run.pl`:

    launcher [--max-jobs-run N] [--gpu N] [--mem M] [--num-threads N] [--time T] \
        JOB=1:N exp/log/x.JOB.log command args...

The array variable (JOB here) is substituted in the log path and in every argument. Arguments
are passed as an argv list, never through a shell, so ids with spaces, quotes, `$(...)` or `;`
reach the program literally.
"""
from __future__ import annotations

import datetime
import os
import re
import shlex
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

ARRAY_SPEC = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$")
# Anything of the shape NAME=... where a range or the log path belongs: a range, or a typo of one.
LOOKS_LIKE_RANGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
NOT_RUN = -1000  # the code of a task that never started (its reason is in JobSpec.not_run)


class LaunchError(Exception):
    """A malformed launcher call: printed as one line, exit status 1."""


@dataclass
class JobSpec:
    """A parsed launcher call."""

    log_template: str
    command: list[str]
    variable: str | None = None
    first: int = 1
    last: int = 1
    options: dict[str, str] = field(default_factory=dict)
    not_run: dict[int, str] = field(default_factory=dict)  # task -> why it never started

    @property
    def is_array(self) -> bool:
        return self.variable is not None

    @property
    def task_ids(self) -> range:
        return range(self.first, self.last + 1)

    def substitute(self, text: str, task: int) -> str:
        if self.variable is None:
            return text
        return text.replace(self.variable, str(task))

    def log_path(self, task: int) -> Path:
        return Path(self.substitute(self.log_template, task))

    def argv(self, task: int) -> list[str]:
        return [self.substitute(arg, task) for arg in self.command]

    def log_glob(self) -> str:
        return self.log_template.replace(self.variable, "*") if self.variable else self.log_template

    def int_option(self, name: str, default: int) -> int:
        value = self.options.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise LaunchError(f"--{name.replace('_', '-')} takes a whole number, got '{value}'") from None
        if number < 0:
            raise LaunchError(f"--{name.replace('_', '-')} must not be negative, got {number}")
        return number


def parse_call(argv: list[str], program: str) -> JobSpec:
    """Parse `[options] [VAR=a:b] log command...` the way run.pl and slurm.pl do."""
    options: dict[str, str] = {}
    args = list(argv)
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if "=" in option:
            name, value = option[2:].split("=", 1)
        else:
            name = option[2:]
            if not args or args[0].startswith("--") or ARRAY_SPEC.match(args[0]):
                got = f" (got '{args[0]}')" if args else ""
                raise LaunchError(f"option {option} needs a value{got}")
            value = args.pop(0)
        options[name.replace("-", "_")] = value
    variable, first, last = None, 1, 1
    if args and ARRAY_SPEC.match(args[0]):
        match = ARRAY_SPEC.match(args.pop(0))
        variable = match.group(1)
        first = int(match.group(2))
        last = int(match.group(3) or match.group(2))
        if last < first:
            raise LaunchError(f"empty job range {variable}={first}:{last}")
    elif args and LOOKS_LIKE_RANGE.match(args[0]):
        raise LaunchError(f"bad job range '{args[0]}': expected NAME=FIRST:LAST with whole numbers "
                          f"(e.g. JOB=1:4)")
    if len(args) < 2:
        raise LaunchError(f"usage: {program} [options] [JOB=1:N] <log> <command> [args...]")
    log_template, command = args[0], args[1:]
    if variable is not None and last > first and variable not in log_template:
        raise LaunchError(f"log path '{log_template}' lacks {variable}: the {last - first + 1} "
                          f"jobs would overwrite one log")
    return JobSpec(log_template, command, variable, first, last, options)


def now() -> str:
    return datetime.datetime.now().strftime("%a %b %d %H:%M:%S %Z %Y").replace("  ", " ")


def log_header(argv: list[str]) -> str:
    return (f"# {shlex.join(argv)}\n"
            f"# Started at {now()} on {socket.gethostname()}\n#\n")


def log_footer(elapsed: float, code: int, threads: int = 1) -> str:
    return (f"# Accounting: time={int(round(elapsed))} threads={threads}\n"
            f"# Ended (code {code}) at {now()}, elapsed time {int(round(elapsed))} seconds\n")


def describe_exit(code: int) -> str:
    """Exit codes of a killed job in words: 137 is the kernel's (or Slurm's) OOM kill."""
    if code == NOT_RUN:
        return "never started"
    if code == 137 or code == -9:
        return "killed (SIGKILL, exit 137): most likely out of memory"
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode(errors="replace")
    except OSError as err:
        return f"(cannot read {path}: {err})"
    return "\n".join(text.splitlines()[-lines:])


def report(program: str, spec: JobSpec, codes: dict[int, int]) -> int:
    """Print the Kaldi failure summary and the tail of the first failed log; return exit status.

    A task with no code never ran: it counts as failed, so the status is 0 only when every
    requested job ran and succeeded; the last line counts the jobs not done.
    """
    codes = {task: codes.get(task, NOT_RUN) for task in spec.task_ids}
    failed = sorted(task for task, code in codes.items() if code != 0)
    if not failed:
        return 0
    first = failed[0]
    why = describe_exit(codes[first])
    never = [task for task in failed if codes[task] == NOT_RUN]
    if spec.is_array and len(codes) > 1:
        print(f"{program}: {len(failed)} / {len(codes)} failed, log is in {spec.log_glob()}",
              file=sys.stderr)
    else:
        print(f"{program}: job failed, log is in {spec.log_path(first)}", file=sys.stderr)
    if codes[first] == NOT_RUN:
        print(f"{program}: first failure: job {first} never started: {spec.not_run.get(first, 'not run')}",
              file=sys.stderr)
        print(f"{program}: {len(failed)} of {len(codes)} job(s) not done ({len(never)} never started)",
              file=sys.stderr)
        return 1
    print(f"{program}: first failure: {spec.log_path(first)} ({why}); its last lines:", file=sys.stderr)
    for line in tail(spec.log_path(first)).splitlines():
        print(f"  | {line}", file=sys.stderr)
    print(f"{program}: {len(failed)} of {len(codes)} job(s) not done"
          + (f" ({len(never)} never started)" if never else ""), file=sys.stderr)
    return 1
