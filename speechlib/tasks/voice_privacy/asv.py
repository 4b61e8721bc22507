"""Stage 4 of egs/voice_privacy: ASV evaluation (the paper's Table 1).

    python -m speechlib.tasks.voice_privacy.asv conf/x.yaml --output_folder exp/x

Per evaluation set and gender: trial lists with 1 target + 30 non-target trials per speaker
(written to exp/<tag>/asv/trials/<set>_<gender>), cosine scoring of embeddings from the
white-box (ECAPA) and black-box models, EER for rec-rec, rec-adv, adv-adv, rec-rst and rec-an.
Trials use only utterances present in every condition (stage 3 may have refused some).
Results: exp/<tag>/asv/eer.json; embedding throughput: exp/<tag>/asv/throughput.json.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from speechlib.data.trials import make_trials, write_trials
from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.verification import cosine_scores, eer
from speechlib.nn.speaker import embed_batched, load_pretrained
from speechlib.tasks.stage import start_stage
from speechlib.tasks.voice_privacy.protect_sets import condition_dir

# (enrolment condition, test condition) per Table 1 column
CONDITION_PAIRS = {"rec-rec": ("rec", "rec"), "rec-adv": ("rec", "adv"), "adv-adv": ("adv", "adv"),
                   "rec-rst": ("rec", "rst"), "rec-an": ("rec", "an")}
MODELS = ("white", "black")


def subset_trials(hp: dict, subset: str, tag: str, out_dir: Path) -> dict[str, list]:
    """Trials per gender over the utterances every condition has."""
    rng = np.random.default_rng(int(hp["seed"]))
    source = Path(hp["data_folder"]) / subset
    utt2spk = read_dict(source / "utt2spk")
    for cond in ("adv", "rst", "an"):
        present = read_dict(condition_dir(hp["data_folder"], subset, cond, tag) / "wav.scp")
        utt2spk = {u: s for u, s in utt2spk.items() if u in present}
    spk2gender = read_dict(source / "spk2gender")
    trials = {}
    for gender in ("m", "f"):
        trials[gender] = make_trials(utt2spk, spk2gender, gender, rng, int(hp["targets_per_speaker"]),
                                     int(hp["nontargets_per_speaker"]))
        write_trials(out_dir / "trials" / f"{subset}_{gender}", trials[gender])
    return trials


def main() -> None:
    stage = start_stage("asv")
    hp = stage.hparams
    tag, out_dir = stage.exp_dir.name, stage.exp_dir / "asv"
    if stage.is_done((out_dir / "eer.json",)):
        print("asv: up to date")
        return
    torch.set_num_threads(int(hp.get("threads", 1)))
    encoders = {role: load_pretrained(stage.exp_dir / f"speaker_{role}") for role in MODELS}
    results: dict = {}
    embedded_utts, embed_seconds, audio_seconds = 0, 0.0, 0.0
    for subset in hp["eval_subsets"]:
        trials = subset_trials(hp, subset, tag, out_dir)
        needed = sorted({u for ts in trials.values() for e, t, _ in ts for u in (e, t)})
        conditions = sorted({c for pair in CONDITION_PAIRS.values() for c in pair})
        signals = {}
        for cond in conditions:
            scp = read_dict(condition_dir(hp["data_folder"], subset, cond, tag) / "wav.scp")
            signals[cond] = [load_audio(scp[u], hp["sample_rate"], utt=u)[0]
                             for u in tqdm(needed, desc=f"load {subset} {cond}", leave=False)]
        embeddings: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        for role, encoder in encoders.items():
            for cond in conditions:
                started = time.time()
                matrix = embed_batched(encoder, signals[cond], int(hp["embed_batch_size"]))
                embed_seconds += time.time() - started
                embedded_utts += len(needed)
                audio_seconds += sum(len(s) for s in signals[cond]) / hp["sample_rate"]
                embeddings[(role, cond)] = dict(zip(needed, matrix))
        for gender, gender_trials in trials.items():
            labels = np.array([y for _, _, y in gender_trials])
            for role in MODELS:
                for column, (enroll_cond, test_cond) in CONDITION_PAIRS.items():
                    enroll = np.stack([embeddings[(role, enroll_cond)][e] for e, _, _ in gender_trials])
                    test = np.stack([embeddings[(role, test_cond)][t] for _, t, _ in gender_trials])
                    value = 100 * eer(cosine_scores(enroll, test), labels)
                    results.setdefault(subset, {}).setdefault(gender, {}).setdefault(role, {})[column] = value
            row = results[subset][gender]
            print(f"asv: {subset} {gender}: white " + " ".join(f"{k} {v:.2f}" for k, v in row["white"].items())
                  + " | black " + " ".join(f"{k} {v:.2f}" for k, v in row["black"].items()), flush=True)
    throughput = {"utterances": embedded_utts, "seconds": embed_seconds,
                  "utterances_per_second": embedded_utts / max(embed_seconds, 1e-9),
                  "real_time_factor": audio_seconds / max(embed_seconds, 1e-9),
                  "batch_size": int(hp["embed_batch_size"]), "threads": torch.get_num_threads()}
    atomic_write_text(out_dir / "throughput.json", json.dumps(throughput, indent=1) + "\n")
    atomic_write_text(out_dir / "eer.json", json.dumps(results, indent=1) + "\n")
    print(f"asv: embeddings {throughput['utterances_per_second']:.1f} utterances/s; wrote {out_dir}/eer.json")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.asv", main)
