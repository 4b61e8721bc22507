"""ASV trial lists, per gender. The paper's protocol: 1 target and 30 non-target trials for each
speaker (enrolment utterance vs. test utterance), non-targets drawn from the other speakers of the
same gender. With 20 speakers that is 20 target trials per cell, so an EER moves in 5-point steps;
the extended protocol uses every same-gender pair of utterances (every within-speaker pair a
target trial) for the resolution a comparison needs.

Written as Kaldi-style files `<enroll-utt> <test-utt> target|nontarget`, one per gender, so the
same trials serve every condition (rec-rec, rec-adv, ...): only the audio behind the ids changes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError

Trial = tuple[str, str, bool]


def make_trials(utt2spk: dict[str, str], spk2gender: dict[str, str], gender: str, rng: np.random.Generator,
                targets_per_speaker: int = 1, nontargets_per_speaker: int = 30) -> list[Trial]:
    """Trials of one gender. Each speaker gives one enrolment utterance and a few test
    utterances (the first is its target test); every speaker's non-targets are the test
    utterances of other same-gender speakers, drawn without replacement."""
    speakers = sorted(s for s, g in spk2gender.items() if g == gender)
    if len(speakers) < 2:
        raise InputError(f"trials for gender '{gender}' need at least 2 speakers, got {len(speakers)}")
    spk2utts: dict[str, list[str]] = {s: [] for s in speakers}
    for utt, spk in sorted(utt2spk.items()):
        if spk in spk2utts:
            spk2utts[spk].append(utt)
    tests_each = max(targets_per_speaker, math.ceil(nontargets_per_speaker / (len(speakers) - 1)))
    enroll, tests = {}, {}
    for spk in speakers:
        utts = spk2utts[spk]
        if len(utts) < 1 + targets_per_speaker:
            raise InputError(f"speaker {spk} has {len(utts)} utterance(s); trials need at least "
                             f"{1 + targets_per_speaker}")
        picked = [utts[i] for i in rng.permutation(len(utts))[: 1 + tests_each]]
        enroll[spk], tests[spk] = picked[0], picked[1:]
    trials: list[Trial] = []
    for spk in speakers:
        trials += [(enroll[spk], test, True) for test in tests[spk][:targets_per_speaker]]
        pool = [test for other in speakers if other != spk for test in tests[other]]
        if len(pool) < nontargets_per_speaker:
            raise InputError(f"gender '{gender}': only {len(pool)} non-target test utterances for "
                             f"{nontargets_per_speaker} trials per speaker")
        trials += [(enroll[spk], pool[i], False) for i in rng.choice(len(pool), nontargets_per_speaker, replace=False)]
    return trials


def extended_trials(utt2spk: dict[str, str], spk2gender: dict[str, str], gender: str) -> list[Trial]:
    """Every unordered pair of distinct same-gender utterances, the C-locale smaller id enrolling:
    a target trial when both are one speaker's, a non-target trial otherwise."""
    utts = sorted(u for u, s in utt2spk.items() if spk2gender.get(s) == gender)
    speakers = {utt2spk[u] for u in utts}
    if len(speakers) < 2:
        raise InputError(f"trials for gender '{gender}' need at least 2 speakers, got {len(speakers)}")
    return [(enroll, test, utt2spk[enroll] == utt2spk[test])
            for i, enroll in enumerate(utts) for test in utts[i + 1:]]


def write_trials(path: str | Path, trials: list[Trial]) -> None:
    atomic_write_text(path, "".join(f"{e} {t} {'target' if y else 'nontarget'}\n" for e, t, y in trials))


def read_trials(path: str | Path) -> list[Trial]:
    trials = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 3 or fields[2] not in ("target", "nontarget"):
            raise InputError("expected '<enroll> <test> target|nontarget'", str(path), number)
        trials.append((fields[0], fields[1], fields[2] == "target"))
    return trials
