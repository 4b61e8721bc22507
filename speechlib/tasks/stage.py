"""What every stage entry point shares: options, config, seed, logging, exp dir bookkeeping.

A stage is called as SpeechBrain scripts are:

    python -m speechlib.tasks.<recipe>.<stage> conf/x.yaml --output_folder exp/x --seed 3 [--key value ...]

The convention (README, "Recipe kit"):
- Every `--key value` after the config overrides a key the config declares; an undeclared key is
  an error (a typo must not pass silently). SpeechBrain's run options (`--device`, ...) pass through.
- Options that are not config keys (which system to train, which job of an array) are declared
  by the stage as `Option`s; job arrays spell theirs `--job J --nj N` (`jobs=True`).
- `--help` prints the stage's docstring, its options and the config it reads, and exits 0.
- `start_stage` parses all this once, sets up timestamped logging, seeds Python/NumPy/torch,
  saves the resolved config and package versions under `<output_folder>/conf/`, and tells
  whether the stage already finished with identical options (`Stage.is_done`).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError
from speechlib.results.environment import describe_environment

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATEFMT = "%Y-%m-%d %H:%M:%S"
logger = logging.getLogger("stage")


def setup_logging(level: int = logging.INFO) -> None:
    """Timestamped log lines on stderr (the launcher puts them in exp/<tag>/log/<stage>.log).

    SpeechBrain's own INFO chatter (parameter counts, run options taken from hparams) is kept
    at WARNING so the log shows what the recipe says.
    """
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(handler, "speechlib_stage", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))
        handler.speechlib_stage = True  # type: ignore[attr-defined]  # added once per process
        root.addHandler(handler)
    os.environ["SB_LOG_LEVEL"] = "WARNING"  # loggers SpeechBrain creates later read this
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("speechbrain"):
            logging.getLogger(name).setLevel(logging.WARNING)


def set_seed(seed: int, deterministic: bool = True, threads: int | None = None) -> None:
    """One seed for Python, NumPy and torch; deterministic kernels where the backend allows.

    `threads` fixes torch's intra-op thread count: a float sum split over a different number
    of threads rounds differently, so the same seed gives other numbers on a machine with
    other cores unless the count is pinned (README, "Same command, same table").
    """
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["SB_GLOBAL_SEED"] = str(seed)  # SpeechBrain's shuffling sampler reads this
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    if deterministic:
        # The eager kernels read only this C++ flag. torch.use_deterministic_algorithms also sets
        # inductor's flag, and importing torch._inductor (with dynamo) costs ~1.8 CPU-s in every
        # stage process, though no stage compiles; it is set too where inductor is loaded already.
        torch._C._set_deterministic_algorithms(True, warn_only=True)
        inductor = sys.modules.get("torch._inductor.config")
        if inductor is not None:
            inductor.deterministic = True
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS


@dataclass(frozen=True)
class Option:
    """A stage option that is not a config key, e.g. `--system dann` or `--role white`."""

    name: str
    help: str
    choices: tuple[str, ...] | None = None
    default: str | None = None  # None: required
    flag: bool = False          # takes no value; its value is True when given

    def usage(self) -> str:
        value = "" if self.flag else " " + ("{" + ",".join(self.choices) + "}" if self.choices else "VALUE")
        default = "" if self.flag else (" (required)" if self.default is None else f" [{self.default}]")
        return f"  --{self.name}{value}\n      {self.help}{default}"


JOB_OPTIONS = (Option("job", "this process's part of the array, 1..nj", default="1"),
               Option("nj", "number of parts the work is split into", default="1"))


@dataclass
class Stage:
    """A started stage: its hparams, options, exp dir, SpeechBrain run options and fingerprint."""

    name: str
    hparams: dict
    run_opts: Any
    exp_dir: Path
    fingerprint: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def job(self) -> int:
        return int(self.options.get("job", 1))

    @property
    def nj(self) -> int:
        return int(self.options.get("nj", 1))

    @property
    def marker(self) -> Path:
        return self.exp_dir / ".done" / self.name

    def is_done(self, outputs: tuple[str | Path, ...] = ()) -> bool:
        """True when this stage finished before with the same resolved config and its
        `outputs` are still there (a deleted data dir is rebuilt, whatever the marker says)."""
        if not all(Path(output).exists() for output in outputs):
            return False
        return self.marker.is_file() and self.marker.read_text().strip() == self.fingerprint

    def mark_done(self) -> None:
        atomic_write_text(self.marker, self.fingerprint + "\n")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _module_name() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name}" if spec is not None else os.path.basename(sys.argv[0])


def stage_usage(options: Sequence[Option], doc: str | None = None) -> str:
    """The `--help` text: how to call the stage, its docstring, its own options."""
    lines = [f"usage: {_module_name()} CONFIG.yaml [--output_folder DIR] [--seed N] "
             f"[--<config key> VALUE ...] [options]", ""]
    if doc:
        lines += [doc.strip(), ""]
    if options:
        lines += ["stage options:"] + [option.usage() for option in options] + [""]
    lines += ["config keys: every key the config declares can be overridden, e.g. --batch_size 4;",
              "  an undeclared key is an error. The resolved config is saved in <output_folder>/conf/.",
              "run options (SpeechBrain): --device cpu|cuda:0, --ckpt_interval_steps N, --noprogressbar, ...",
              "  -h, --help  show this message and exit"]
    return "\n".join(lines)


def pop_options(argv: list[str], options: Sequence[Option]) -> tuple[dict[str, Any], list[str]]:
    """Take the declared stage options out of argv (`--name v` or `--name=v`); check them."""
    by_name = {f"--{option.name}": option for option in options}
    values: dict[str, Any] = {}
    rest: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        name, _, inline = arg.partition("=")
        option = by_name.get(name)
        if option is None:
            rest.append(arg)
        elif option.flag:
            values[option.name] = True
        elif inline or "=" in arg:
            values[option.name] = inline
        elif index + 1 < len(argv):
            index += 1
            values[option.name] = argv[index]
        else:
            raise InputError(f"option {name} needs a value")
        index += 1
    for option in options:
        if option.name not in values:
            if option.flag:
                values[option.name] = False
            elif option.default is None:
                raise InputError(f"--{option.name} is required"
                                 + (f" (one of {', '.join(option.choices)})" if option.choices else ""))
            else:
                values[option.name] = option.default
        if option.choices and values[option.name] not in option.choices:
            raise InputError(f"--{option.name} '{values[option.name]}' is not one of {', '.join(option.choices)}")
    return values, rest


def check_jobs(values: dict[str, Any]) -> None:
    try:
        job, nj = int(values["job"]), int(values["nj"])
    except ValueError:
        raise InputError(f"--job and --nj take integers, got '{values['job']}' and '{values['nj']}'") from None
    if not 1 <= job <= nj:
        raise InputError(f"--job {job} is outside 1..{nj} (--nj {nj})")
    values["job"], values["nj"] = job, nj


def _top_level_keys(text: str) -> set[str]:
    return set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", text, flags=re.MULTILINE))


def check_override_keys(config_text: str, overrides: str, hparams_file: str, strict: bool) -> None:
    """An override must name a key the config declares: `--bacth_size 4` is a typo, not a key."""
    unknown = sorted(_top_level_keys(overrides) - _top_level_keys(config_text))
    if not unknown:
        return
    message = (f"unknown config key(s) {', '.join('--' + key for key in unknown)}: "
               f"not declared in the config (a typo? a stage option this stage does not declare?)")
    if strict:
        raise InputError(message, hparams_file)
    logger.warning("%s: %s (this will become an error: declare the key, or the stage option)",
                   hparams_file, message)


def start_stage(name: str, argv: list[str] | None = None, corpus_key: str = "corpus", *,
                options: Sequence[Option] | None = None, jobs: bool = False,
                doc: str | None = None) -> Stage:
    """Parse `config.yaml [--key value ...] [stage options]`, resolve, seed, and record the run.

    `name` may use the options and the config's seed, e.g. "train_{system}_seed{seed}" or
    "score.{job}of{nj}": it names the saved config (`conf/<name>.yaml`) and the done marker. `options` declares the stage's own options;
    a stage that declares them (`options=()` when it has none) gets unknown config keys refused,
    a stage that does not (the older stages) gets a warning. `doc` (default: the running
    module's docstring) heads the `--help` text.
    """
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml, resolve_references

    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    declared = tuple(options or ()) + (JOB_OPTIONS if jobs else ())
    if "--help" in argv or "-h" in argv:
        print(stage_usage(declared, doc if doc is not None else getattr(sys.modules.get("__main__"), "__doc__", "")))
        raise SystemExit(0)
    values, argv = pop_options(argv, declared)
    if jobs:
        check_jobs(values)
    if not argv or argv[0].startswith("-"):
        raise InputError("the first argument must be the config file (see --help)")
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # Under torchrun every process joins the group before anything else (no-op otherwise).
    sb.utils.distributed.ddp_init_group(run_opts)
    try:
        with open(hparams_file, encoding="utf-8") as handle:
            config_text = handle.read()
        check_override_keys(config_text, overrides, hparams_file, strict=options is not None)
        resolved = resolve_references(io.StringIO(config_text), overrides).getvalue()
    except FileNotFoundError:
        raise InputError("config file does not exist", hparams_file) from None
    except (ValueError, KeyError) as err:
        raise InputError(f"bad config or override: {err}", hparams_file) from None
    # Seed before the config builds anything, so every process starts from the same weights.
    seed_line = re.search(r"^seed:\s*(-?\d+)\s*(#.*)?$", resolved, flags=re.MULTILINE)
    threads_line = re.search(r"^num_threads:\s*(\d+)\s*(#.*)?$", resolved, flags=re.MULTILINE)
    set_seed(int(seed_line.group(1)) if seed_line else 0,
             threads=int(threads_line.group(1)) if threads_line else None)
    try:
        hparams = load_hyperpyyaml(io.StringIO(resolved))
    except (TypeError, ValueError, KeyError, AttributeError, ImportError) as err:
        detail = err.args[-1] if err.args else err
        raise InputError(f"cannot build the objects the config names: {detail}", hparams_file) from None
    if "output_folder" not in hparams:
        raise InputError("config has no 'output_folder' (the exp dir)", hparams_file)
    exp_dir = Path(hparams["output_folder"])
    name = name.format(**({"seed": hparams["seed"]} if "seed" in hparams else {}), **values)
    shown = " ".join(f"--{key} {value}" for key, value in values.items())
    fingerprint = hashlib.sha256((resolved + shown).encode()).hexdigest()[:16]
    if _is_main_process():
        exp_dir.mkdir(parents=True, exist_ok=True)
        header = f"# resolved from {os.path.abspath(hparams_file)}" + (f"; stage options: {shown}" if shown else "")
        atomic_write_text(exp_dir / "conf" / f"{name}.yaml", header + "\n" + resolved)
        env = describe_environment(str(hparams.get(corpus_key, "unknown")))
        atomic_write_text(exp_dir / "conf" / f"{name}.versions.json", json.dumps(env, indent=1) + "\n")
    logger.info("%s: config %s%s, exp dir %s", name, hparams_file, f" ({shown})" if shown else "", exp_dir)
    return Stage(name, hparams, run_opts, exp_dir, fingerprint, values)


def announce_resume(checkpointer) -> None:
    """Say whether training starts fresh or resumes, and from which checkpoint.

    Brain.fit() recovers the newest checkpoint by itself (SpeechBrain's default); this line
    tells the user, in the stage log, that a re-run after a kill picked up where it stopped.
    """
    from speechbrain.core import INTRA_EPOCH_CKPT_FLAG

    latest = checkpointer.find_checkpoint()
    if latest is None:
        logger.info("training from scratch (no checkpoint in %s)", checkpointer.checkpoints_dir)
        return
    where = "mid-epoch" if latest.meta.get(INTRA_EPOCH_CKPT_FLAG) else "end of epoch"
    logger.info("resuming: loading checkpoint %s (%s)", latest.path, where)
