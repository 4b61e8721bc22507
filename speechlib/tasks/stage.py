"""What every stage entry point shares: config, seed, exp dir bookkeeping, idempotence.

A stage is called as SpeechBrain scripts are:

    python -m speechlib.tasks.<recipe>.<stage> conf/x.yaml --output_folder exp/x --seed 3

(hyperpyyaml config, any key overridable on the command line). `start_stage` resolves the
config, seeds Python/NumPy/torch, saves the resolved config and package versions under
`<output_folder>/conf/`, and tells whether the stage already finished with identical options.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError
from speechlib.results.environment import describe_environment


def set_seed(seed: int, deterministic: bool = True) -> None:
    """One seed for Python, NumPy and torch; deterministic kernels where the backend allows."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["SB_GLOBAL_SEED"] = str(seed)  # SpeechBrain's shuffling sampler reads this
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@dataclass
class Stage:
    """A started stage: its hparams, exp dir, SpeechBrain run options and config fingerprint."""

    name: str
    hparams: dict
    run_opts: dict
    exp_dir: Path
    fingerprint: str

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


def start_stage(name: str, argv: list[str] | None = None, corpus_key: str = "corpus") -> Stage:
    """Parse `config.yaml --key value ...`, resolve, seed, and record the run in the exp dir."""
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml, resolve_references

    argv = sys.argv[1:] if argv is None else argv
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # Under torchrun every process joins the group before anything else (no-op otherwise).
    sb.utils.distributed.ddp_init_group(run_opts)
    try:
        with open(hparams_file, encoding="utf-8") as handle:
            resolved = resolve_references(handle, overrides).getvalue()
    except FileNotFoundError:
        raise InputError("config file does not exist", hparams_file) from None
    except (ValueError, KeyError) as err:
        raise InputError(f"bad config or override: {err}", hparams_file) from None
    # Seed before the config builds the model, so every process starts from the same weights.
    seed_line = re.search(r"^seed:\s*(-?\d+)\s*$", resolved, flags=re.MULTILINE)
    set_seed(int(seed_line.group(1)) if seed_line else 0)
    try:
        hparams = load_hyperpyyaml(io.StringIO(resolved))
    except (TypeError, ValueError, KeyError, AttributeError, ImportError) as err:
        detail = err.args[-1] if err.args else err
        raise InputError(f"cannot build the objects the config names: {detail}", hparams_file) from None
    if "output_folder" not in hparams:
        raise InputError("config has no 'output_folder' (the exp dir)", hparams_file)
    exp_dir = Path(hparams["output_folder"])
    fingerprint = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    if _is_main_process():
        exp_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(exp_dir / "conf" / f"{name}.yaml",
                          f"# resolved from {os.path.abspath(hparams_file)}\n" + resolved)
        env = describe_environment(str(hparams.get(corpus_key, "unknown")))
        atomic_write_text(exp_dir / "conf" / f"{name}.versions.json", json.dumps(env, indent=1) + "\n")
    return Stage(name, hparams, run_opts, exp_dir, fingerprint)


def announce_resume(checkpointer) -> None:
    """Say whether training starts fresh or resumes, and from which checkpoint.

    Brain.fit() recovers the newest checkpoint by itself (SpeechBrain's default); this line
    tells the user, in the stage log, that a re-run after a kill picked up where it stopped.
    """
    from speechbrain.core import INTRA_EPOCH_CKPT_FLAG

    latest = checkpointer.find_checkpoint()
    if latest is None:
        print(f"training from scratch (no checkpoint in {checkpointer.checkpoints_dir})", flush=True)
        return
    where = "mid-epoch" if latest.meta.get(INTRA_EPOCH_CKPT_FLAG) else "end of epoch"
    print(f"resuming: loading checkpoint {latest.path} ({where})", flush=True)
