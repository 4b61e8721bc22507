"""Small things several test modules need."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def run(argv: list[str], cwd: str | Path | None = None, env: dict | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command, capture text output, never raise on a non-zero exit."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def write_tone(path: Path, seconds: float = 0.5, sample_rate: int = 16000, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * freq * t), sample_rate, subtype="PCM_16")
    return path


def copy_recipe(name: str, dest_parent: Path) -> Path:
    """A copy of egs/<name> under `dest_parent`, so its data/ and exp/ live in a temp dir.

    Everything the recipe has (run.sh, db.sh, conf/, local/, ...) but its outputs is copied;
    symlinked path.sh/cmd.sh are copied as files; utils points back at the repository's.
    Run it with MAIN_ROOT=REPO in the environment (path.sh then finds tools/venv).
    """
    import shutil

    source = REPO / "egs" / name
    dest = Path(dest_parent) / name
    dest.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name in OUTPUTS or entry.name == "utils":
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name)
        else:
            shutil.copy2(entry.resolve(), dest / entry.name)
    (dest / "utils").symlink_to(REPO / "utils")
    return dest


# What a recipe run writes into its directory (not copied by copy_recipe).
OUTPUTS = {"exp", "data", "dump", "figures", "examples", "RESULTS.md", "results.json"}
