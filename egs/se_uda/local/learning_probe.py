"""Learning probe: how far the supervised U-Net gets per step and per CPU second (README, "What
limits learning on the mini corpus").

    python local/learning_probe.py conf/mini_se_uda.yaml --steps 800 --every 100 \
        --set batch_size=4 --set segment_seconds=1.0 [--system target] [--out probe.json]

The loop is the source (or oracle target) training of stage 2 without the kit's checkpoints and
logs: the same on-the-fly mixtures (train.remixed / train.oracle_set), loss, LR schedule
(brains.cosine_lr over --steps) and gradient clipping (5). Every --every steps it prints
step, process CPU seconds (all, and the part spent drawing mixtures), the last batch loss and the
SI-SDRi on the fixed validation set. CPU seconds, not wall seconds, so that probes run on a loaded
shared machine compare with each other and with an idle one.
"""
from __future__ import annotations

import argparse
import ast
import json
import time

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from speechlib.nn.losses import si_sdr, speech_noise_loss
from speechlib.tasks.se_uda.brains import cosine_lr
from speechlib.tasks.se_uda.common import build_unet
from speechlib.tasks.se_uda.train import oracle_set, remixed, valid_set


def override(hp: dict, assignment: str) -> None:
    """key=value (a Python literal); `unet.key=value` sets one U-Net option."""
    key, value = assignment.split("=", 1)
    parsed = ast.literal_eval(value)
    if key.startswith("unet."):
        hp["unet"] = {**hp["unet"], key[5:]: parsed}
    else:
        hp[key] = parsed


def stacked(items: list[dict], key: str) -> torch.Tensor:
    return torch.stack([item[key] for item in items])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--system", choices=("source", "target"), default="source")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], help="key=value override (repeatable)")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open(args.config) as handle:
        hp = load_hyperpyyaml(handle)
    for assignment in args.set:
        override(hp, assignment)
    torch.manual_seed(int(hp["seed"]))
    train = remixed(hp, "source", True) if args.system == "source" else oracle_set(hp)[0]
    parts = train.datasets if hasattr(train, "datasets") else [train]
    valid = valid_set(hp) if args.system == "source" else valid_set(hp, "target_valid")
    valid_items = [(valid[i]["sig"][None], valid[i]["speech_sig"][None]) for i in range(len(valid))]
    model = build_unet(hp)
    optimiser = torch.optim.Adam(model.parameters(), hp["lr"])
    batch = int(hp["batch_size"])
    rows, step, epoch, data_cpu, start = [], 0, 0, 0.0, time.process_time()
    while step < args.steps:
        for part in parts:
            part.set_epoch(epoch)
        order = np.random.default_rng(epoch).permutation(len(train))
        for first in range(0, len(order) - batch + 1, batch):
            tic = time.process_time()
            items = [train[int(i)] for i in order[first:first + batch]]
            data_cpu += time.process_time() - tic
            for group in optimiser.param_groups:
                group["lr"] = cosine_lr(step, args.steps, hp["lr"], int(hp["lr_warmup_steps"]),
                                        float(hp["lr_final_ratio"]))
            loss = speech_noise_loss(*model(stacked(items, "sig")), stacked(items, "speech_sig"),
                                     stacked(items, "noise_sig"), hp["loss_clamp"], hp["noise_weight"]).mean()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            step += 1
            if step % args.every == 0 or step == args.steps:
                model.eval()
                with torch.no_grad():  # one utterance at a time: validation sets may vary in length
                    gain = np.mean([float(si_sdr(model(mix)[0], speech) - si_sdr(mix, speech))
                                    for mix, speech in valid_items])
                model.train()
                rows.append({"step": step, "cpu_s": round(time.process_time() - start, 1),
                             "data_cpu_s": round(data_cpu, 1), "loss": round(loss.item(), 2),
                             "valid_si_sdri": round(gain, 2)})
                print(json.dumps(rows[-1]), flush=True)
            if step == args.steps:
                break
        epoch += 1
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"config": args.config, "system": args.system, "set": args.set, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
