"""Stage 1 of egs/mushra_gml: mini MUSHRA tests on 48 kHz stereo music, scored by a SIMULATED panel.

    python -m speechlib.tasks.mushra_gml.simulate conf/mini_mushra_gml.yaml --output_folder exp/x \
        --music48k DIR --parallel_encodes 2

Excerpts (`excerpt_seconds` long, `excerpts_per_track` per track) of the stereo music in
$MUSIC48K (default: the mini corpus's music48k/); the last `held_out_tracks` tracks give the
held-out tests' excerpts, the others the training tests'. Each test has the paper's conditions:
hidden reference, 3.5 and 7 kHz low-pass anchors, and coded versions (speechlib.signal.codecs;
`_mono` conditions coded as mono and played as dual mono). Scores come from the simulated panel
of `panel.py` -- labelled "simulated" in every file and table -- and then go through the same
completeness check and BS.1534-3 post-screening as real data (stage 0's `screen_and_write`).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from speechlib.data.corpora import resolve_corpus
from speechlib.data.listening_tests import Rating, write_generic_csv
from speechlib.io.audio import load_audio, write_audio
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.signal.codecs import encode_decode_many, lowpass_anchor
from speechlib.tasks.mushra_gml.panel import (Condition, ExcerptTraits, PanelModel, excerpt_traits,
                                              latent_quality, simulate_panel)
from speechlib.tasks.mushra_gml.prepare import screen_and_write
from speechlib.tasks.stage import start_stage

log = logging.getLogger("mushra_gml.simulate")
SR = 48000


def list_tracks(folder: Path) -> list[Path]:
    tracks = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".flac", ".wav", ".ogg"))
    if not tracks:
        raise InputError("no .flac/.wav/.ogg music files", str(folder))
    return tracks


def cut_excerpts(track: Path, count: int, seconds: float) -> list[np.ndarray]:
    """`count` excerpts at evenly spaced offsets; each must be 48 kHz stereo and not silent."""
    audio, rate = load_audio(str(track), SR, mono=False)
    if audio.ndim != 2 or audio.shape[1] != 2:
        raise InputError(f"expected stereo music, got {1 if audio.ndim == 1 else audio.shape[1]} channel(s)",
                         str(track))
    length = int(seconds * SR)
    if audio.shape[0] < length:
        raise InputError(f"shorter ({audio.shape[0] / SR:.1f} s) than one excerpt ({seconds} s)", str(track))
    starts = np.linspace(0, audio.shape[0] - length, count).astype(int)
    excerpts = [audio[s:s + length] for s in starts]
    return [x for x in excerpts if np.sqrt(np.mean(x ** 2)) > 1e-3]


def render(reference: np.ndarray, conditions: list[Condition], folder: Path, nj: int) -> dict[str, str]:
    """Write the reference and every condition of one excerpt; return condition -> path."""
    paths = {"reference": folder / "reference.flac"}
    write_audio(paths["reference"], reference, SR)
    coded = [c for c in conditions if c.kind == "codec"]
    decoded = encode_decode_many([(reference, SR, c.codec, c.kbps, c.mono) for c in coded], nj)
    for condition, signal in zip(coded, decoded):
        paths[condition.name] = folder / f"{condition.name}.flac"
        write_audio(paths[condition.name], signal, SR)
    for condition in conditions:
        if condition.kind == "anchor":
            paths[condition.name] = folder / f"{condition.name}.flac"
            write_audio(paths[condition.name], lowpass_anchor(reference, SR, condition.cutoff), SR)
    return {name: str(path.resolve()) for name, path in paths.items()}


def panel_ratings(test: str, excerpts: list[tuple[str, ExcerptTraits, dict[str, str]]],
                  conditions: list[Condition], listeners: int, model: PanelModel,
                  rng: np.random.Generator) -> tuple[list[Rating], int]:
    """One test's simulated ratings and the number of careless listeners in its panel."""
    rows = [(trial, traits, paths, c) for trial, (_, traits, paths) in enumerate(excerpts) for c in conditions]
    latent = np.array([latent_quality(c, traits) for _, traits, _, c in rows])
    criticality = np.array([traits.criticality for _, traits, _, _ in rows])
    scores, careless = simulate_panel(latent, criticality, np.array([r[0] for r in rows]), listeners, model, rng)
    ratings = [Rating(test, excerpts[trial][0], c.name, f"sim{test}{k:02d}", float(scores[i, k]),
                      paths["reference"], paths[c.name])
               for i, (trial, _, paths, c) in enumerate(rows) for k in range(listeners)]
    return ratings, int(careless.sum())


def main() -> None:
    stage = start_stage("simulate", options=())
    hp = stage.hparams
    if hp["odaq"] or hp["webmushra"] or hp["listening_csv"]:
        log.info("real listening-test data set in db.sh: stage 0 wrote the tests, nothing to simulate")
        return
    data = Path(hp["data_folder"])
    if stage.is_done((data / "tests.json",)):
        log.info("%s is up to date", data / "tests.json")
        return
    music, _ = resolve_corpus("MUSIC48K", hp["music48k"], "music48k")
    tracks = list_tracks(music)
    held_out = hp["held_out_tracks"]
    if len(tracks) <= held_out:
        raise InputError(f"{len(tracks)} tracks: need more than held_out_tracks={held_out}", str(music))
    rng = np.random.default_rng(hp["seed"])
    model = PanelModel(**hp["panel"])
    groups = {"train": tracks[:-held_out], "held_out": tracks[-held_out:]}
    plan = {name: dict(spec) for name, spec in hp["mini_tests"].items()}
    ratings: list[Rating] = []
    roles = {}
    for group, group_tracks in groups.items():
        tests = [name for name, spec in plan.items() if spec["excerpts"] == group]
        conditions = {name: [Condition.parse(c) for c in plan[name]["conditions"]] for name in tests}
        excerpts: list[tuple[str, ExcerptTraits, dict]] = []
        for track in group_tracks:
            for index, ref in enumerate(cut_excerpts(track, hp["excerpts_per_track"], hp["excerpt_seconds"])):
                name = f"{track.stem}_{index}"
                # Training tests split the excerpts between them; held-out tests share theirs (as USAC's).
                owners = tests if group == "held_out" else [tests[len(excerpts) % len(tests)]]
                wanted = {c.name: c for t in owners for c in conditions[t]}
                paths = render(ref, list(wanted.values()), data / "audio" / name, hp["parallel_encodes"])
                excerpts.append((name, excerpt_traits(ref, SR), paths))
                log.info("progress: %s: %d conditions rendered", name, len(paths))
        for position, test in enumerate(tests):
            mine = [e for i, e in enumerate(excerpts) if group == "held_out" or i % len(tests) == position]
            rows, careless = panel_ratings(test, mine, conditions[test], plan[test]["listeners"], model, rng)
            log.info("%s: %d excerpts x %d conditions, %d simulated listeners (%d careless)", test, len(mine),
                     len(conditions[test]), plan[test]["listeners"], careless)
            ratings += rows
            roles[test] = plan[test]["role"]
    write_generic_csv(data / "local" / "simulated_panel.csv", ratings)
    summary = screen_and_write(ratings, hp, roles)
    stage.mark_done()
    log.info("wrote %s (simulated listener panel) and data dirs for %s", data / "local" / "simulated_panel.csv",
             ", ".join(summary))


if __name__ == "__main__":
    exit_on_input_error("mushra_gml.simulate", main)
