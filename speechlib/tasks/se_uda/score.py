"""Stage 7 of egs/se_uda, one scoring job: enhance part JOB of every test set with every
system and score it (PESQ wide-band, STOI, SI-SDR; DNSMOS on a few SNR-0 utterances).

    python -m speechlib.tasks.se_uda.score conf/mini_se_uda.yaml --output_folder exp/x --job 1 --nj 2 \
        --device cpu

Enhancement runs on `--device` (run.sh: the GPU when --ngpu > 0, one job; else --nj CPU jobs);
the metrics run on the CPU.
Run as a job array (`$decode_cmd JOB=1:N ...`) over `<test set>/split<N>utt/<JOB>` (made by
utils/split_data.sh --per-utt). Per-utterance scores go to exp/<tag>/scores/<set>/<system>.<JOB>.tsv;
report.py merges them. `--print_test_sets` prints the test data dirs (for run.sh's split step).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechlib.io.atomic import atomic_write_text
from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.metrics.enhancement import DNSMOS, intrusive_scores
from speechlib.tasks.se_uda.common import SYSTEMS, load_model, model_dir
from speechlib.tasks.se_uda.enhancer import enhance
from speechlib.tasks.stage import Option, start_stage

COLUMNS = ("pesq", "stoi", "si_sdr", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


def test_sets(hp: dict) -> list[str]:
    """Every scored set: target (Table 1), DNS English (Table 2), source domain (every run)."""
    return [f"target_test_snr{snr}" for snr in hp["test_snrs"]] + \
           [f"english_test_snr{snr}" for snr in hp["english_test_snrs"]] + \
           [f"source_test_snr{snr}" for snr in hp["source_test_snrs"]]


def write_scores(path: Path, rows: dict[str, dict[str, float]]) -> None:
    lines = ["utt\t" + "\t".join(COLUMNS)]
    for utt in sorted(rows):
        lines.append(utt + "\t" + "\t".join(f"{rows[utt].get(c, math.nan):.6g}" for c in COLUMNS))
    atomic_write_text(path, "\n".join(lines) + "\n")


def score_set(hp: dict, exp_dir: Path, name: str, job: int, nj: int, dnsmos, device: str) -> None:
    data = Path(hp["data_folder"]) / name
    part = data / f"split{nj}utt" / str(job)
    if not part.is_dir():
        raise InputError(f"no split for job {job}: run utils/split_data.sh --per-utt {data} {nj}", str(part))
    sr = hp["sample_rate"]
    wav, speech_ref = read_dict(part / "wav.scp"), read_dict(data / "utt2speech")
    utts = sorted(wav)
    all_utts = sorted(read_dict(data / "wav.scp"))
    mos_utts: set[str] = set()
    if dnsmos is not None and name.startswith("target_test") and name.endswith("snr0") and int(hp["dnsmos_utts"]) > 0:
        # evenly spread over the set, so that the jobs of a per-utterance split share the work
        picks = np.linspace(0, len(all_utts) - 1, min(len(all_utts), int(hp["dnsmos_utts"]))).round()
        mos_utts = {all_utts[int(i)] for i in picks}
    policy = hp["on_rate_mismatch"]
    mixtures = [load_audio(wav[u], sr, utt=u, on_rate_mismatch=policy)[0] for u in utts]
    references = [load_audio(speech_ref[u], sr, utt=u, on_rate_mismatch=policy)[0] for u in utts]
    out_dir = exp_dir / "scores" / name
    for system in tqdm(("noisy",) + SYSTEMS, desc=f"score {name} (job {job})", leave=False):
        if system == "noisy":
            estimates = mixtures
        else:
            estimates = enhance(load_model(model_dir(exp_dir, system)), mixtures, int(hp["score_batch_size"]),
                                device, sr)
        rows = {}
        for utt, est, ref in zip(utts, estimates, references):
            rows[utt] = intrusive_scores(est, ref, sr)
            if utt in mos_utts:
                rows[utt].update(dnsmos(est, sr))
        write_scores(out_dir / f"{system}.{job}.tsv", rows)


PRINT_SETS = Option("print_test_sets", "print the test data dirs (for run.sh's split step) and exit", flag=True)


def main() -> None:
    stage = start_stage("score.{job}of{nj}", options=(PRINT_SETS,), jobs=True)
    hp = stage.hparams
    if stage.options.get("print_test_sets"):
        print("\n".join(str(Path(hp["data_folder"]) / s) for s in test_sets(hp)))
        return
    missing = [s for s in SYSTEMS if not (model_dir(stage.exp_dir, s) / "model.json").is_file()]
    if missing:
        raise InputError(f"models missing: {', '.join(missing)} (run stages 2-6 first)", str(stage.exp_dir))
    outputs = tuple(stage.exp_dir / "scores" / name / f"{system}.{stage.job}.tsv"
                    for name in test_sets(hp) for system in ("noisy",) + SYSTEMS)
    if stage.is_done(outputs):
        print(f"score job {stage.job}/{stage.nj}: up to date")
        return
    device = str(stage.run_opts.get("device") or "cpu")
    dnsmos = DNSMOS() if hp["dnsmos"] else None
    for name in test_sets(hp):
        score_set(hp, stage.exp_dir, name, stage.job, stage.nj, dnsmos, device)
    stage.mark_done()
    print(f"score job {stage.job}/{stage.nj}: done")


if __name__ == "__main__":
    exit_on_input_error("se_uda.score", main)
