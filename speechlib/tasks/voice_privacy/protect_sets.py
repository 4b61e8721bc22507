"""Stage 3 of egs/voice_privacy: protect (adv) and restore (rst) every evaluation set, and purify
the protected audio with the three baselines (an: noise at 25 dB SNR, qt: quantisation by 2^8,
ms: median smoothing, kernel 3).

    python -m speechlib.tasks.voice_privacy.protect_sets conf/x.yaml --output_folder exp/x

The protected audio is written as 16-bit wav and read back before restoration, as a recipient of
a shared file would. Outputs: exp/<tag>/audio/<set>/<cond>/<utt>.wav and a data dir per
condition, data/<set>_<cond>_<tag> (wav.scp, utt2spk, text, spk2utt, spk2gender), plus
exp/<tag>/audio/<set>/refused.txt listing inputs that could not be processed.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from speechlib.data.datadir import subset_data_dir
from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.signal.purification import PURIFIERS, purify
from speechlib.tasks.stage import start_stage
from speechlib.tasks.voice_privacy.apply import ApplyReport, process, transform
from speechlib.tasks.voice_privacy.model_io import load_model

CONDITIONS = ("adv", "rst", *PURIFIERS)


def condition_dir(data_folder: str | Path, subset: str, condition: str, tag: str) -> Path:
    """Where a condition's data dir lives (rec is the prepared subset itself)."""
    if condition == "rec":
        return Path(data_folder) / subset
    return Path(data_folder) / f"{subset}_{condition}_{tag}"


def protect_set(hp: dict, exp_dir: Path, subset: str, tag: str, threads: int) -> ApplyReport:
    torch.set_num_threads(threads)
    generator, remover = load_model(exp_dir, "generator"), load_model(exp_dir, "remover")
    source = Path(hp["data_folder"]) / subset
    audio = exp_dir / "audio" / subset
    scp = {cond: {} for cond in CONDITIONS}
    report = ApplyReport()
    for utt, _, adv in process(generator, read_dict(source / "wav.scp"), hp["sample_rate"], report, f"protect {subset}"):
        paths = {cond: audio / cond / f"{utt}.wav" for cond in CONDITIONS}
        write_audio(paths["adv"], adv, hp["sample_rate"])
        adv, _ = load_audio(str(paths["adv"]), hp["sample_rate"])  # what a recipient gets
        write_audio(paths["rst"], np.clip(transform(remover, adv), -1, 1), hp["sample_rate"])
        rng = np.random.default_rng([int(hp["seed"]), zlib.crc32(utt.encode())])
        for name in PURIFIERS:
            purified = purify(name, adv, rng, hp["purify_snr_db"], hp["purify_quant_factor"],
                              hp["purify_median_kernel"])
            write_audio(paths[name], np.clip(purified, -1, 1), hp["sample_rate"])
        for cond, path in paths.items():
            scp[cond][utt] = str(path.resolve())
    if report.refused:
        write_table(audio / "refused.txt", report.refused)
        for message in report.refused.values():
            print(f"protect_sets: refused: {message}")
    for cond in CONDITIONS:  # the source dir's tables for the utterances processed, new audio
        out = condition_dir(hp["data_folder"], subset, cond, tag)
        write_table(audio / f"{cond}.list", {utt: "" for utt in scp[cond]})
        subset_data_dir(source, out, utt_list=audio / f"{cond}.list")
        write_table(out / "wav.scp", scp[cond])
    return report


def main() -> None:
    stage = start_stage("protect_sets")
    hp = stage.hparams
    tag = stage.exp_dir.name
    outputs = tuple(condition_dir(hp["data_folder"], s, c, tag) / "wav.scp"
                    for s in hp["eval_subsets"] for c in CONDITIONS)
    if stage.is_done(outputs):
        print("protect_sets: up to date")
        return
    for subset in hp["eval_subsets"]:
        report = protect_set(hp, stage.exp_dir, subset, tag, int(hp.get("threads", 1)))
        print(f"protect_sets: {subset}: {report.summary()}")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.protect_sets", main)
