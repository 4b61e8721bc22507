"""Predict MUSHRA scores of coded audio against its reference with a trained GML.

    python -m speechlib.tasks.mushra_gml.predict --model exp/mini_mushra_gml --ref ref.wav --deg coded.wav
    python -m speechlib.tasks.mushra_gml.predict --model exp/mini_mushra_gml/gml_cutmix_seed1/model \\
        --ref ref.flac --deg coded.mp3 --listeners 20 --sample 10
    python -m speechlib.tasks.mushra_gml.predict --model exp/mini_mushra_gml --pairs pairs.csv --out scores.csv

Prints the predicted mean MUSHRA score, its 95 % confidence interval for a panel of --listeners
listeners (t-distribution; logistic std = pi a / sqrt 3), and with --sample K, K simulated
listener scores drawn from the predicted distribution. `--pairs` takes a csv with columns
`ref,deg` (a header line; relative paths relative to the csv) and writes one row per pair.

--model is a model directory, or an experiment dir (then its gml_cutmix model of the first seed,
else gml, is used). Inputs: anything libsndfile or ffmpeg reads; mono is played as dual mono;
other sample rates are resampled to the model's 48 kHz; a coded signal whose length differs
from the reference's by at most --max-offset seconds is aligned to it by cross-correlation,
a larger difference is refused naming both files; a silent reference is refused, and so is a
silent coded signal (a real condition, but outside what the model was trained on). Excerpts
shorter than the training excerpts are zero-padded on both sides, as in training.
Non-GML (mean-score) models give the mean only.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

from speechlib.io.audio import check_not_silent, read_audio, resample
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.inference import MIN_SECONDS, Summary, positive_int, write_rows
from speechlib.io.progress import Progress
from speechlib.metrics.mushra import distribution_std, sample_scores, t_ci_halfwidth
from speechlib.nn.inse import StereoInSENet
from speechlib.signal.codecs import align
from speechlib.signal.gammatone import GammatoneSpectrogram, stereo_pair_features
from speechlib.tasks.model_dir import ModelDir, find_model_dir, load_model_dir
from speechlib.tasks.mushra_gml.features import as_stereo, fit_length

SILENCE_PEAK = 1e-4  # a peak below this is silence (-80 dBFS), for the reference and the coded signal
# the lag search correlates the central 1.4 s at 48 kHz and climbs the whole excerpt's correlation
# from its peaks (speechlib.signal.codecs.best_lag: the same lag, tested; a quarter of the CPU time)
ALIGN_SEGMENT = 1 << 16


class Listener:
    """A loaded GML (or non-GML) model with its gammatone front end."""

    def __init__(self, md: ModelDir, device: str = "cpu"):
        extra = md.extra
        self.sample_rate = md.sample_rate
        self.distribution = extra["distribution"]
        self.centre, self.scale = extra["score_centre"], extra["score_scale"]
        self.num_samples = int(extra["num_samples"])
        self.gammatone = GammatoneSpectrogram(self.sample_rate, **extra["gammatone"]).to(device)
        # channels-last weights make the convolutions and max pooling run channels-last (vectorised
        # over channels): the mini network 2x faster on one CPU thread, outputs equal to float rounding
        self.model = md.build("model", StereoInSENet).to(device, memory_format=torch.channels_last)
        self.device = device

    def load_pair(self, ref_path: str, deg_path: str, max_offset: float) -> tuple[np.ndarray, np.ndarray]:
        """(2, samples) reference and coded signal at the model's rate, equally long."""
        signals = []
        for path in (ref_path, deg_path):
            audio = read_audio(path)
            data = audio.data if audio.sample_rate == self.sample_rate else \
                resample(audio.data, audio.sample_rate, self.sample_rate)
            try:
                signals.append(as_stereo(np.asarray(data, dtype=np.float32)))
            except InputError as err:
                raise InputError(err.message, path) from None
            if len(audio.data) < MIN_SECONDS * audio.sample_rate:  # the front end's rule: a click is not an excerpt
                raise InputError(f"too short: {len(audio.data) / audio.sample_rate:.3f} s, "
                                 f"the model needs at least {MIN_SECONDS:.3f} s", path)
        ref, deg = signals
        # a silent reference leaves nothing to compare with. A silent coded signal (a codec or link
        # that dropped the audio) is a real condition, but none was in the training tests and the
        # network extrapolates badly (the mini GML gave one 52 +- 24 where listeners give about 0):
        # refused too, with its own reason, rather than a number that looks valid
        check_not_silent(ref, f"{ref_path} (reference)", SILENCE_PEAK)
        if float(np.max(np.abs(deg))) < SILENCE_PEAK:
            raise InputError(f"the coded signal is silent (peak below {SILENCE_PEAK:g}): no silent condition was "
                             "in the training tests, so the model cannot score it (listeners would rate it "
                             "near 0)", deg_path)
        difference = abs(ref.shape[1] - deg.shape[1])
        if difference > max_offset * self.sample_rate:
            raise InputError(f"reference {ref_path} ({ref.shape[1] / self.sample_rate:.2f} s) and coded "
                             f"{deg_path} ({deg.shape[1] / self.sample_rate:.2f} s) differ in length by more "
                             f"than --max-offset {max_offset:g} s")
        deg = align(ref.T, deg.T, difference + 4096, ALIGN_SEGMENT).T
        return ref, deg

    def __call__(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """(items, 2) mean score and log scale (score points; log scale NaN for non-GML)."""
        out = []
        for ref, deg in pairs:
            length = max(self.num_samples, ref.shape[1])
            with torch.inference_mode():
                feats = stereo_pair_features(self.gammatone,
                                             torch.tensor(fit_length(ref, length)[None], device=self.device),
                                             torch.tensor(fit_length(deg, length)[None], device=self.device))
                raw = self.model(feats)[0].double().cpu().numpy()
            log_scale = raw[1] + math.log(self.scale) if raw.size == 2 else math.nan
            out.append((self.centre + self.scale * raw[0], log_scale))
        return np.array(out)


def resolve_model(path: str) -> ModelDir:
    root = Path(path)
    below = ["model"] + [str(p.relative_to(root)) for system in ("gml_cutmix", "gml")
                         for p in sorted(root.glob(f"{system}_seed*/model"))]
    return load_model_dir(find_model_dir(root, *below), "mushra_gml", "listener")


def read_pairs(path: str) -> list[tuple[str, str]]:
    base = Path(path).parent
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"ref", "deg"} <= set(reader.fieldnames):
            raise InputError("need a header with columns ref,deg", path, 1)
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row["ref"] or not row["deg"]:
                raise InputError("empty ref or deg", path, line)
            rows.append(tuple(p if Path(p).is_absolute() else str(base / p) for p in (row["ref"], row["deg"])))
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m speechlib.tasks.mushra_gml.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory or experiment dir")
    parser.add_argument("--ref", help="reference audio")
    parser.add_argument("--deg", help="coded (degraded) audio")
    parser.add_argument("--pairs", help="csv with columns ref,deg (batch use)")
    parser.add_argument("--out", help="with --pairs: the output csv (default: stdout)")
    parser.add_argument("--listeners", type=int, default=20, help="panel size N for the CI (default 20)")
    parser.add_argument("--sample", type=int, default=0, help="K simulated listener scores per pair")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated scores")
    parser.add_argument("--max-offset", type=float, default=0.5,
                        help="largest length difference (s) that is aligned rather than refused")
    parser.add_argument("--threads", type=positive_int, default=1, help="CPU threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if bool(args.pairs) == bool(args.ref or args.deg) or (not args.pairs and not (args.ref and args.deg)):
        parser.error("give --ref and --deg, or --pairs")
    if args.listeners < 2:
        parser.error("--listeners must be at least 2 (a CI needs two scores)")
    if args.sample < 0 or not args.max_offset >= 0:
        parser.error("--sample and --max-offset must not be negative")
    return args


def refuse_overwrite(out: str, pairs_csv: str, pairs: list[tuple[str, str]]) -> None:
    """The scores file must not be the pairs csv or any audio it names (the front end's rule)."""
    inputs = {os.path.realpath(pairs_csv)} | {os.path.realpath(p) for pair in pairs for p in pair}
    if os.path.realpath(out) in inputs:
        raise InputError("--out would overwrite an input", out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = read_pairs(args.pairs) if args.pairs else [(args.ref, args.deg)]
    if args.pairs and args.out:
        refuse_overwrite(args.out, args.pairs, pairs)
    listener = Listener(resolve_model(args.model), args.device)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, dict[str, float]] = {}
    summary = Summary(total=len(pairs))
    progress = Progress(len(pairs), "mushra_gml.predict", unit="pair", enabled=bool(args.pairs))
    for ref_path, deg_path in pairs:
        name = f"{ref_path}|{deg_path}"
        try:
            mean, log_scale = listener([listener.load_pair(ref_path, deg_path, args.max_offset)])[0]
        except InputError as err:
            if not args.pairs:
                raise
            print(f"mushra_gml.predict: refused: {err}", file=sys.stderr)
            summary.refused[name] = str(err)
            progress.update()
            continue
        std = float(distribution_std(log_scale, listener.distribution)) if listener.distribution else math.nan
        ci = float(t_ci_halfwidth(std, args.listeners)) if listener.distribution else math.nan
        samples = sample_scores(mean, log_scale, listener.distribution, args.sample, rng) \
            if listener.distribution and args.sample else np.array([])
        if not args.pairs:
            print(f"mean MUSHRA score {mean:.1f}" + (f", 95 % CI +-{ci:.1f} for {args.listeners} listeners "
                                                     f"(score std {std:.1f})" if listener.distribution else
                                                     " (mean-score model: no CI)"))
            if samples.size:
                print("simulated listener scores: " + " ".join(f"{s:.0f}" for s in np.clip(samples, 0, 100)))
        row = {"mean": mean, "ci95": ci, "std": std}
        row.update({f"sample{k + 1}": float(np.clip(s, 0, 100)) for k, s in enumerate(samples)})
        rows[name] = row
        summary.done.append(name)
        progress.update()
    progress.close()
    if args.pairs:
        columns = tuple(next(iter(rows.values())).keys()) if rows else ("mean", "ci95", "std")
        write_rows(rows, columns, args.out)
        print(f"mushra_gml.predict: {summary.line()}", file=sys.stderr)
    return summary.exit_code


if __name__ == "__main__":
    exit_on_input_error("mushra_gml.predict", main)
