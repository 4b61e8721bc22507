"""conf/slurm.conf: how launcher options become sbatch options.

Site-specific queue settings live in the recipe's conf/slurm.conf, not in code, in the syntax
Kaldi and ESPnet users already know:

    command sbatch --export=ALL            # the submit command and its fixed options
    option mem=* --mem $0                  # any value: $0 is replaced by the value
    option mem=0                           # this exact value: no sbatch option at all
    option gpu=* --partition=gpu --gres=gpu:$0
    default gpu=0                          # used when the call does not give --gpu

An option the config does not describe is an error (a silently dropped `--mem 40G` is a job
killed hours later). Names may be written with '-' or '_' (`num-threads` = `num_threads`).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from speechlib.launch.jobs import LaunchError

#: Options the launcher handles itself; they never go through the config.
LAUNCHER_OPTIONS = frozenset({"config", "max_jobs_run"})

#: Shipped fallback, used when the recipe has no conf/slurm.conf.
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "utils" / "conf" / "slurm.conf"


def normalise(name: str) -> str:
    return name.strip().lstrip("-").replace("-", "_")


@dataclass
class SlurmConfig:
    """A parsed slurm.conf."""

    path: str
    command: list[str] = field(default_factory=lambda: ["sbatch"])
    # name -> {value or "*": sbatch arguments (with $0 for "*")}
    rules: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    def sbatch_args(self, options: dict[str, str]) -> list[str]:
        """The sbatch arguments for the call's options (defaults filled in), in config order."""
        values = dict(self.defaults)
        values.update({normalise(name): value for name, value in options.items()
                       if normalise(name) not in LAUNCHER_OPTIONS})
        args: list[str] = []
        for name, value in values.items():
            rules = self.rules.get(name)
            flag = "--" + name.replace("_", "-")
            if rules is None:
                raise LaunchError(f"{flag} is not described in {self.path}; add a line such as "
                                  f"'option {name}=* <sbatch options with $0>'")
            if value in rules:
                args += rules[value]
            elif "*" in rules:
                args += [arg.replace("$0", value) for arg in rules["*"]]
            else:
                allowed = ", ".join(sorted(rules))
                raise LaunchError(f"{flag} {value} is not allowed by {self.path} "
                                  f"(it describes only: {allowed})")
        return args


def parse_config(text: str, path: str = "<slurm.conf>") -> SlurmConfig:
    config = SlurmConfig(path=path)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise LaunchError(f"{path}:{number}: {err}") from None
        keyword, rest = words[0], words[1:]
        if keyword == "command":
            if not rest:
                raise LaunchError(f"{path}:{number}: 'command' needs the submit program")
            config.command = rest
        elif keyword in ("option", "default"):
            if not rest or "=" not in rest[0]:
                raise LaunchError(f"{path}:{number}: expected '{keyword} name=value ...'")
            name, value = rest[0].split("=", 1)
            name = normalise(name)
            if keyword == "default":
                if len(rest) > 1:
                    raise LaunchError(f"{path}:{number}: 'default' takes only name=value")
                config.defaults[name] = value
            else:
                config.rules.setdefault(name, {})[value] = rest[1:]
        else:
            raise LaunchError(f"{path}:{number}: unknown keyword '{keyword}' "
                              f"(expected command, option or default)")
    for name, value in config.defaults.items():
        if name not in config.rules:
            raise LaunchError(f"{path}: default {name}={value} has no 'option {name}=...' line")
    return config


def find_config(explicit: str | None) -> Path:
    """--config if given, else ./conf/slurm.conf (the recipe's), else the shipped default."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise LaunchError(f"--config {explicit}: no such file")
        return path
    local = Path("conf/slurm.conf")
    return local if local.is_file() else DEFAULT_CONFIG


def load_config(explicit: str | None = None) -> SlurmConfig:
    path = find_config(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise LaunchError(f"cannot read {path}: {err}") from None
    return parse_config(text, str(path))
