"""Kaldi data dir -> SpeechBrain DynamicItemDataset, so every Brain reads data the same way."""
from __future__ import annotations

from pathlib import Path

import torch

from speechlib.io.audio import load_audio
from speechlib.io.errors import InputError
from speechlib.io.kaldi import read_dict


def load_datadir_dataset(data_dir: str | Path, sample_rate: int, extra_files: tuple[str, ...] = (),
                         on_rate_mismatch: str = "error"):
    """A dataset with `id`, `wav` (the wav.scp entry), one key per `extra_files` table
    (e.g. "utt2label" gives `label`), and a `sig` item: the audio as a float tensor.

    Audio is read lazily through speechlib.io.audio, so `cmd |` entries and segments work and
    a wrong sample rate is an error naming the utterance.
    """
    import speechbrain as sb

    data_dir = Path(data_dir)
    wavs = read_dict(data_dir / "wav.scp")
    segments = read_dict(data_dir / "segments") if (data_dir / "segments").is_file() else None
    extras = {}
    for name in extra_files:
        table = read_dict(data_dir / name)
        missing = wavs.keys() - table.keys() if segments is None else set()
        if missing:
            raise InputError(f"no entry for utterance '{sorted(missing)[0]}' (and {len(missing) - 1} more)",
                             str(data_dir / name))
        extras[name.split("2", 1)[-1]] = table
    keys = sorted(segments) if segments is not None else sorted(wavs)
    data = {}
    for utt in keys:
        entry: dict[str, object] = {}
        if segments is not None:
            reco, start, end = segments[utt].split()
            entry.update(wav=wavs[reco], start=float(start), end=float(end))
        else:
            entry.update(wav=wavs[utt], start=0.0, end=-1.0)
        for key, table in extras.items():
            entry[key] = table[utt]
        data[utt] = entry
    dataset = sb.dataio.dataset.DynamicItemDataset(data)

    @sb.utils.data_pipeline.takes("id", "wav", "start", "end")
    @sb.utils.data_pipeline.provides("sig")
    def read_signal(utt: str, wav: str, start: float, end: float) -> torch.Tensor:
        signal, _ = load_audio(wav, sample_rate, utt=utt, start=start, end=None if end < 0 else end,
                               on_rate_mismatch=on_rate_mismatch)
        return torch.from_numpy(signal)

    dataset.add_dynamic_item(read_signal)
    dataset.set_output_keys(["id", "sig", *extras.keys()])
    return dataset
