"""Short runs of stage 2's joint training with parts of the loss switched off or reweighted,
to see which part moves the generator (README, "What the mini run shows"):

    python -m speechlib.tasks.voice_privacy.joint_probe conf/mini_voice_privacy.yaml \
        --speaker exp/mini_voice_privacy/speaker_white --data data/train --steps 60 --log-every 10 --grads

Same models, losses (eqs. (2)-(9)), crops (2 s) and Adam as stage 2, on a pool of training
utterances drawn once (`--utts`), batches of 8 drawn from it. Overrides: `--rho` (0: no spectral
bound), `--lr`, `--beta`, `--theta` (0: the generator trained on L_SSED alone; with `--beta 0`,
on the angular term alone), `--detach-targets` (L_rpt reaches the generator's n and m only as the
remover's targets, not as something the generator can change), `--fixed-batch` (one batch over
and over: can the generator fit even that?), `--remover-steps N` (two-phase training: after the
`--steps` of the loss above, the generator is frozen and the remover alone is trained on L_rpt
for N more steps, its targets n and m from the frozen generator, fresh Adam at `--remover-lr`,
default the config's lr; `--remover-decay`: the lr decays to 0 over phase B, cosine),
`--joint-steps N` (warm start: after the `--steps` of the loss above, N steps of the paper's
joint loss (1 - theta) L_SSED + theta L_rpt with both modules trained, theta the config's unless
`--joint-theta`, beta as in the first phase, fresh Adam at `--joint-lr`, default the config's lr).
Prints,
every `--log-every` steps, the loss terms, the perturbation's SNR, the restoration's SNR and
white-box cosine (in phase B also the frozen generator's), and with `--grads` the size of each
weighted part's gradient on the generator's parameters and on its noise output n.
Not a stage of the recipe: a diagnosis tool.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from speechlib.io.audio import load_audio
from speechlib.io.errors import exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.nn.speaker import freeze, load_pretrained, random_crops
from speechlib.nn.ssed import SSED
from speechlib.signal.mixing import snr_db
from speechlib.tasks.voice_privacy.losses import (LossWeights, angular_loss, joint_losses, removal_losses,
                                                  weighted_terms)
from speechlib.tasks.voice_privacy.model_io import ssed_kwargs
from speechlib.tasks.voice_privacy.train import gradient_norms

BATCH = 8


def mean_snr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean SNR (dB) of x over y - x, per utterance."""
    return float(snr_db(x.detach().numpy(), (y - x).detach().numpy()).mean())


def joint_forward(generator, remover, speaker, x, weights, detach_targets: bool = False):
    """One forward pass of stage 2's joint training on the crops x: adv, rst, z(x) and the loss terms.
    With `detach_targets` the total's L_rpt sees the generator's n and m as constants."""
    adv = generator(x)
    rst = remover(adv.wav)
    with torch.no_grad():
        z = speaker(x)
    z_adv = speaker(adv.wav)
    terms = joint_losses(x, adv.wav, z, z_adv, adv.noise, adv.mask, rst.noise, rst.mask, weights)
    if detach_targets:
        terms["total"] = joint_losses(x, adv.wav, z, z_adv, adv.noise.detach(), adv.mask.detach(),
                                      rst.noise, rst.mask, weights)["total"]
    return adv, rst, z, terms


def print_joint_step(label, speaker, x, adv, rst, z, terms) -> None:
    """The log line of a joint step (the terms are those of the batch before the step)."""
    with torch.no_grad():
        rst_cosine = float(angular_loss(z, speaker(rst.wav)).mean())
    print(f"{label}: angular {terms['angular'].item():.4f}, quality {terms['quality'].item():.3f}, "
          f"rpt {terms['rpt'].item():.3f}, SNR adv {mean_snr(x, adv.wav):.1f} dB, "
          f"rst {mean_snr(x, rst.wav):.1f} dB, rst cosine {rst_cosine:.4f}, mask mean "
          f"{adv.mask.mean().item():.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a voice_privacy config (SSED shape, eps, weights, lr, crop)")
    parser.add_argument("--speaker", required=True, help="white-box speaker model dir (SpeechBrain layout)")
    parser.add_argument("--data", required=True, help="training data dir (wav.scp)")
    parser.add_argument("--rho", type=float, default=None, help="spectral bound (0: none; default: the config's)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--beta", type=float, default=None)
    parser.add_argument("--theta", type=float, default=None)
    parser.add_argument("--detach-targets", action="store_true")
    parser.add_argument("--fixed-batch", action="store_true")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--grads", action="store_true")
    parser.add_argument("--remover-steps", type=int, default=0,
                        help="then freeze the generator and train the remover alone on L_rpt for this many steps")
    parser.add_argument("--remover-lr", type=float, default=None, help="phase B's lr (default: the config's)")
    parser.add_argument("--remover-decay", action="store_true", help="phase B's lr decays to 0 (cosine)")
    parser.add_argument("--joint-steps", type=int, default=0,
                        help="then train both modules on the joint loss (config's theta) for this many steps")
    parser.add_argument("--joint-theta", type=float, default=None, help="theta of the joint phase (default: the config's)")
    parser.add_argument("--joint-lr", type=float, default=None, help="the joint phase's lr (default: the config's)")
    parser.add_argument("--utts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.remover_steps and args.joint_steps:
        parser.error("--remover-steps and --joint-steps are two different second phases: give one")
    with open(args.config, encoding="utf-8") as handle:
        hp = load_hyperpyyaml(handle)
    config_theta = hp["theta"]
    for key in ("lr", "beta", "theta"):
        if getattr(args, key) is not None:
            hp[key] = getattr(args, key)
    if args.rho is not None:
        hp["spectral_ratio"] = args.rho or None
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    speaker = freeze(load_pretrained(args.speaker))
    generator, remover = SSED(**ssed_kwargs(hp)), SSED(**ssed_kwargs(hp))
    weights = LossWeights(hp["alpha"], hp["beta"], hp["gamma"], hp["theta"], hp["loss_norm_samples"])
    crop = int(hp["crop_seconds"] * hp["sample_rate"])
    scp = sorted(read_dict(f"{args.data}/wav.scp").items())
    rng = np.random.default_rng(args.seed)
    pool = [torch.from_numpy(load_audio(spec, hp["sample_rate"], utt=utt)[0])
            for utt, spec in (scp[i] for i in rng.choice(len(scp), min(args.utts, len(scp)), replace=False))]
    optimiser = torch.optim.Adam(list(generator.parameters()) + list(remover.parameters()), lr=hp["lr"])

    def draw() -> torch.Tensor:
        chosen = rng.choice(len(pool), BATCH, replace=False)
        longest = max(len(pool[i]) for i in chosen)
        wavs, lens = torch.zeros(BATCH, longest), torch.zeros(BATCH)
        for row, index in enumerate(chosen):
            wavs[row, :len(pool[index])] = pool[index]
            lens[row] = len(pool[index]) / longest
        return random_crops(wavs, lens, crop, torch.default_generator)

    first = draw()
    for step in range(1, args.steps + 1):
        x = first if args.fixed_batch else draw()
        adv, rst, z, terms = joint_forward(generator, remover, speaker, x, weights, args.detach_targets)
        logged = step == 1 or step % args.log_every == 0
        if logged and args.grads:
            parts = weighted_terms(terms, weights)
            on_weights = gradient_norms(parts, list(generator.parameters()))
            on_noise = gradient_norms(parts, [adv.noise])
            print("  |gradient| on the generator's weights / on n: " + ", ".join(
                f"{name} {on_weights[name]:.3g} / {on_noise[name]:.3g}" for name in parts), flush=True)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
        if logged:
            print_joint_step(f"step {step}", speaker, x, adv, rst, z, terms)
    if args.remover_steps:
        remover_phase(args, hp, generator, remover, speaker, weights, first, draw)
    if args.joint_steps:
        theta = config_theta if args.joint_theta is None else args.joint_theta
        joint_weights = LossWeights(weights.alpha, weights.beta, weights.gamma, theta, weights.norm_samples)
        joint_phase(args, hp, generator, remover, speaker, joint_weights, first, draw)


def remover_phase(args, hp, generator, remover, speaker, weights, first, draw) -> None:
    """Phase B: the generator frozen, the remover alone trained on L_rpt (eq. (8)) with the
    frozen generator's n and m as targets."""
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    optimiser = torch.optim.Adam(remover.parameters(), lr=args.remover_lr or hp["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.remover_steps) if args.remover_decay else None
    print(f"phase B: generator frozen, remover alone on L_rpt, {args.remover_steps} steps", flush=True)
    for step in range(1, args.remover_steps + 1):
        x = first if args.fixed_batch else draw()
        with torch.no_grad():
            adv = generator(x)
        rst = remover(adv.wav)
        terms = removal_losses(adv.noise, adv.mask, rst.noise, rst.mask, weights)
        optimiser.zero_grad()
        terms["rpt"].backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        if step == 1 or step % args.log_every == 0:
            with torch.no_grad():
                z = speaker(x)
                adv_cosine = float(angular_loss(z, speaker(adv.wav)).mean())
                rst_cosine = float(angular_loss(z, speaker(rst.wav)).mean())
            print(f"B step {step}: rpt {terms['rpt'].item():.3f} (mask {terms['mask'].item():.3f}, noise "
                  f"{terms['noise'].item():.3f}), adv cosine {adv_cosine:.4f}, SNR adv {mean_snr(x, adv.wav):.1f} dB, "
                  f"rst {mean_snr(x, rst.wav):.1f} dB, rst cosine {rst_cosine:.4f}", flush=True)


def joint_phase(args, hp, generator, remover, speaker, weights, first, draw) -> None:
    """Phase B of the warm start: the paper's joint loss (eq. (9)), both modules trained from
    where phase A left them, a fresh Adam."""
    optimiser = torch.optim.Adam(list(generator.parameters()) + list(remover.parameters()),
                                 lr=args.joint_lr or hp["lr"])
    print(f"phase B: joint loss, theta {weights.theta}, beta {weights.beta}, both modules trained, "
          f"{args.joint_steps} steps", flush=True)
    for step in range(1, args.joint_steps + 1):
        x = first if args.fixed_batch else draw()
        adv, rst, z, terms = joint_forward(generator, remover, speaker, x, weights)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
        if step == 1 or step % args.log_every == 0:
            print_joint_step(f"J step {step}", speaker, x, adv, rst, z, terms)


if __name__ == "__main__":
    exit_on_input_error("voice_privacy.joint_probe", main)
