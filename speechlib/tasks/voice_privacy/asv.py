"""Stage 4 of egs/voice_privacy: ASV evaluation (the paper's Table 1), with CIs and a control.

    python -m speechlib.tasks.voice_privacy.asv conf/x.yaml --output_folder exp/x

Speaker models: white (the ECAPA-TDNN the generator was trained against), black (our x-vector,
trained separately) and ge2e (resemblyzer's pretrained GE2E encoder: someone else's model and
data). Per evaluation set and gender, two trial protocols over the same utterances
(`asv_utts_per_speaker` per speaker, seeded; trial lists in exp/<tag>/asv/trials/):
- paper: 1 target + 30 non-target trials per speaker (the paper's; 20 targets per cell);
- extended: every same-gender pair, every within-speaker pair a target trial.
Conditions (enrolment-test): rec-rec, rec-adv, adv-adv, rec-rst, rec-an, and rec-gn: the
recording plus Gaussian noise at the SNR of its own adversarial perturbation (stage 3), the
control a learned perturbation must beat. Cosine scoring; EER and minDCF (p_target 0.01, 0.05)
with speaker-level bootstrap 95 % CIs, and paired differences (rec-adv - rec-gn, rec-adv -
rec-rec, rec-rst - rec-rec) with the same resamples. Per-utterance cosines cos(z(x), z(x')),
cos(z(x), z(x_hat)), cos(z(x), z(gn)). Outputs in exp/<tag>/asv/: eer.json, cosines.json,
throughput.json, det/<set>_<gender>_<model>.png (extended protocol).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from speechlib.data.trials import Trial, extended_trials, make_trials, write_trials
from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.verification import cosine_scores, group_weights, percentile_ci, verification_summary
from speechlib.nn.ge2e import GE2EEncoder
from speechlib.nn.speaker import embed_batched, load_pretrained
from speechlib.tasks.stage import start_stage
from speechlib.tasks.voice_privacy.figures import det_plot
from speechlib.tasks.voice_privacy.protect_sets import CONTROL, condition_dir

logger = logging.getLogger("voice_privacy.asv")

# (enrolment condition, test condition) per Table 1 column, then the matched-noise control
CONDITION_PAIRS = {"rec-rec": ("rec", "rec"), "rec-adv": ("rec", "adv"), "adv-adv": ("adv", "adv"),
                   "rec-rst": ("rec", "rst"), "rec-an": ("rec", "an"), f"rec-{CONTROL}": ("rec", CONTROL)}
CONDITIONS = ("rec", "adv", "rst", "an", CONTROL)
MODELS = ("white", "black", "ge2e")
PROTOCOLS = ("paper", "extended")
# paired differences (a - b) reported with their own CI
DIFFERENCES = {"rec-adv - rec-gn": ("rec-adv", f"rec-{CONTROL}"), "rec-adv - rec-rec": ("rec-adv", "rec-rec"),
               "rec-rst - rec-rec": ("rec-rst", "rec-rec")}
P_TARGETS = (0.01, 0.05)
Embedder = Callable[[list[np.ndarray]], np.ndarray]


def evaluation_utterances(hp: dict, subset: str, tag: str, rng: np.random.Generator) -> dict[str, str]:
    """utt2spk of the utterances every condition has, at most `asv_utts_per_speaker` each."""
    utt2spk = read_dict(Path(hp["data_folder"]) / subset / "utt2spk")
    for cond in CONDITIONS[1:]:
        present = read_dict(condition_dir(hp["data_folder"], subset, cond, tag) / "wav.scp")
        utt2spk = {u: s for u, s in utt2spk.items() if u in present}
    limit = hp["asv_utts_per_speaker"]
    if limit is None:
        return utt2spk
    by_speaker: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    kept = {}
    for spk, utts in sorted(by_speaker.items()):
        for index in sorted(rng.permutation(len(utts))[: int(limit)]):
            kept[utts[index]] = spk
    return kept


def build_embedders(exp_dir: Path, batch_size: int) -> dict[str, Embedder]:
    encoders = {role: load_pretrained(exp_dir / f"speaker_{role}") for role in ("white", "black")}
    embedders: dict[str, Embedder] = {role: (lambda signals, e=encoder: embed_batched(e, signals, batch_size))
                                      for role, encoder in encoders.items()}
    embedders["ge2e"] = GE2EEncoder().embed
    return embedders


def score_cell(trials: list[Trial], embeddings: dict, utt2spk: dict[str, str], model: str, n_boot: int,
               seed: int) -> tuple[dict, dict, dict]:
    """(metrics per condition pair, paired differences, DET scores) of one gender's trials."""
    labels = np.array([y for _, _, y in trials])
    speakers = sorted({utt2spk[e] for e, _, _ in trials})
    index = {s: i for i, s in enumerate(speakers)}
    groups = np.array([index[utt2spk[e]] for e, _, _ in trials])
    weights = group_weights(len(speakers), n_boot, seed)
    metrics, replicates, det = {}, {}, {}
    for column, (enroll_cond, test_cond) in CONDITION_PAIRS.items():
        enroll = np.stack([embeddings[(model, enroll_cond)][e] for e, _, _ in trials])
        test = np.stack([embeddings[(model, test_cond)][t] for _, t, _ in trials])
        scores = cosine_scores(enroll, test)
        summary, replicates[column] = verification_summary(scores, labels, groups, weights, P_TARGETS)
        metrics[column] = {k: 100 * v if k.startswith("eer") else v for k, v in summary.items()}
        det[column] = (scores, labels)
    differences = {}
    for name, (a, b) in DIFFERENCES.items():
        low, high = percentile_ci(100 * (replicates[a]["eer"] - replicates[b]["eer"]))
        differences[name] = {"eer": metrics[a]["eer"] - metrics[b]["eer"], "eer_lo": low, "eer_hi": high}
    return metrics, differences, det


def per_utterance_cosines(embeddings: dict, utts: list[str]) -> dict[str, dict[str, list[float]]]:
    """cos(z(x), z(y)) per utterance for y = adv, rst, gn, per model."""
    out: dict[str, dict[str, list[float]]] = {}
    for model in MODELS:
        rec = np.stack([embeddings[(model, "rec")][u] for u in utts])
        out[model] = {cond: cosine_scores(rec, np.stack([embeddings[(model, cond)][u] for u in utts])).tolist()
                      for cond in ("adv", "rst", CONTROL)}
    return out


def main() -> None:
    stage = start_stage("asv", options=())
    hp = stage.hparams
    tag, out_dir = stage.exp_dir.name, stage.exp_dir / "asv"
    if stage.is_done((out_dir / "eer.json", out_dir / "cosines.json")):
        logger.info("asv: up to date")
        return
    embedders = build_embedders(stage.exp_dir, int(hp["embed_batch_size"]))
    results: dict = {p: {} for p in PROTOCOLS}
    differences: dict = {p: {} for p in PROTOCOLS}
    cosines: dict = {}
    seconds = {m: 0.0 for m in MODELS}
    counts = {m: 0 for m in MODELS}
    rng = np.random.default_rng(int(hp["seed"]))
    for subset in hp["eval_subsets"]:
        utt2spk = evaluation_utterances(hp, subset, tag, rng)
        spk2gender = read_dict(Path(hp["data_folder"]) / subset / "spk2gender")
        utts = sorted(utt2spk)
        embeddings: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        for cond in CONDITIONS:
            scp = read_dict(condition_dir(hp["data_folder"], subset, cond, tag) / "wav.scp")
            signals = [load_audio(scp[u], hp["sample_rate"], utt=u)[0]
                       for u in tqdm(utts, desc=f"load {subset} {cond}", leave=False)]
            for model, embed in embedders.items():
                started = time.time()
                embeddings[(model, cond)] = dict(zip(utts, embed(signals)))
                seconds[model] += time.time() - started
                counts[model] += len(utts)
        cosines[subset] = per_utterance_cosines(embeddings, utts)
        for gender in ("m", "f"):
            protocols = {"paper": make_trials(utt2spk, spk2gender, gender, rng, int(hp["targets_per_speaker"]),
                                              int(hp["nontargets_per_speaker"])),
                         "extended": extended_trials(utt2spk, spk2gender, gender)}
            for protocol, trials in protocols.items():
                write_trials(out_dir / "trials" / f"{subset}_{gender}_{protocol}", trials)
                for model in MODELS:
                    metrics, diffs, det = score_cell(trials, embeddings, utt2spk, model, int(hp["bootstrap"]),
                                                     int(hp["seed"]))
                    results[protocol].setdefault(subset, {}).setdefault(gender, {})[model] = metrics
                    differences[protocol].setdefault(subset, {}).setdefault(gender, {})[model] = diffs
                    if protocol == "extended":
                        det_plot(det, out_dir / "det" / f"{subset}_{gender}_{model}.png",
                                   title=f"{subset} {gender} {model} (extended protocol)")
                    logger.info(f"asv: {protocol} {subset} {gender} {model}: " + ", ".join(
                        f"{k} {v['eer']:.1f} [{v['eer_lo']:.1f}, {v['eer_hi']:.1f}]" for k, v in metrics.items()))
    throughput = {m: {"utterances": counts[m], "seconds": seconds[m],
                      "utterances_per_second": counts[m] / max(seconds[m], 1e-9)} for m in MODELS}
    throughput["threads"] = torch.get_num_threads()
    atomic_write_text(out_dir / "throughput.json", json.dumps(throughput, indent=1) + "\n")
    atomic_write_text(out_dir / "cosines.json", json.dumps(cosines) + "\n")
    atomic_write_text(out_dir / "eer.json", json.dumps({"metrics": results, "differences": differences,
                                                        "bootstrap": int(hp["bootstrap"])}, indent=1) + "\n")
    logger.info(f"asv: wrote {out_dir}/eer.json")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.asv", main)
