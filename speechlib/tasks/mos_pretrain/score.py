"""Stage 6 of egs/mos_pretrain: Tables I, II, III and Figure 2 into exp/<tag>/RESULTS.md.

Every number comes from this run's files (encoders/<system>/meta.json and mos_<set>.json,
dnsmos/mos_<set>.json); the paper's numbers are printed under ours. A row that could not be
produced says why in its first cell.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.results.tables import ResultTable, write_results
from speechlib.signal.mixing import fit_length, mix_at_snr
from speechlib.signal.noise_labels import REGIONS, band_energies
from speechlib.tasks.mos_pretrain.systems import system_dir
from speechlib.tasks.stage import start_stage

# (row label, system, paper MSE, LCC, SRCC) -- Table I, VCC2018
TABLE1 = [
    ("PASE baseline", "pase_baseline", 0.420, 0.642, 0.621),
    ("- waveform", "pase_no_waveform", 0.449, 0.615, 0.574),
    ("- LPS", "pase_no_lps", 0.426, 0.635, 0.607),
    ("- MFCC", "pase_no_mfcc", 0.415, 0.649, 0.627),
    ("- Prosody", "pase_no_prosody", 0.449, 0.616, 0.569),
    ("- SPC", "pase_no_spc", 0.442, 0.621, 0.597),
    ("- GIM", "pase_no_gim", 0.441, 0.617, 0.588),
    ("- LIM", "pase_no_lim", 0.442, 0.619, 0.587),
    ("PASE + Noise workers", "pase_noise", 0.397, 0.666, 0.639),
    ("- SNR", "pase_noise_no_snr", 0.386, 0.680, 0.655),
    ("- Category of noise", "pase_noise_no_category", 0.423, 0.646, 0.618),
    ("- Spectral Energy Distribution", "pase_noise_no_region", 0.430, 0.631, 0.598),
    ("- MFCC, SNR", "pase_noise_no_mfcc_snr", 0.437, 0.636, 0.596),
]
# (row label, system, paper emb dim, paper total params, MSE, LCC, SRCC) -- Table II, VCC2018
TABLE2 = [
    ("PASE+", "pase_plus", 256, "-", 0.423, 0.655, 0.622),
    ("Dasheng (Base)", "dasheng", 768, "86M", 0.406, 0.667, 0.634),
    ("wav2vec 2.0 (Base)", "wav2vec2", 768, "95M", 0.452, 0.624, 0.602),
    ("HuBERT (Base)", "hubert", 768, "95M", 0.460, 0.634, 0.597),
    ("ME baseline", "masked_baseline", 128, "2.5M", 0.576, 0.440, 0.448),
    ("ME + Noise workers", "masked_noise", 100, "9.63M", 0.471, 0.583, 0.577),
    ("PASE baseline", "pase_baseline", 100, "12.88M", 0.420, 0.642, 0.621),
    ("PASE + Noise workers (w/o SNR)", "pase_noise_no_snr", 100, "12.94M", 0.386, 0.680, 0.655),
]
# Table III, NISQA
TABLE3 = [
    ("PASE baseline", "pase_baseline", 1.132, 0.516, 0.494),
    ("PASE + Noise workers (w/o SNR)", "pase_noise_no_snr", 0.448, 0.752, 0.754),
    ("Masked Encoder", "masked_baseline", 1.471, 0.057, 0.074),
    ("Masked Encoder + Noise workers", "masked_noise", 1.149, 0.453, 0.443),
]
DNSMOS_ROW = "DNSMOS P.835 OVRL (reference, not trained)"


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def metric_cells(result: dict | None) -> list:
    if result is None:
        return ["not run: stage 5 produced no result", None, None]
    if "not_run" in result:
        return [result["not_run"], None, None]
    return [result["mse"], result["lcc"], result["srcc"]]


def millions(count: int | None) -> str | None:
    return None if count is None else f"{count / 1e6:.2f}M"


def table1(exp: Path, vcc: str) -> ResultTable:
    rows, paper = {}, {}
    for label, system, *nums in TABLE1:
        rows[label] = metric_cells(read_json(system_dir(exp, system) / "mos_vcc.json"))
        paper[label] = list(nums)
    return ResultTable(f"Table I: worker ablation, PASE encoder, {vcc}", ["MSE", "LCC", "SRCC"], rows,
                       paper=paper, decimals=3,
                       caption="Upper half: PASE baseline (clean data) minus one worker; lower half: PASE + noise "
                               "workers (noisy data) minus workers.")


def table2(exp: Path, vcc: str) -> ResultTable:
    cols = ["Emb. Dim", "Total Param", "Encoder Param", "MSE", "LCC", "SRCC"]
    rows, paper = {}, {}
    for label, system, dim, total, *nums in TABLE2:
        folder = system_dir(exp, system)
        meta = read_json(folder / "meta.json") or {}
        result = read_json(folder / "mos_vcc.json")
        if result is not None and "not_run" in result:
            rows[label] = [result["not_run"], None, None, None, None, None]
        else:
            enc = meta.get("encoder_params")
            total_ours = None if enc is None else enc + int(meta.get("worker_params", 0))
            rows[label] = [meta.get("emb_dim"), millions(total_ours), millions(enc)] + metric_cells(result)
        paper[label] = [dim, total, None, *nums]
    dns = read_json(exp / "dnsmos" / "mos_vcc.json")
    rows[DNSMOS_ROW] = [None, None, None] + metric_cells(dns)
    return ResultTable(f"Table II: encoder comparison, {vcc}", cols, rows, paper=paper, decimals=3,
                       caption="Total Param: encoder + pre-training workers (ours, counted from the models); "
                               "Encoder Param: what the MOS head sees. The paper does not say which it counts.")


def table3(exp: Path, nisqa: str) -> ResultTable:
    rows, paper = {}, {}
    for label, system, *nums in TABLE3:
        rows[label] = metric_cells(read_json(system_dir(exp, system) / "mos_nisqa.json"))
        paper[label] = list(nums)
    rows[DNSMOS_ROW] = metric_cells(read_json(exp / "dnsmos" / "mos_nisqa.json"))
    return ResultTable(f"Table III: {nisqa}", ["MSE", "LCC", "SRCC"], rows, paper=paper, decimals=3)


def throughput_table(exp: Path, hp: dict) -> ResultTable:
    rows = {}
    for system in list(hp["pase_systems"]) + list(hp["masked_systems"]) + list(hp["plus_systems"]):
        meta = read_json(system_dir(exp, system) / "meta.json") or {}
        rows[system] = [meta.get("device"), meta.get("train_utts"), meta.get("epochs"),
                        meta.get("train_seconds"), meta.get("throughput_utts_per_s")]
    rows["paper settings on GPU"] = ["not run: no GPU in this session", None, None, None, None]
    return ResultTable("Pre-training cost (this run)", ["device", "utterances", "epochs", "seconds", "utterances/s"],
                       rows, decimals=2, caption=f"{hp['chunk_seconds']} s chunks; training time only (no validation).")


def figure2(exp: Path, hp: dict) -> str:
    """Spectral noise energy distribution of a noisy example at 0 dB (the paper uses street noise)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = Path(hp["data_folder"])
    sr = hp["sample_rate"]
    noises, cats = {}, {}
    for part in ("noise_train", "noise_test"):
        noises.update(read_dict(data / part / "wav.scp"))
        cats.update(read_dict(data / part / "utt2category"))
    # the paper shows street noise; the closest mini clips are vehicle sounds
    preferred = [c for c in sorted(noises) if any(k in c for k in ("street", "traffic", "vehicles"))]
    clip = (preferred or [c for c in sorted(noises) if cats[c] in ("things", "background")] or sorted(noises))[0]
    speech_utt, speech_wav = sorted(read_dict(data / "pretrain_eval" / "wav.scp").items())[0]
    speech = load_audio(speech_wav, sr, utt=speech_utt)[0][: 3 * sr]
    noise = load_audio(noises[clip], sr, utt=clip, on_rate_mismatch="resample")[0]
    _, _, scaled = mix_at_snr(speech, fit_length(noise, speech.size, np.random.default_rng(0)), 0.0)
    power = np.abs(np.fft.rfft(scaled.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(scaled.size, 1 / sr)
    bands = band_energies(scaled, sr)
    share = bands / bands.sum()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [2, 1]})
    smooth = np.convolve(power, np.ones(64) / 64, mode="same")
    ax1.semilogy(freqs, smooth + 1e-12, lw=0.8)
    for i, colour in enumerate(("tab:blue", "tab:orange", "tab:green")):
        ax1.axvspan(i * sr / 6, (i + 1) * sr / 6, alpha=0.12, color=colour, label=REGIONS[i])
    ax1.set_xlabel("frequency (Hz)")
    ax1.set_ylabel("noise power")
    ax1.legend(loc="upper right")
    ax1.set_title(f"noise '{clip}' at 0 dB SNR")
    ax2.bar(REGIONS, share * 100, color=["tab:blue", "tab:orange", "tab:green"])
    ax2.set_ylabel("share of noise energy (%)")
    ax2.set_title(f"label: {REGIONS[int(np.argmax(bands))]}")
    fig.tight_layout()
    fig.savefig(exp / "figure2.png", dpi=120)
    plt.close(fig)
    return "figure2.png"


def main() -> None:
    stage = start_stage("score")
    hp = stage.hparams
    exp = stage.exp_dir
    info = read_json(Path(hp["data_folder"]) / "info.json") or {}
    labels = info.get("mos_labels", {})
    notes = "\n".join([
        f"MOS labels: VCC2018 column: {labels.get('vcc', '?')}; NISQA column: {labels.get('nisqa', '?')}.",
        f"Data counts: {json.dumps(info.get('counts', {}))}.",
        "Downstream: frozen encoder, frame embeddings mean-pooled over time, head 64-LayerNorm-ReLU-dropout "
        f"0.2, output clipped to [1, 5], {hp['downstream']['epochs']} epochs (paper 1000), best validation epoch.",
        f"Pre-training: {hp['pretrain']['epochs']} epochs (paper 60) on {info.get('counts', {}).get('pretrain_train')} "
        "utterances; paper-scale configs (conf/paper_*.yaml) were not run: no GPU in this session.",
        "wav2vec 2.0 / HuBERT / Dasheng rows need local weights (db.sh); DNSMOS is an untrained reference row.",
    ])
    proxy = "proxy" in labels.get("vcc", "")
    vcc = "mini VCC2018-format set, PESQ labels" if proxy else "VCC2018 test set"
    nisqa = "mini NISQA-format set, PESQ labels" if "proxy" in labels.get("nisqa", "") else "NISQA (TEST_FOR)"
    tables = [table1(exp, vcc), table2(exp, vcc), table3(exp, nisqa), throughput_table(exp, hp)]
    path = write_results(exp, "egs/mos_pretrain: noise-aware pre-training for MOS prediction", tables,
                         corpus=str(hp["corpus"]), notes=notes, figures=[figure2(exp, hp)])
    print(f"score: wrote {path} and {exp / 'figure2.png'}")


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.score", main)
