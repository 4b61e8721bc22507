"""Describe where a result came from: the command that reproduces it, date, git revision,
package versions (the metric and model packages included), device, corpus.

Cheap to call (no `pip freeze`, no imports): versions come from the installed distributions'
metadata. The command is the recipe's (`cd egs/<recipe> && ./run.sh ...`, exported by
utils/recipe_init.sh as RECIPE_COMMAND); a stage run by hand records its own argv instead.
"""
from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_revision(root: Path = REPO_ROOT) -> str:
    """Short hash of HEAD, with `-dirty` when tracked code has uncommitted changes.

    Generated results (RESULTS.md, published figures) are left out: a recipe run rewrites them,
    and they would otherwise mark every later stage of the same run as dirty.
    """
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude,glob)**/RESULTS.md", ":(exclude,glob)egs/*/figures/**",
                                ":(exclude,glob)egs/*/examples/**"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def package_version(name: str) -> str:
    try:
        return str(importlib.import_module(name).__version__)
    except Exception:  # not installed, or no __version__: say so rather than fail a stage
        return "not installed"


# Packages whose version can move a number in a table: metrics, pretrained predictors/encoders,
# signal processing. Listed by distribution name.
RESULT_PACKAGES = ("scipy", "soundfile", "librosa", "pesq", "pystoi", "speechmos", "onnxruntime",
                   "distillmos", "xls-r-sqa", "resemblyzer", "transformers", "sentencepiece", "gammatone",
                   "visqol-python", "pyworld", "praat-parselmouth", "pocketsphinx", "hyperpyyaml", "matplotlib")


def distribution_versions(names: tuple[str, ...] = RESULT_PACKAGES) -> str:
    """'pesq 0.0.4, pystoi 0.4.1, ...' ('-' for a package that is not installed)."""
    versions = []
    for name in names:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    return ", ".join(versions)


def reproduce_command() -> str:
    """The recipe command that reproduces this result, else this process's own command line."""
    if os.environ.get("RECIPE_COMMAND"):
        return os.environ["RECIPE_COMMAND"]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None else os.path.basename(sys.argv[0])
    return " ".join([program, *sys.argv[1:]])


def mini_corpus_identity() -> str:
    """A short hash of the mini corpus's build marker and indexes (speakers, utterances, noises,
    what was skipped): two runs whose tables differ can be told apart by their corpus, which is
    built from downloaded packages and can differ between machines."""
    import hashlib

    from speechlib.data.mini import default_root

    root = default_root()
    if not (root / ".complete").is_file():
        return "not built"
    digest = hashlib.sha256()
    for name in (".complete", "speakers.tsv", "skipped.txt", "speech/index.tsv", "noise/index.tsv"):
        path = root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"-") + b"\0")
    return digest.hexdigest()[:12]


def thread_description() -> str:
    """torch's intra-op threads (a float sum split differently rounds differently) and OMP's."""
    torch = sys.modules.get("torch")
    threads = str(torch.get_num_threads()) if torch is not None else "not loaded"
    return f"torch {threads}, OMP_NUM_THREADS {os.environ.get('OMP_NUM_THREADS', 'unset')}"


def device_description() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"{torch.cuda.device_count()} x {', '.join(sorted(names))}"
    return f"cpu ({os.cpu_count()} cores)"


def describe_environment(corpus: str) -> dict[str, str]:
    """The environment block of RESULTS.md and of every exp dir's versions.json."""
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git": git_revision(),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "torchaudio": package_version("torchaudio"),
        "speechbrain": package_version("speechbrain"),
        "numpy": package_version("numpy"),
        "packages": distribution_versions(),
        "device": device_description(),
        "threads": thread_description(),
        "corpus": corpus,
        **({"mini corpus": mini_corpus_identity()} if corpus == "mini" else {}),
        "command": reproduce_command(),
    }
