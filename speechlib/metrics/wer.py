"""Word error rate: word-level Levenshtein distance over reference length, corpus-level."""
from __future__ import annotations

import re

import numpy as np

_KEEP = re.compile(r"[^A-Z0-9' ]+")


def normalise(text: str) -> list[str]:
    """Upper case, punctuation removed (apostrophes kept), as LibriSpeech transcripts are."""
    return _KEEP.sub(" ", text.upper()).split()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Minimum substitutions + deletions + insertions turning `reference` into `hypothesis`
    (one row of the dynamic-programming table at a time)."""
    previous = np.arange(len(hypothesis) + 1)
    for i, ref_word in enumerate(reference, 1):
        current = np.empty_like(previous)
        current[0] = i
        for j, hyp_word in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return int(previous[-1])


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """100 * total edits / total reference words."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits = sum(edit_distance(normalise(r), normalise(h)) for r, h in zip(references, hypotheses))
    words = sum(len(normalise(r)) for r in references)
    if words == 0:
        raise ValueError("references hold no words")
    return 100.0 * edits / words
