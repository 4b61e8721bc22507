"""Stage 0 of egs/mos_pretrain: data dirs for pre-training speech, noise and the MOS sets.

    python -m speechlib.tasks.mos_pretrain.prepare conf/mini_mos_pretrain.yaml --output_folder exp/x \\
        --librispeech "$LIBRISPEECH" --nisqa "$NISQA" ...

Writes under data_folder: pretrain_train, pretrain_eval (LibriSpeech speech), noise_train,
noise_test (utt2category: AudioSet top-level category), and <set>_{train,valid,test} (utt2mos)
for set vcc and nisqa. An empty corpus variable means the mini corpus; for the MOS sets that
means the mini sets of speechlib.tasks.mos_pretrain.mini_mos (DistillMOS-labelled), built here in
the corpora's release formats and then read by the same prep code as the real corpora.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from speechlib.data import librispeech, mini
from speechlib.data.corpora import resolve_corpus
from speechlib.data.datadir import combine_data_dirs, subset_data_dir
from speechlib.data.nisqa import NISQA_SETS, read_nisqa_set, write_mos_datadir
from speechlib.data.noise_corpora import fsdkaggle2018_clips, named_clips, write_noise_datadir
from speechlib.data.vcc2018 import read_vcc2018, split_rows
from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict, write_table
from speechlib.signal.noise_labels import is_silent
from speechlib.results.environment import mini_corpus_identity
from speechlib.tasks.mos_pretrain.mini_mos import build_mini_nisqa, build_mini_vcc
from speechlib.tasks.mos_pretrain.systems import fingerprint
from speechlib.tasks.stage import start_stage

MOS_SPLITS = ("train", "valid", "test")
PREPARE_KEYS = ("seed", "data_folder", "sample_rate", "librispeech", "fsdkaggle2018", "pnl", "noisex92",
                "vcc2018", "nisqa", "pretrain_subsets", "pretrain_train_utts", "pretrain_eval_utts",
                "noise_test_fraction", "vcc_split", "mini_vcc_sources", "mini_nisqa_source", "mini_nisqa_sizes",
                "mini_mos_max_seconds")


def pick(data_dir: Path, count: int | None, seed: int, dest: Path, exclude: set[str] = frozenset()) -> list[str]:
    """A seeded random subset of `count` utterances (all when None) written to dest."""
    utts = sorted(set(read_dict(data_dir / "wav.scp")) - set(exclude))
    if count is not None:
        if count > len(utts):
            raise InputError(f"asked for {count} utterances, {data_dir} has {len(utts)}")
        utts = sorted(utts[i] for i in np.random.default_rng(seed).permutation(len(utts))[:count])
    ids = dest.parent / f".{dest.name}.ids"
    ids.parent.mkdir(parents=True, exist_ok=True)
    ids.write_text("".join(u + "\n" for u in utts))
    subset_data_dir(data_dir, dest, utt_list=ids)
    ids.unlink()
    return utts


def prepare_speech(hp: dict, data: Path) -> tuple[Path, bool]:
    root, is_mini = resolve_corpus("LIBRISPEECH", hp["librispeech"], "LibriSpeech",
                                   expect=tuple(hp["pretrain_subsets"]))
    parts = []
    for subset in hp["pretrain_subsets"]:
        librispeech.prepare(root / subset, data / "local" / subset)
        parts.append(data / "local" / subset)
    pool = data / "local" / "pretrain_pool"
    if len(parts) > 1:
        combine_data_dirs(pool, parts)
    else:
        pool = parts[0]
    n_train, n_eval = hp["pretrain_train_utts"], hp["pretrain_eval_utts"]
    if n_train is None:  # all utterances: 10% held out for evaluation, as the paper's 23,868 / 2,652
        total = len(read_dict(pool / "wav.scp"))
        n_eval = n_eval or total // 10
        n_train = total - n_eval
    held = pick(pool, n_eval, hp["seed"] + 1, data / "pretrain_eval")
    pick(pool, n_train, hp["seed"], data / "pretrain_train", exclude=set(held))
    return root, is_mini


def prepare_noise(hp: dict, data: Path) -> None:
    """All noise clips (real corpora or the mini pool), silent ones dropped, split train / test
    per category (the test clips only degrade the mini MOS sets, never pre-training data)."""
    real = {"FSDKAGGLE2018": hp["fsdkaggle2018"], "PNL": hp["pnl"], "NOISEX92": hp["noisex92"]}
    if any(str(v or "").strip() for v in real.values()):
        clips: dict[str, tuple[Path, str]] = {}
        if str(real["FSDKAGGLE2018"] or "").strip():
            clips.update(fsdkaggle2018_clips(resolve_corpus("FSDKAGGLE2018", real["FSDKAGGLE2018"], "")[0]))
        for var, prefix in (("PNL", "pnl"), ("NOISEX92", "noisex")):
            if str(real[var] or "").strip():
                clips.update(named_clips(resolve_corpus(var, real[var], "")[0], prefix, var))
        pool = write_noise_datadir(clips, data / "local" / "noise_pool")
    else:
        pool = mini.noise_pool(data / "local" / "noise_pool")
    wavs, cats = read_dict(pool / "wav.scp"), read_dict(pool / "utt2category")
    keep, silent = {}, []
    for clip, wav in wavs.items():
        (silent.append(clip) if is_silent(load_audio(wav, hp["sample_rate"], utt=clip,
                                                     on_rate_mismatch="resample")[0]) else keep.update({clip: wav}))
    if silent:
        print(f"prepare: {len(silent)} silent noise clip(s) dropped: {', '.join(silent[:5])}")
    rng = np.random.default_rng(hp["seed"])
    test = set()
    for cat in sorted(set(cats.values())):
        members = sorted(c for c in keep if cats[c] == cat)
        n_test = int(round(hp["noise_test_fraction"] * len(members))) if len(members) > 1 else 0
        test.update(members[i] for i in rng.permutation(len(members))[:n_test])
    for name, chosen in (("noise_train", sorted(set(keep) - test)), ("noise_test", sorted(test))):
        out = data / name
        out.mkdir(parents=True, exist_ok=True)
        write_table(out / "wav.scp", {c: keep[c] for c in chosen})
        write_table(out / "utt2category", {c: cats[c] for c in chosen})
        write_table(out / "utt2spk", {c: c for c in chosen})
        write_table(out / "spk2utt", {c: c for c in chosen})


def mini_sources(hp: dict, data: Path, subset: str, exclude: set[str] = frozenset()
                 ) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
    """Utterances of a mini LibriSpeech subset (minus `exclude`) and the held-out noise clips."""
    root = mini.librispeech_root()
    librispeech.prepare(root / subset, data / "local" / subset)
    utts = sorted((u, w) for u, w in read_dict(data / "local" / subset / "wav.scp").items() if u not in exclude)
    noises = [load_audio(w, hp["sample_rate"], on_rate_mismatch="resample")[0]
              for w in read_dict(data / "noise_test" / "wav.scp").values()]
    if not noises:
        raise InputError("no held-out noise clips for the mini MOS sets (raise noise_test_fraction)")
    return utts, noises


def prepare_mos(hp: dict, data: Path) -> dict[str, str]:
    labels = {}
    nj = int(hp["nj"])
    cache = data / "local" / "distillmos_labels.json"  # by file content: a killed stage 0 resumes its labelling
    label_source = "DistillMOS (predictor trained on human ratings), mini degradations"
    # NISQA
    if str(hp["nisqa"] or "").strip():
        root = resolve_corpus("NISQA", hp["nisqa"], "")[0]
        set_names, labels["nisqa"] = NISQA_SETS, "subjective MOS (NISQA corpus)"
    else:
        root = data / "mini_mos" / "nisqa"
        utts, noises = mini_sources(hp, data, hp["mini_nisqa_source"], exclude=set(read_dict(
            data / "pretrain_train" / "wav.scp")) | set(read_dict(data / "pretrain_eval" / "wav.scp")))
        set_names = build_mini_nisqa(utts, noises, dict(hp["mini_nisqa_sizes"]), root, hp["seed"] + 7,
                                     hp["sample_rate"], hp["mini_mos_max_seconds"], nj, cache)
        labels["nisqa"] = label_source
    for split in MOS_SPLITS:
        write_mos_datadir(read_nisqa_set(root, set_names[split]), data / f"nisqa_{split}")
    # VCC2018
    sizes = tuple(hp["vcc_split"])
    if str(hp["vcc2018"] or "").strip():
        rows, labels["vcc"] = read_vcc2018(resolve_corpus("VCC2018", hp["vcc2018"], "")[0])
    else:
        root = data / "mini_mos" / "vcc"
        utts = []
        for source in hp["mini_vcc_sources"]:
            part, noises = mini_sources(hp, data, source)
            utts += part
        build_mini_vcc(utts, noises, min(len(utts), sum(sizes)), root, hp["seed"] + 11, hp["sample_rate"],
                       hp["mini_mos_max_seconds"], nj, cache)
        rows, _ = read_vcc2018(root)
        labels["vcc"] = label_source
    for split, part in zip(MOS_SPLITS, split_rows(rows, sizes, hp["seed"])):
        write_mos_datadir(part, data / f"vcc_{split}")
    return labels


def main() -> None:
    stage = start_stage("prepare")
    hp = stage.hparams
    data = Path(hp["data_folder"])
    # done = same data options (not the whole config: a change of pre-training or head settings
    # must not re-label the MOS sets)
    # and the mini corpus's identity: a rebuilt mini corpus is prepared (and labelled) again
    stage.fingerprint = fingerprint(*(hp[k] for k in PREPARE_KEYS), mini_corpus_identity())
    outputs = [data / "pretrain_train" / "wav.scp", data / "noise_train" / "wav.scp"] + \
              [data / f"{s}_{p}" / "utt2mos" for s in ("vcc", "nisqa") for p in MOS_SPLITS]
    if stage.is_done(tuple(outputs)):
        print(f"prepare: {data} is up to date")
        return
    _, is_mini = prepare_speech(hp, data)
    prepare_noise(hp, data)
    labels = prepare_mos(hp, data)
    info = {"speech": "mini" if is_mini else "LibriSpeech", "mos_labels": labels,
            "counts": {name: len(read_dict(data / name / "wav.scp")) for name in
                       ["pretrain_train", "pretrain_eval", "noise_train", "noise_test"] +
                       [f"{s}_{p}" for s in ("vcc", "nisqa") for p in MOS_SPLITS]}}
    (data / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    stage.mark_done()
    print("prepare: " + ", ".join(f"{k} {v}" for k, v in info["counts"].items()))


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.prepare", main)
