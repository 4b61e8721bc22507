"""The front end of every user command that runs a model over a user's recordings.

A command supplies a model description and gets input resolution, safety checks, decoding,
resampling, chunking, writing, progress and the closing summary. Example (a command module):

    from speechlib.io import inference

    def load(args) -> inference.WaveformModel:
        net = my_loader(args.model)                    # e.g. speechlib.tasks.model_dir.load_model_dir
        return inference.WaveformModel(
            sample_rate=16000, context=8000, min_samples=512,
            forward=lambda batch: net(torch.from_numpy(batch)).numpy())

    def main(argv=None) -> int:
        return inference.main("myrecipe.denoise", __doc__, load, argv=argv, memory_mb=800)

    if __name__ == "__main__":
        exit_on_input_error("myrecipe.denoise", main)      # speechlib.io.errors

What it guarantees (each a test in tests/unit/test_inference_frontend.py):
- Inputs: a file (anything libsndfile reads; mp3/ogg/m4a through ffmpeg), a directory (recursive,
  mirrored under --out), a wav.scp (pipes included). See speechlib.io.inputs for the output names
  and the checks made before any work (overwrite, collision, escape from --out).
- Each recording is refused by name, and the others processed, when it is unreadable, truncated,
  empty, non-finite, silent (peak below -80 dBFS) or shorter than the model accepts.
- Output keeps the input's sample rate, channels and length: every channel is resampled to the
  model's rate, processed on its own, resampled back and cut to the input's length.
- Long recordings are cut into windows of --chunk-seconds overlapping by the model's `context`
  and cross-faded, so memory does not grow with the model's activations on long files.
- Batch independence: only windows of identical length are batched together; nothing is ever
  zero-padded, so a file's output does not depend on the files it is processed with.
- Output that would clip is never written silently: scaled to a 0.99 peak (default), hard
  clipped or refused (--on-clip); each case is named on stderr.
- Atomic writes with the umask; a stale refused.txt is removed; the last line is the summary
  `<done> done, <refused> refused, <failed> failed of <total>`; exit status 0 only if all were
  done, 1 otherwise, 2 when the command line itself is refused.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from speechlib.io.atomic import atomic_open
from speechlib.io.audio import read_audio, resample_channels, write_audio
from speechlib.io.errors import InputError
from speechlib.io.inputs import PlanError, Plan, plan
from speechlib.io.kaldi import write_table
from speechlib.io.progress import Progress

SILENCE_PEAK = 1e-4  # -80 dBFS: below this a "recording" carries nothing a model can work on
MIN_SECONDS = 0.1  # shorter than this is a click, not a recording, whatever a model would accept
SCALE_PEAK = 0.99


@dataclass
class WaveformModel:
    """A model mapping (batch, samples) float32 at `sample_rate` to the same shape.

    `context`: overlap between windows, in samples (at least the receptive field);
    `min_samples`: the shortest input it accepts.
    Per-recording hooks (optional), given all channels at the model's rate and a dict `info`
    ({"name", "tags": the input file's metadata, "out_tags": metadata to write}): `before` runs
    ahead of the windows (e.g. a level change; an InputError refuses the recording), `after` on
    the cross-faded output (e.g. undoing that change, filling "out_tags").
    """

    sample_rate: int
    forward: Callable[[np.ndarray], np.ndarray]
    context: int = 0
    min_samples: int = 1
    before: Callable[[list[np.ndarray], dict], list[np.ndarray]] | None = None
    after: Callable[[list[np.ndarray], dict], list[np.ndarray]] | None = None


@dataclass
class ScoringModel:
    """A model giving one row of numbers per recording (channels are averaged to mono first).

    `forward` maps (batch, samples) to one partial result per window; `combine(partials, weights)`
    merges a recording's windows (weights: the samples each window adds) into {column: value}.
    """

    sample_rate: int
    forward: Callable[[np.ndarray], Sequence[Any]]
    combine: Callable[[list[Any], list[int]], dict[str, float]]
    columns: tuple[str, ...]
    min_samples: int = 1


Model = WaveformModel | ScoringModel


@dataclass
class Summary:
    total: int = 0
    done: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # done, with a remark (output scaled, ...)

    def line(self) -> str:
        return (f"{len(self.done)} done, {len(self.refused)} refused, {len(self.failed)} failed "
                f"of {self.total}")

    @property
    def exit_code(self) -> int:
        return 0 if len(self.done) == self.total else 1


def check_usable(data: np.ndarray, sample_rate: int, min_seconds: float = MIN_SECONDS) -> None:
    """Refuse (InputError) a decoded recording that is silent (peak below -80 dBFS) or shorter
    than `min_seconds`: the rule every user command applies before any work (decoding already
    refuses empty, truncated and non-finite files)."""
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak < SILENCE_PEAK:
        raise InputError(f"silent (peak {peak:.1e}, below {SILENCE_PEAK:.0e})")
    if len(data) < min_seconds * sample_rate:
        raise InputError(f"too short: {len(data) / sample_rate:.3f} s, the model needs at least {min_seconds:.3f} s")


def shown(name: str) -> str:
    """A name as printed on one line: quoted Python-style when it holds a newline or the like."""
    return name if name.isprintable() else repr(name)


def window_starts(length: int, size: int, hop: int) -> list[int]:
    """Start of each window of `size` (the last one aligned to the end, so all are `size` long)."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, hop))
    return starts + [length - size]


def equal_length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of at most `batch_size` items of identical length (in order of
    first appearance). The batching rule of every inference path: with nothing zero-padded, an
    item's result cannot depend on what it is batched with (issue 17 item 9)."""
    groups: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        groups.setdefault(int(length), []).append(index)
    return [group[first:first + batch_size] for group in groups.values()
            for first in range(0, len(group), batch_size)]


def crossfade_weights(start: int, size: int, total: int, overlap: int) -> np.ndarray:
    """Trapezoid weights: ramps over `overlap` samples where a neighbouring window overlaps."""
    weights = np.ones(size, np.float32)
    ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / max(overlap, 1)
    if overlap and start > 0:
        weights[:overlap] = ramp
    if overlap and start + size < total:
        weights[size - overlap:] = np.minimum(weights[size - overlap:], ramp[::-1])
    return weights


@dataclass
class _Job:
    """One recording in flight: its channels at the model's rate and the windows' results."""

    item: Any
    native_rate: int
    frames: int
    signals: list[np.ndarray]
    starts: list[int]
    size: int  # every window's length
    results: dict[tuple[int, int], Any] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


class Runner:
    """Runs one model over a plan; see the module docstring for the rules it keeps."""

    def __init__(self, prog: str, model: Model, batch_size: int = 4, chunk_seconds: float = 10.0,
                 on_clip: str = "scale", suffix_subtype: str = "PCM_16", progress: bool = True):
        self.prog, self.model, self.batch_size = prog, model, batch_size
        self.window = max(int(round(chunk_seconds * model.sample_rate)), model.min_samples)
        self.overlap = 0 if isinstance(model, ScoringModel) else min(model.context, self.window // 2)
        self.on_clip, self.subtype, self.show_progress = on_clip, suffix_subtype, progress
        self.rows: dict[str, dict[str, float]] = {}
        self.progress: Progress | None = None

    # -- reading ---------------------------------------------------------------------------
    def _prepare(self, item, summary: Summary) -> _Job | None:
        try:
            audio = read_audio(item.spec, utt=item.name if item.name != item.spec else None)
        except InputError as err:
            return self._refuse(summary, item, str(err))
        try:
            check_usable(audio.data, audio.sample_rate)
        except InputError as err:
            return self._refuse(summary, item, str(err))
        channels = audio.data.mean(axis=1)[None] if isinstance(self.model, ScoringModel) else audio.data.T
        signals = [np.ascontiguousarray(row, np.float32)
                   for row in resample_channels(channels, audio.sample_rate, self.model.sample_rate)]
        need_samples = max(self.model.min_samples, int(MIN_SECONDS * self.model.sample_rate))
        if len(signals[0]) < need_samples:
            need = need_samples / self.model.sample_rate
            return self._refuse(summary, item, f"too short: {len(audio.data) / audio.sample_rate:.3f} s, "
                                f"the model needs at least {need:.3f} s")
        info = {"name": item.name, "tags": audio.tags, "out_tags": {}}
        if isinstance(self.model, WaveformModel) and self.model.before is not None:
            try:
                signals = self.model.before(signals, info)
            except InputError as err:
                return self._refuse(summary, item, str(err))
        job = self.job(item, signals, audio.sample_rate, len(audio.data))
        job.info = info
        return job

    def job(self, item, signals: list[np.ndarray], native_rate: int, frames: int) -> _Job:
        hop = self.window - self.overlap if isinstance(self.model, WaveformModel) else self.window
        return _Job(item, native_rate, frames, signals, window_starts(len(signals[0]), self.window, hop),
                    min(len(signals[0]), self.window))

    def _refuse(self, summary: Summary, item, reason: str) -> None:
        reason = reason.replace(f"utterance '{item.name}': ", "")
        summary.refused[item.name] = reason
        print(f"{self.prog}: refused {shown(item.name)}: {reason}", file=sys.stderr, flush=True)
        return None

    # -- the model ---------------------------------------------------------------------------
    def compute(self, jobs: list[_Job]) -> dict[int, str]:
        """Run every window of `jobs`, batching only windows of equal length; {id(job): error}."""
        windows = [(job, channel, index) for job in jobs for channel in range(len(job.signals))
                   for index in range(len(job.starts))]
        broken: dict[int, str] = {}
        for batch_of in equal_length_batches([job.size for job, _, _ in windows], self.batch_size):
            part = [windows[w] for w in batch_of]
            batch = np.stack([job.signals[ch][job.starts[i]:job.starts[i] + job.size] for job, ch, i in part])
            try:
                outputs = self.model.forward(batch)
            except (RuntimeError, ValueError) as err:
                for job, _, _ in part:
                    broken[id(job)] = f"the model failed: {err}".splitlines()[0]
                continue
            for (job, channel, index), output in zip(part, outputs):
                job.results[(channel, index)] = output
            if self.progress is not None:
                self.progress.tick()  # a long recording: still a line every 30 s
        return broken

    def _compute(self, jobs: list[_Job], summary: Summary) -> None:
        broken = self.compute(jobs)
        for job in jobs:
            if id(job) in broken:
                self._fail(summary, job.item, broken[id(job)])
            else:
                self._finish(job, summary)

    def _fail(self, summary: Summary, item, reason: str) -> None:
        summary.failed[item.name] = reason
        print(f"{self.prog}: failed {shown(item.name)}: {reason}", file=sys.stderr, flush=True)

    # -- results ---------------------------------------------------------------------------
    def _finish(self, job: _Job, summary: Summary) -> None:
        if isinstance(self.model, ScoringModel):
            ends = [start + job.size for start in job.starts]
            weights = [end - max(start, prev) for start, end, prev in zip(job.starts, ends, [0] + ends[:-1])]
            row = self.model.combine([job.results[(0, i)] for i in range(len(job.starts))], weights)
            if not all(np.isfinite(v) for v in row.values()):
                return self._fail(summary, job.item, f"the model gave a non-finite score {row}")
            self.rows[job.item.name] = row
            summary.done.append(job.item.name)
            return None
        outputs = [self.assemble(job, channel) for channel in range(len(job.signals))]
        if self.model.after is not None:
            outputs = self.model.after(outputs, job.info)
        back = resample_channels(np.stack(outputs), self.model.sample_rate, job.native_rate)
        job.results.clear()
        output = np.zeros((job.frames, len(outputs)), back.dtype)  # the input's length: cut or zero-padded
        kept = min(job.frames, back.shape[1])
        output[:kept] = back[:, :kept].T
        peak = float(np.max(np.abs(output)))  # NaN or inf when any sample is
        if not np.isfinite(peak):
            return self._fail(summary, job.item, "the model produced non-finite samples")
        if peak > 1.0:
            if self.on_clip == "refuse":
                return self._fail(summary, job.item, f"output peak {peak:.2f} would clip (--on-clip refuse)")
            if self.on_clip == "scale":
                output *= SCALE_PEAK / peak
                note = f"output scaled by {20 * np.log10(SCALE_PEAK / peak):.1f} dB to avoid clipping"
            else:
                output = np.clip(output, -1.0, 1.0)
                note = f"output clipped (peak {peak:.2f}, --on-clip clip)"
            summary.notes[job.item.name] = note
            print(f"{self.prog}: {shown(job.item.name)}: {note}", file=sys.stderr, flush=True)
        try:
            write_audio(job.item.output, output[:, 0] if output.shape[1] == 1 else output, job.native_rate,
                        self.subtype, tags=job.info["out_tags"])
        except (OSError, RuntimeError) as err:
            return self._fail(summary, job.item, f"cannot write {job.item.output}: {err}")
        summary.done.append(job.item.name)
        return None

    def assemble(self, job: _Job, channel: int) -> np.ndarray:
        """One channel's output at the model's rate: the windows cross-faded."""
        length = len(job.signals[channel])
        total = np.zeros(length, np.float32)
        norm = np.zeros(length, np.float32)
        for index, start in enumerate(job.starts):
            weights = crossfade_weights(start, job.size, length, self.overlap)
            total[start:start + job.size] += weights * np.asarray(job.results[(channel, index)], np.float32)
            norm[start:start + job.size] += weights
        return total / norm

    def run(self, the_plan: Plan) -> Summary:
        summary = Summary(total=len(the_plan.items))
        progress = self.progress = Progress(summary.total, self.prog, enabled=self.show_progress)
        pending: list[_Job] = []
        budget = self.batch_size * self.window  # samples buffered before the model runs
        try:
            for item in the_plan.items:
                job = self._prepare(item, summary)
                if job is None:
                    progress.update()
                    continue
                pending.append(job)
                if sum(len(j.signals) * len(j.starts) for j in pending) >= self.batch_size or \
                        sum(len(j.signals) * len(j.signals[0]) for j in pending) >= budget:
                    self._compute(pending, summary)
                    progress.update(len(pending))
                    pending = []
            if pending:
                self._compute(pending, summary)
                progress.update(len(pending))
        finally:
            progress.close()
        return summary


def apply_model(model: WaveformModel, signals: Sequence[np.ndarray], batch_size: int = 4,
                chunk_seconds: float = 10.0) -> list[np.ndarray]:
    """In-memory signals at the model's rate through the same windows and batching rule as the
    command line (for stages that score many utterances): each output is independent of the
    others and as long as its input. A model failure raises RuntimeError."""
    runner = Runner("apply_model", model, batch_size, chunk_seconds, progress=False)
    jobs = [runner.job(index, [np.ascontiguousarray(s, np.float32)], model.sample_rate, len(s))
            for index, s in enumerate(signals)]
    outputs: list[np.ndarray] = []
    for first in range(0, len(jobs), batch_size):
        part = jobs[first:first + batch_size]
        broken = runner.compute(part)
        if broken:
            raise RuntimeError(next(iter(broken.values())))
        for job in part:
            outputs.append(runner.assemble(job, 0))
            job.results.clear()
    return outputs


def write_listings(the_plan: Plan, summary: Summary) -> None:
    """<out>/wav.scp for a wav.scp input; <out>/refused.txt when anything was not done
    (and no stale one from an earlier run otherwise)."""
    if the_plan.out_dir is None:
        return
    the_plan.out_dir.mkdir(parents=True, exist_ok=True)
    if the_plan.kind == "scp":
        outputs = {item.name: os.path.abspath(item.output) for item in the_plan.items}
        write_table(the_plan.out_dir / "wav.scp", {name: outputs[name] for name in summary.done})
    refused = the_plan.out_dir / "refused.txt"
    problems = {**summary.refused, **summary.failed}
    if problems:
        # One `<name>\t<reason>` line each: names may hold spaces, so not a Kaldi table.
        with atomic_open(refused) as handle:
            handle.writelines(f"{shown(name)}\t{reason}\n" for name, reason in sorted(problems.items()))
    elif refused.exists():
        refused.unlink()


def write_rows(rows: dict[str, dict[str, float]], columns: tuple[str, ...], out: str | None) -> None:
    """A csv (quoted where a name needs it) to `out`, atomically, or to stdout."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("file",) + columns)
    for name, row in rows.items():
        writer.writerow([name] + [f"{row[c]:.4f}" for c in columns])
    if out is None:
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()
    else:
        with atomic_open(out) as handle:
            handle.write(buffer.getvalue())


# -- the command line ------------------------------------------------------------------------
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


COMMON_HELP = """
inputs and outputs:
  --in is an audio file (wav, flac, ogg, mp3, ...), a directory (searched recursively) or a Kaldi
  wav.scp (`cmd |` pipes allowed). {out_rule}
  Nothing outside --out is written; an output that would overwrite an input, two inputs with
  one output name, or a wav.scp key that leaves --out stop the command before any work.
  Unreadable, truncated, empty, non-finite (NaN/inf), silent (peak below -80 dBFS) or too short
  (under 0.1 s, or what the model needs) recordings are refused by name and the rest processed.
  The last line counts done/refused/failed; the exit status is 0 only when every input was done.{waveform_rule}
memory:
  The model sees at most --batch-size windows of --chunk-seconds; the recording being processed
  is held whole (a few float32 copies of it). With the defaults, peak memory stays
  below {memory_mb} MB for a 10-minute 16 kHz recording (tests/benchmarks/bench_inference_memory.py).
"""

WAVEFORM_RULE = """
  Outputs keep each input's sample rate, channel count and length (channels are processed
  independently at the model's rate). Output that would exceed full scale is scaled down
  (default), clipped or refused (--on-clip), and said so."""


def build_parser(prog: str, description: str, scoring: bool, memory_mb: int) -> argparse.ArgumentParser:
    if scoring:
        out_rule = "Scores go to --out (a .csv file) or, without --out, to stdout."
    else:
        out_rule = ("--out ending in .wav/.flac names the output of a single input file; any other\n"
                    "  --out is a directory: a directory input is mirrored under it, a wav.scp gives\n"
                    "  <out>/<key>.<format> and <out>/wav.scp.")
    epilog = COMMON_HELP.format(out_rule=out_rule, memory_mb=memory_mb,
                                waveform_rule="" if scoring else WAVEFORM_RULE)
    parser = argparse.ArgumentParser(prog=f"python -m speechlib.tasks.{prog}", description=description,
                                     epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model directory (see the examples above)")
    parser.add_argument("--in", dest="source", required=True, metavar="IN",
                        help="audio file, directory or wav.scp (a name starting with '-' is fine)")
    parser.add_argument("--out", required=not scoring, help="a .csv file (default: stdout)" if scoring
                        else "output .wav/.flac file (single input) or directory")
    if not scoring:
        parser.add_argument("--format", choices=("wav", "flac"), default="wav",
                            help="file type of outputs written into a directory (default: wav)")
        parser.add_argument("--on-clip", choices=("scale", "clip", "refuse"), default="scale",
                            help="output beyond full scale: scale the file down, clip, or refuse it")
    parser.add_argument("--batch-size", type=positive_int, default=4,
                        help="windows per model call (default: %(default)s)")
    parser.add_argument("--chunk-seconds", type=positive_float, default=10.0,
                        help="longest window the model sees at once, bounds memory (default: %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="CPU threads for the model (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda:0 (default: cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    return parser


def attach_values(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--in -x.wav` -> `--in=-x.wav`: argparse would take a value starting with '-' for an option."""
    takes_value = {s for a in parser._actions if a.nargs is None and a.option_strings and
                   not isinstance(a, (argparse._StoreTrueAction, argparse._HelpAction)) for s in a.option_strings}
    out, index = [], 0
    while index < len(argv):
        if argv[index] in takes_value and index + 1 < len(argv):
            out.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
        else:
            out.append(argv[index])
            index += 1
    return out


def main(prog: str, description: str, load: Callable[[argparse.Namespace], Model],
         argv: list[str] | None = None, memory_mb: int = 2000, scoring: bool = False,
         add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Parse, plan (refusing unsafe commands before any work), load the model, run, summarise."""
    parser = build_parser(prog, description, scoring, memory_mb)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(attach_values(list(sys.argv[1:] if argv is None else argv), parser))
    suffix = "" if scoring else f".{args.format}"
    if scoring and args.out is not None and Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a directory; name a .csv file")
    try:
        the_plan = plan(args.source, None if scoring else args.out, suffix)
        if scoring and args.out is not None:
            plan_table_output(the_plan, args.source, args.out)
    except InputError as err:  # a PlanError lists every problem; a bad wav.scp or --in is one
        for problem in getattr(err, "problems", [str(err)]):
            print(f"{prog}: refused: {problem}", file=sys.stderr)
        print(f"{prog}: nothing done: the command line was refused ({len(getattr(err, 'problems', [1]))} problem(s))",
              file=sys.stderr)
        return 2
    if the_plan.ignored:
        print(f"{prog}: ignoring {len(the_plan.ignored)} non-audio file(s) in {args.source} "
              f"(first: {the_plan.ignored[0]})", file=sys.stderr)
    import torch

    torch.set_num_threads(args.threads)
    model = load(args)
    if isinstance(model, ScoringModel) != scoring:
        raise TypeError(f"{prog}: main(scoring={scoring}) was given a {type(model).__name__}")
    runner = Runner(prog, model, args.batch_size, args.chunk_seconds,
                    on_clip=getattr(args, "on_clip", "scale"), progress=not args.quiet)
    summary = runner.run(the_plan)
    if scoring:
        write_rows(runner.rows, model.columns, args.out)
    else:
        write_listings(the_plan, summary)
    where = f" -> {args.out}" if args.out else ""
    print(f"{prog}: {summary.line()}{where}", file=sys.stderr if scoring and args.out is None else sys.stdout)
    return summary.exit_code


def plan_table_output(the_plan: Plan, source: str, out: str) -> None:
    """A scores file must not be one of the inputs (nor the wav.scp naming them)."""
    real = os.path.realpath(out)
    inputs = {os.path.realpath(source)} | {os.path.realpath(i.spec) for i in the_plan.items}
    if real in inputs:
        raise PlanError([f"--out {out} would overwrite an input"])
