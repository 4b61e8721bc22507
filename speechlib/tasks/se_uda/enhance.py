"""Enhance audio with a trained se_uda model: a wav file, a directory of them, or a wav.scp.

    python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda --in noisy.wav --out clean.wav
    python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda --system dann --in dir/ --out out/
    python -m speechlib.tasks.se_uda.enhance --model exp/mini_se_uda/models/target --in data/x/wav.scp --out out/

`--model` is an experiment dir (the system comes from `--system`, default srst_similar) or a
system dir holding model.pt. A wav.scp gives <out>/<utt>.wav and <out>/wav.scp. Input at another
sample rate is resampled to the model's rate with a warning (`--on-rate-mismatch error` refuses
it instead); the output is written at the model's rate. Files are processed in batches of
similar length (`--batch-size`).
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.tasks.se_uda.common import SYSTEMS, load_model, model_dir
from speechlib.tasks.se_uda.enhancer import enhance

SAMPLE_RATE = 16000


def resolve_model(model: str, system: str) -> Path:
    path = Path(model)
    if (path / "model.pt").is_file() or path.suffix == ".pt":
        return path
    candidate = model_dir(path, system)
    if not (candidate / "model.pt").is_file():
        raise InputError(f"no model for system '{system}' (expected {candidate}/model.pt)", str(path))
    return candidate


def plan(source: Path, out: Path) -> tuple[list[tuple[str, str, Path]], Path | None]:
    """(key, input spec, output path) per item, and the wav.scp to write (for a wav.scp input)."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".wav", ".flac"))
        if not files:
            raise InputError("no .wav or .flac files in this directory", str(source))
        return [(str(p.relative_to(source)), str(p), out / p.relative_to(source).with_suffix(".wav"))
                for p in files], None
    if source.name.endswith(".scp"):
        table = read_dict(source)
        return [(utt, spec, out / f"{utt}.wav") for utt, spec in table.items()], out / "wav.scp"
    if not source.is_file():
        raise InputError("input does not exist", str(source))
    return [(source.stem, str(source), out)], None


def run(model: str, system: str, source: str, out: str, batch_size: int = 8, policy: str = "resample",
        chunk: int = 64, device: str = "cpu") -> int:
    unet = load_model(resolve_model(model, system))
    items, scp = plan(Path(source), Path(out))
    done: dict[str, str] = {}
    for start in tqdm(range(0, len(items), chunk), desc="enhance", disable=len(items) <= chunk):
        part = items[start:start + chunk]
        signals = []
        for key, spec, _ in part:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                signals.append(load_audio(spec, SAMPLE_RATE, utt=key, on_rate_mismatch=policy)[0])
        for (key, _, target), estimate in zip(part, enhance(unet, signals, batch_size, device)):
            write_audio(target, estimate, SAMPLE_RATE)
            done[key] = str(target.resolve())
    if scp is not None:
        write_table(scp, done)
    return len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="exp/<tag> or exp/<tag>/models/<system>")
    parser.add_argument("--system", default="srst_similar", choices=SYSTEMS)
    parser.add_argument("--in", dest="source", required=True, help="a wav/flac file, a directory, or a wav.scp")
    parser.add_argument("--out", required=True, help="output file (for a file input) or directory")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--on-rate-mismatch", choices=("resample", "error"), default="resample")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    count = run(args.model, args.system, args.source, args.out, args.batch_size, args.on_rate_mismatch)
    print(f"enhance: wrote {count} file(s) to {args.out}")


if __name__ == "__main__":
    exit_on_input_error("se_uda.enhance", main)
