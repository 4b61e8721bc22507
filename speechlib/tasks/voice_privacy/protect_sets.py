"""Stage 3 of egs/voice_privacy: protect (adv) and restore (rst) every evaluation set, purify the
protected audio with the three baselines (an: noise at 25 dB SNR, qt: quantisation by 2^8, ms:
median smoothing, kernel 3), and write the control gn: the *recording* plus Gaussian noise at the
SNR its adversarial perturbation has, so that "is the learned perturbation better than noise of
the same loudness?" can be answered.

    python -m speechlib.tasks.voice_privacy.protect_sets conf/x.yaml --output_folder exp/x

Protection never clips (speechlib.tasks.voice_privacy.headroom: a recording too close to full
scale is scaled first; the gain is written to the adv dir's utt2gain and undone by restore). The
protected audio is written as 16-bit wav and read back before restoration, as a recipient of a
shared file would. Outputs: exp/<tag>/audio/<set>/<cond>/<utt>.wav and a data dir per condition,
data/<set>_<cond>_<tag> (wav.scp, utt2spk, text, spk2utt, spk2gender), plus
exp/<tag>/audio/<set>/refused.txt listing inputs that could not be processed.
"""
from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechlib.data.datadir import subset_data_dir
from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.signal.mixing import scale_to_snr, snr_db
from speechlib.signal.purification import PURIFIERS, purify
from speechlib.tasks.stage import start_stage
from speechlib.tasks.voice_privacy.headroom import protect_signal, restore_signal
from speechlib.tasks.voice_privacy.model_io import load_model

logger = logging.getLogger("voice_privacy.protect_sets")

CONTROL = "gn"  # the recording plus Gaussian noise at the adversarial perturbation's SNR
CONDITIONS = ("adv", "rst", *PURIFIERS, CONTROL)


def condition_dir(data_folder: str | Path, subset: str, condition: str, tag: str) -> Path:
    """Where a condition's data dir lives (rec is the prepared subset itself)."""
    if condition == "rec":
        return Path(data_folder) / subset
    return Path(data_folder) / f"{subset}_{condition}_{tag}"


def matched_noise(recording: np.ndarray, protected: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(recording + Gaussian noise as loud as protected - recording, that SNR in dB)."""
    snr = float(snr_db(recording, protected - recording))
    noise = scale_to_snr(recording, rng.standard_normal(recording.shape).astype(np.float32), snr)
    return (recording + noise).astype(np.float32), snr


def protect_set(hp: dict, exp_dir: Path, subset: str, tag: str) -> tuple[int, dict[str, str]]:
    """Every condition of one evaluation set; returns (utterances done, refused {utt: why})."""
    generator, remover = (load_model(exp_dir, which).for_inference() for which in ("generator", "remover"))
    rate = hp["sample_rate"]
    source = Path(hp["data_folder"]) / subset
    audio = exp_dir / "audio" / subset
    scp: dict[str, dict[str, str]] = {cond: {} for cond in CONDITIONS}
    gains, adv_snr, refused = {}, {}, {}
    for utt, spec in tqdm(sorted(read_dict(source / "wav.scp").items()), desc=f"protect {subset}", leave=False):
        try:
            recording, _ = load_audio(spec, rate, utt=utt)
        except InputError as err:
            refused[utt] = str(err)
            continue
        if recording.size < generator.receptive_field:
            refused[utt] = f"{recording.size} samples, shorter than the model's receptive field"
            continue
        paths = {cond: audio / cond / f"{utt}.wav" for cond in CONDITIONS}
        protected, gains[utt] = protect_signal(generator, recording)
        write_audio(paths["adv"], protected, rate)
        protected, _ = load_audio(str(paths["adv"]), rate)  # what a recipient gets
        write_audio(paths["rst"], np.clip(restore_signal(remover, protected, gains[utt]), -1, 1), rate)
        rng = np.random.default_rng([int(hp["seed"]), zlib.crc32(utt.encode())])
        for name in PURIFIERS:
            purified = purify(name, protected, rng, hp["purify_snr_db"], hp["purify_quant_factor"],
                              hp["purify_median_kernel"])
            write_audio(paths[name], np.clip(purified, -1, 1), rate)
        control, adv_snr[utt] = matched_noise(recording, protected, rng)
        write_audio(paths[CONTROL], np.clip(control, -1, 1), rate)
        for cond, path in paths.items():
            scp[cond][utt] = str(path.resolve())
    if refused:
        write_table(audio / "refused.txt", refused)
        for utt, message in refused.items():
            logger.info(f"protect_sets: refused {utt}: {message}")
    for cond in CONDITIONS:  # the source dir's tables for the utterances processed, new audio
        out = condition_dir(hp["data_folder"], subset, cond, tag)
        write_table(audio / f"{cond}.list", {utt: "" for utt in scp[cond]})
        subset_data_dir(source, out, utt_list=audio / f"{cond}.list")
        write_table(out / "wav.scp", scp[cond])
    adv_dir = condition_dir(hp["data_folder"], subset, "adv", tag)
    write_table(adv_dir / "utt2gain", {u: f"{g:.9g}" for u, g in gains.items()})
    write_table(condition_dir(hp["data_folder"], subset, CONTROL, tag) / "utt2snr",
                {u: f"{s:.4f}" for u, s in adv_snr.items()})
    scaled = sum(g < 1.0 for g in gains.values())
    logger.info(f"protect_sets: {subset}: {len(gains)} utterances, {len(refused)} refused, {scaled} scaled down "
                f"for headroom, matched-noise SNR mean {np.mean(list(adv_snr.values())):.2f} dB")
    return len(gains), refused


def main() -> None:
    stage = start_stage("protect_sets", options=())
    hp = stage.hparams
    tag = stage.exp_dir.name
    outputs = tuple(condition_dir(hp["data_folder"], s, c, tag) / "wav.scp"
                    for s in hp["eval_subsets"] for c in CONDITIONS)
    if stage.is_done(outputs):
        logger.info("protect_sets: up to date")
        return
    for subset in hp["eval_subsets"]:
        protect_set(hp, stage.exp_dir, subset, tag)
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.protect_sets", main)
