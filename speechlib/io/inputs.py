"""Which recordings a user command reads, and where each result goes, checked before any work.

`--in` is an audio file, a directory (searched recursively), or a Kaldi wav.scp (`cmd |` pipes
included). `--out` is a file when it ends in .wav/.flac (one input only), a directory otherwise:
a directory input is mirrored under it, a wav.scp gives `<out>/<key>.<format>` and a listing
`<out>/wav.scp`. Every problem that would write somewhere the user did not ask for is found here,
all of them at once, before a model is loaded: an output path that is an input (by path after
resolving symlinks, or by inode for hard links), two inputs sharing one output, a wav.scp key
that leaves `--out` (absolute, `..`, a path separator, or a symlink inside `--out` pointing out).
"""
from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from speechlib.io.audio import is_pipe
from speechlib.io.errors import InputError
from speechlib.io.kaldi import read_dict

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff",
                  ".aifc", ".au", ".w64", ".caf", ".wma", ".webm")
OUTPUT_SUFFIXES = (".wav", ".flac")
# First bytes of the containers above: a file named otherwise is still audio, not a wav.scp.
_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM", b".snd", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")


class PlanError(InputError):
    """The command as given would overwrite, collide or escape: every reason, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Item:
    """One unit of work: `name` (how the user knows it), `spec` (a path or `cmd |`), `output`."""

    name: str
    spec: str
    output: Path | None = None


@dataclass
class Plan:
    items: list[Item]
    kind: str  # "file", "dir" or "scp"
    out: Path | None
    out_dir: Path | None  # where listings (wav.scp, refused.txt) go; None for a single output file
    ignored: list[str] = field(default_factory=list)


def is_audio_file(path: Path) -> bool:
    """By extension, else by the first bytes (a renamed recording is still a recording)."""
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(_MAGIC)


def key_problem(key: str) -> str | None:
    """Why a wav.scp key cannot name a file under --out (None when it can)."""
    if key in (".", "..") or "/" in key or "\\" in key:
        return "contains a path separator or is '.'/'..' (a key names one file directly under --out)"
    if any(unicodedata.category(char).startswith("C") for char in key):
        return "contains a control or invisible character"
    if key.startswith("-"):
        return "starts with '-' (it would read as an option to the tools that get the output)"
    return None


def _inputs(source: Path) -> tuple[str, list[tuple[str, str, PurePath]], list[str]]:
    """(kind, [(name, spec, relative output path without suffix)], ignored files)."""
    if source.is_dir():
        found, ignored = [], []
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = path.relative_to(source)
            if path.name.startswith(".") or not is_audio_file(path):
                ignored.append(str(rel))
            else:
                found.append((str(rel), str(path), rel.with_suffix("")))
        if not found:
            raise InputError(f"no audio files in this directory (looked for {', '.join(AUDIO_SUFFIXES)})",
                             str(source))
        return "dir", found, ignored
    if not source.exists():
        raise InputError("input does not exist", str(source))
    if source.suffix.lower() != ".scp" and is_audio_file(source):
        return "file", [(str(source), str(source), PurePath(source.stem))], []
    table = read_dict(source)
    if not table:
        raise InputError("empty wav.scp", str(source))
    bad = [f"{source}: key '{key}': {key_problem(key)}" for key in table if key_problem(key)]
    if bad:
        raise PlanError(bad)
    return "scp", [(key, spec, PurePath(key)) for key, spec in table.items()], []


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    real = os.path.realpath(path)
    try:
        stat = os.stat(real)
        return real, (stat.st_dev, stat.st_ino)
    except OSError:
        return real, None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def plan(source: str | Path, out: str | Path | None, suffix: str = ".wav",
         listings: tuple[str, ...] = ("wav.scp", "refused.txt")) -> Plan:
    """Resolve inputs and outputs; raise PlanError listing every unsafe mapping.

    `out` None: results go to a table (scoring commands), only the inputs are resolved.
    """
    source = Path(source)
    kind, entries, ignored = _inputs(source)
    if out is None:
        return Plan([Item(name, spec) for name, spec, _ in entries], kind, None, None, ignored)
    out = Path(out)
    problems: list[str] = []
    to_file = out.suffix.lower() in OUTPUT_SUFFIXES
    if to_file and (kind != "file" or out.is_dir()):
        problems.append(f"--out {out}: a file name (by its extension) but the input is "
                        f"{'a directory' if kind == 'dir' else 'a wav.scp' if kind == 'scp' else 'written into a directory of that name'}; "
                        "give a directory")
    if not to_file and out.exists() and not out.is_dir():
        problems.append(f"--out {out}: exists and is not a directory (name an output file .wav or .flac)")
    if to_file:
        out_dir, items = None, [Item(entries[0][0], entries[0][1], out)]
    else:
        out_dir = out
        items = [Item(name, spec, out / rel.parent / (rel.name + suffix)) for name, spec, rel in entries]
    root = os.path.realpath(out_dir if out_dir is not None else out.parent)
    inputs = {_identity(Path(spec)) for _, spec, _ in entries if not is_pipe(spec)}
    inputs.add(_identity(source))
    input_paths = {path for path, _ in inputs}
    input_inodes = {inode for _, inode in inputs if inode is not None}
    if kind == "dir" and _inside(root, os.path.realpath(source)):
        problems.append(f"--out {out} is inside --in {source}: outputs would mix with (or overwrite) the inputs")
    targets: dict[str, str] = {}
    extra = [Item(f"the listing {name}", "", out_dir / name) for name in listings] if out_dir else []
    for item in items + extra:
        real, inode = _identity(item.output)
        if not _inside(real, root):
            problems.append(f"{item.name}: its output {item.output} resolves to {real}, outside --out")
        elif real in input_paths or (inode is not None and inode in input_inodes):
            problems.append(f"{item.name}: its output {item.output} would overwrite an input")
        elif real in targets:
            problems.append(f"{item.name} and {targets[real]} would both be written to {item.output}")
        targets.setdefault(real, item.name)
    if problems:
        raise PlanError(problems)
    return Plan(items, kind, out, out_dir, ignored)
