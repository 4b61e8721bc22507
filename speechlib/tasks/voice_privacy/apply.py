"""protect and restore on the shared inference front end (speechlib.io.inference).

`protect` runs the generator (x -> x + eps * n * m), `restore` the removal module; each loads
its own model directory (speechlib.tasks.voice_privacy.model_io), so protection can be given
away without restoration. Inputs, outputs, refusals, chunking, resampling and the summary are the
front end's; this module says how to run an SSED on a batch of windows, and adds:

- headroom: a recording within eps of full scale is scaled down before the generator (one gain
  for all channels) so that protection never clips; restore divides by the same gain.
- provenance: the protected file carries, in its `comment` metadata, `speechlib-voice-privacy`
  and a JSON record {version, generator (the protection model's weight SHA-256), gain}. restore
  refuses a file without it (not protected, or its metadata stripped) or made by another
  generator, unless `--force` (then gain 1 is assumed where none is recorded).
- `--report`: per file, the cosine between the white-box speaker embeddings of the input and the
  output, and the drop 1 - cosine (how far protection moved the speaker; restore: how far back).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from speechlib.io import inference
from speechlib.io.errors import InputError
from speechlib.metrics.verification import cosine_scores
from speechlib.nn.speaker import embed_batched
from speechlib.tasks.voice_privacy.headroom import headroom_gain
from speechlib.tasks.voice_privacy.model_io import generator_id, load_speaker, load_ssed

MEMORY_MB = 1500
VERBS = {"protect": "generator", "restore": "remover"}
TAG = "speechlib-voice-privacy"
PROVENANCE_VERSION = 1


def provenance_comment(generator: str, gain: float) -> str:
    return f"{TAG} " + json.dumps({"version": PROVENANCE_VERSION, "generator": generator, "gain": gain})


def read_provenance(tags: dict) -> dict | None:
    """The provenance record of a file's metadata, None when it has none."""
    comment = str(tags.get("comment", ""))
    if not comment.startswith(TAG + " "):
        return None
    try:
        record = json.loads(comment[len(TAG) + 1:])
    except ValueError:
        return None
    return record if isinstance(record, dict) and "generator" in record else None


def load(args: argparse.Namespace, verb: str) -> inference.WaveformModel:
    ssed, model = load_ssed(args.model, VERBS[verb])
    ssed = ssed.for_inference(copy_first=False).to(args.device)  # polyphase decoders: same output, faster
    ours, force = generator_id(model), getattr(args, "force", False)
    speaker = load_speaker(model) if args.report else None

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> np.ndarray:
        # One window per call on CPU: the SSED's full-rate activations of a whole batch (4 x 10 s)
        # outgrow the caches, and one 10 s window at a time runs about 1.7x faster (benchmark).
        # GroupNorm is per window, so the outputs do not depend on the batching.
        if args.device == "cpu":
            return np.concatenate([ssed(torch.from_numpy(row[None])).wav.numpy() for row in batch])
        return ssed(torch.from_numpy(batch).to(args.device)).wav.cpu().numpy()

    def before_protect(signals: list[np.ndarray], info: dict) -> list[np.ndarray]:
        info["gain"] = headroom_gain(np.stack(signals), ssed.eps)
        info["input"] = signals
        return [(s * np.float32(info["gain"])).astype(np.float32) for s in signals] if info["gain"] < 1 else signals

    def before_restore(signals: list[np.ndarray], info: dict) -> list[np.ndarray]:
        record = read_provenance(info["tags"])
        if record is None and not force:
            raise InputError("no voice-privacy provenance in its metadata: not protected by `protect` "
                             "(or the metadata was stripped); --force restores anyway")
        if record is not None and record["generator"] != ours and not force:
            raise InputError(f"protected by another model (generator {record['generator'][:12]}, this restoration "
                             f"model undoes {ours[:12]}); --force restores anyway")
        info["gain"] = float(record.get("gain", 1.0)) if record is not None else 1.0
        info["input"] = signals
        return signals

    def after(outputs: list[np.ndarray], info: dict) -> list[np.ndarray]:
        if verb == "protect":
            info["out_tags"]["comment"] = provenance_comment(ours, info["gain"])
        elif info["gain"] != 1.0:
            outputs = [(o / np.float32(info["gain"])).astype(np.float32) for o in outputs]
        if speaker is not None:
            embeddings = embed_batched(speaker, [np.mean(info["input"], axis=0), np.mean(outputs, axis=0)], 2)
            cosine = float(cosine_scores(embeddings[:1], embeddings[1:])[0])
            print(f"voice_privacy.{verb}: report: {inference.shown(info['name'])}: white-box cosine "
                  f"{cosine:.3f}, drop {1 - cosine:.3f}", flush=True)
        return outputs

    # Windows overlap by two receptive fields, so every cross-faded sample saw its whole context.
    return inference.WaveformModel(model.sample_rate, forward, context=2 * ssed.receptive_field,
                                   min_samples=ssed.receptive_field,
                                   before=before_protect if verb == "protect" else before_restore, after=after)


def add_arguments(verb: str):
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--report", action="store_true",
                            help="print the white-box speaker cosine between input and output per file")
        if verb == "restore":
            parser.add_argument("--force", action="store_true",
                                help="restore files without provenance, or made by another protection model")
    return add


def main(verb: str, doc: str, argv: list[str] | None = None) -> int:
    return inference.main(f"voice_privacy.{verb}", doc, lambda args: load(args, verb), argv=argv,
                          memory_mb=MEMORY_MB, add_arguments=add_arguments(verb))
