"""Benchmark egs/audio2image: audio embedding throughput and seconds per generated picture.

Measured (issue 15), each beside a peer in the same run:
  embedding   clips/s of 2-s clips on ONE CPU thread, batch 16, for the mini config's WavBriVL
              tower (WavLM architecture) and Wav2CLIP tower (ResNet-18 on log-mel);
              peer: the clips' own duration (x real time);
  generation  seconds per picture of the VQGAN latent optimisation (mini config: 32x32, 8
              cutouts per step), batched over pictures and cutouts (one grid_sample and one tower
              call per step); peer: the same steps with a Python loop over cutouts, one tower call
              each (what "batched over cutouts" saves);
  threads     the batched generation again with 2 torch threads (run.sh --nj 2 gives stages 4-6
              nj threads on CPU); peer: the 1-thread time above.
The machine's load average is recorded: the project's machine is shared by 8 people.

    python tests/benchmarks/bench_audio2image.py [--steps 10] [--pictures 8]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results" / "audio2image.json"
CONFIG = REPO / "egs/audio2image/conf/mini_audio2image.yaml"


def load_config() -> dict:
    from hyperpyyaml import load_hyperpyyaml

    with open(CONFIG, encoding="utf-8") as handle:
        return load_hyperpyyaml(handle)


def bench_embedding(hp: dict, clips: int = 64, seconds: float = 2.0) -> dict:
    import torch

    from speechlib.nn.audio_image import AudioImageCLIP

    wavs = 0.1 * torch.randn(clips, int(seconds * hp["sample_rate"]))
    result = {}
    from speechlib.tasks.audio2image.common import build

    for name in ("wavbrivl", "wav2clip"):   # embed_audio: the audio tower + normalise
        model = AudioImageCLIP(build(name, hp[name]), build("image_tower", hp["image_tower"])).eval()
        with torch.no_grad():
            model.embed_audio(wavs[:16])  # warm-up
            start = time.perf_counter()
            for first in range(0, clips, 16):
                model.embed_audio(wavs[first:first + 16])
            wall = time.perf_counter() - start
        result[name] = {"clips_per_s": clips / wall, "x_real_time": clips * seconds / wall, "clips": clips,
                        "clip_seconds": seconds}
    return result


def bench_generation(hp: dict, steps: int, pictures: int) -> dict:
    import torch
    import torch.nn.functional as F

    from speechlib.nn.vqgan import generate_images, make_cutouts, spherical_distance_sq
    from speechlib.tasks.audio2image.common import build

    vq, tower = build("vqgan", hp["vqgan"]).eval(), build("image_tower", hp["image_tower"]).eval()
    for module in (vq, tower):
        for param in module.parameters():
            param.requires_grad_(False)
    targets = F.normalize(torch.randn(pictures, hp["embed_dim"]), dim=-1)
    args = (steps, hp["gen_lr"], hp["gen_cutouts"], hp["gen_cut_size"], hp["latent_size"], hp["gen_min_fraction"])
    start = time.perf_counter()
    generate_images(vq, tower, targets, *args)
    batched = (time.perf_counter() - start) / pictures

    # peer: the same loop, but each cutout cut and encoded on its own
    latent = vq.quantize.lookup(torch.randint(vq.quantize.embedding.weight.shape[0],
                                              (pictures, hp["latent_size"], hp["latent_size"]))).requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=hp["gen_lr"])
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        images = vq.decode(latent).clamp(-1, 1)
        losses = []
        for index in range(pictures):
            for _ in range(hp["gen_cutouts"]):
                crop = make_cutouts(images[index:index + 1], 1, hp["gen_cut_size"], hp["gen_min_fraction"], generator)
                losses.append(spherical_distance_sq(tower(crop), targets[index:index + 1]).mean())
        loss = torch.stack(losses).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    looped = (time.perf_counter() - start) / pictures
    torch.set_num_threads(2)
    start = time.perf_counter()
    generate_images(vq, tower, targets, *args)
    two_threads = (time.perf_counter() - start) / pictures
    torch.set_num_threads(1)
    return {"seconds_per_picture": batched, "seconds_per_picture_2_threads": two_threads,
            "speedup_from_2_threads": batched / two_threads, "seconds_per_picture_loop_over_cutouts": looped,
            "speedup_from_batching": looped / batched, "steps": steps, "cutouts": hp["gen_cutouts"],
            "pictures": pictures, "picture_size": hp["image_size"],
            "seconds_per_picture_at_config_steps": batched * hp["gen_steps"] / steps,
            "config_steps": hp["gen_steps"]}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--pictures", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    hp = load_config()
    result = {"machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "threads": 1,
                          "python": platform.python_version(), "torch": torch.__version__,
                          "note": "shared machine (8 people on 2 cores): absolute numbers are pessimistic"},
              "embedding": bench_embedding(hp), "generation": bench_generation(hp, args.steps, args.pictures)}
    result["machine"]["load_average_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
