"""Predict MOS with a trained encoder + MOS head; prints `file,mos` csv lines.

    python -m speechlib.tasks.mos_pretrain.predict --model exp/mini_mos_pretrain --in noisy.wav
    python -m speechlib.tasks.mos_pretrain.predict --model exp/x --in some_dir/ --system pase_noise
    python -m speechlib.tasks.mos_pretrain.predict --model exp/x --in data/test/wav.scp --mos-set vcc

--in: a wav/flac file, a directory (searched recursively for .wav and .flac) or a Kaldi wav.scp
(the key is printed instead of the path). Audio at another rate is resampled to 16 kHz.
Default system: the paper's best (PASE + noise workers without SNR); default head: the one
trained on the NISQA (noisy-speech) set.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.io.kaldi import read_dict
from speechlib.nn.mos_head import MOSHead
from speechlib.tasks.mos_pretrain.systems import embed_signal, load_encoder, system_dir

DEFAULT_SYSTEM = "pase_noise_no_snr"
AUDIO_SUFFIXES = (".wav", ".flac")


class MOSPredictor:
    """Frozen encoder + trained head, ready for single utterances."""

    def __init__(self, model_dir: str | Path, system: str = DEFAULT_SYSTEM, mos_set: str = "nisqa"):
        folder = system_dir(model_dir, system)
        if not folder.is_dir():
            trained = sorted(p.name for p in (Path(model_dir) / "encoders").glob("*") if (p / "encoder.pt").is_file())
            raise InputError(f"no system '{system}' (trained: {', '.join(trained) or 'none'})", str(model_dir))
        self.encoder, self.meta = load_encoder(folder)
        head_path = folder / f"head_{mos_set}" / "head.pt"
        if not head_path.is_file():
            raise InputError(f"no MOS head for set '{mos_set}': run stage 5", str(head_path))
        state = torch.load(head_path, map_location="cpu", weights_only=True)
        self.head = MOSHead(state["hidden.weight"].shape[1], state["hidden.weight"].shape[0])
        self.head.load_state_dict(state)
        self.head.eval()

    @torch.no_grad()
    def __call__(self, signal) -> float:
        return float(self.head(embed_signal(self.encoder, signal)[None])[0])


def list_inputs(spec: str) -> list[tuple[str, str]]:
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InputError("no .wav or .flac files inside", spec)
        return [(str(p), str(p)) for p in files]
    if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES:
        return [(str(path), str(path))]
    if path.is_file():
        return sorted(read_dict(path).items())
    raise InputError("no such file or directory", spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the experiment dir, exp/<tag>")
    parser.add_argument("--in", dest="inputs", required=True, help="wav/flac file, directory or wav.scp")
    parser.add_argument("--system", default=DEFAULT_SYSTEM)
    parser.add_argument("--mos-set", default="nisqa", help="which trained head (vcc or nisqa)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    predictor = MOSPredictor(args.model, args.system, args.mos_set)
    print("file,mos")
    for name, wav in list_inputs(args.inputs):
        signal, _ = load_audio(wav, 16000, utt=name, on_rate_mismatch="resample")
        print(f"{name},{predictor(signal):.4f}", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    exit_on_input_error("mos_pretrain.predict", main)
