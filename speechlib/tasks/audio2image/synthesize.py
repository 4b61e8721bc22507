"""Stage 5b of egs/audio2image: a picture for every held-out sound, per system; Figure 4's grid.

    python -m speechlib.tasks.audio2image.synthesize conf/mini_audio2image.yaml --output_folder exp/x

Uses exp/<tag>/model (stage 5a: the seed-`seed` audio towers, the frozen tower, the VQGAN). Writes
generated/<system>/<utt>.png, generated/timing.json (seconds per picture) and
figure4_<system>.png (the sounds' names under the pictures; the paper's Figure 4 analog).
"""
from __future__ import annotations

import json
import textwrap
import time

import torch

from speechlib.data.image_pairs import save_png
from speechlib.io.atomic import atomic_path, atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.audio2image.common import (GENERATION_KEYS, SYSTEMS, picture_tensor, read_pairs, read_signals,
                                                user_dir)
from speechlib.tasks.audio2image.generate import LoadedModel, to_array
from speechlib.tasks.stage import start_stage


def grid_figure(path, rows: dict[str, list], names: list[str], real: list) -> None:
    """Pictures in a grid: one row per system plus the real pictures, sound names below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rows) + ["real picture"]
    fig, axes = plt.subplots(len(labels), len(names), figsize=(1.6 * len(names), 1.9 * len(labels)), squeeze=False)
    for r, label in enumerate(labels):
        pictures = rows[label] if label in rows else real
        for c, picture in enumerate(pictures):
            ax = axes[r, c]
            ax.imshow(picture)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == len(labels) - 1:
                ax.set_xlabel("\n".join(textwrap.wrap(names[c], 18)), fontsize=6)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main() -> None:
    stage = start_stage("synthesize", options=())
    hp = stage.hparams
    out = stage.exp_dir / "generated"
    timing_path = out / "timing.json"
    if stage.is_done((timing_path,)):
        print(f"synthesize: {out} is up to date")
        return
    device = stage.run_opts.get("device") or "cpu"
    test = read_pairs(f"{hp['data_folder']}/test")
    utts = sorted(test)
    signals = read_signals([test[u]["wav"] for u in utts], hp, utts)
    # the grid: the first sound effect of as many different classes as fit
    grid, seen = [], set()
    for utt in utts:
        if test[utt]["kind"] == "sfx" and test[utt]["label"] not in seen and len(grid) < hp["grid_sounds"]:
            grid.append(utt)
            seen.add(test[utt]["label"])
    timing, rows = {}, {}
    for system in SYSTEMS:
        # this stage's config: its generation settings can be overridden on the command line
        model = LoadedModel(user_dir(stage.exp_dir), system, device=device)
        model.settings = {**model.settings, **{k: hp[k] for k in GENERATION_KEYS}}  # overridable here
        start = time.perf_counter()
        pictures = model.generate(model.embed(signals), hp["gen_steps"], hp["seed"])
        seconds = (time.perf_counter() - start) / len(utts)
        for utt, picture in zip(utts, pictures):
            save_png(to_array(picture), out / system / f"{utt}.png")
        timing[system] = seconds
        rows[system] = [to_array(pictures[utts.index(u)]) for u in grid]
        print(f"synthesize: {system}: {len(utts)} pictures, {seconds:.2f} s per picture "
              f"({hp['gen_steps']} steps, {hp['gen_cutouts']} cutouts, device {device})")
    real = [to_array((picture_tensor(test[u]["image"], hp["image_size"]) + 1) / 2) for u in grid]
    names = [f"{test[u]['text']} ({test[u]['label']})" for u in grid]
    grid_figure(stage.exp_dir / "figure4_generated.png", {"WavBriVL": rows["wavbrivl"], "Wav2CLIP": rows["wav2clip"]},
                names, real)
    timing.update(steps=hp["gen_steps"], cutouts=hp["gen_cutouts"], device=device, threads=torch.get_num_threads())
    atomic_write_text(timing_path, json.dumps(timing, indent=1) + "\n")
    stage.mark_done()


if __name__ == "__main__":
    exit_on_input_error("audio2image.synthesize", main)
