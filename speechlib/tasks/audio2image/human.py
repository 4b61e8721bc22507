"""The human 2AFC test: a static web page, and the scorer of its answers (Table 1).

The page (`exp/<tag>/2afc/index.html`) needs no server: the trials are embedded in it, the
sounds and pictures sit beside it, so it works from a local file or `python -m http.server`.
Each trial plays a sound and shows two pictures in random order: the one generated from that
sound, and one generated from a sound of another class; the listener answers "first",
"second" or "neither". The answers are exported as CSV
(`trial,system,sound,target,answer,rater`; target = the position, first|second, of the picture
generated from the sound), which

    python -m speechlib.tasks.audio2image.human answers.csv [more.csv ...]
    egs/audio2image/local/score_2afc.py answers.csv

turns into Table 1 (positive / negative / neither %, per system, with a 95 % bootstrap CI over
trials and the range over the CSV files, e.g. the paper's three repetitions).
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import numpy as np

from speechlib.io.atomic import atomic_path, atomic_write_text
from speechlib.io.errors import InputError, exit_on_input_error

CHOICES = ("positive", "negative", "neither")
CSV_FIELDS = ("trial", "system", "sound", "target", "answer", "rater")

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Which picture goes with the sound?</title>
<style>
body { font-family: sans-serif; max-width: 46em; margin: 2em auto; }
.pics img { width: 256px; height: 256px; image-rendering: pixelated; margin: 0.5em; border: 1px solid #888; }
button { font-size: 1.1em; margin: 0.3em; }
</style></head><body>
<h1>Which picture goes with the sound?</h1>
<p>Play the sound, then choose the picture that matches it best, or "neither".
Trial <span id="index">1</span> of <span id="total"></span>.</p>
<p><label>Your name or initials: <input id="rater" value="anonymous"></label></p>
<audio id="sound" controls></audio>
<div class="pics"><img id="first" alt="first picture"><img id="second" alt="second picture"></div>
<div><button id="answer-first">first</button><button id="answer-second">second</button>
<button id="answer-neither">neither</button></div>
<p id="done" hidden>All trials answered. Export your answers and send the CSV file.</p>
<p><button id="export">Export CSV</button></p>
<textarea id="csv" rows="6" cols="80" readonly></textarea>
<script id="trials" type="application/json">__TRIALS__</script>
<script>
"use strict";
const trials = JSON.parse(document.getElementById("trials").textContent);
const answers = [];
let current = 0;
function show() {
  document.getElementById("total").textContent = trials.length;
  if (current >= trials.length) { document.getElementById("done").hidden = false; return; }
  const t = trials[current];
  document.getElementById("index").textContent = current + 1;
  document.getElementById("sound").src = t.sound;
  document.getElementById("first").src = t.first;
  document.getElementById("second").src = t.second;
}
function csvText() {
  const rater = document.getElementById("rater").value.replace(/[",\\n]/g, " ");
  const lines = ["trial,system,sound,target,answer,rater"];
  for (const a of answers) { lines.push([a.trial, a.system, a.name, a.target, a.answer, rater].join(",")); }
  return lines.join("\\n") + "\\n";
}
function answer(choice) {
  if (current >= trials.length) { return; }
  const t = trials[current];
  answers.push({trial: t.trial, system: t.system, name: t.name, target: t.target, answer: choice});
  current += 1;
  document.getElementById("csv").value = csvText();
  show();
}
for (const choice of ["first", "second", "neither"]) {
  document.getElementById("answer-" + choice).addEventListener("click", () => answer(choice));
}
document.getElementById("export").addEventListener("click", () => {
  const text = csvText();
  document.getElementById("csv").value = text;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
  link.download = "2afc_answers.csv";
  document.body.appendChild(link); link.click(); link.remove();
});
show();
</script></body></html>
"""


def write_page(out_dir: Path, trials: list[dict]) -> Path:
    """Copy each trial's sound and pictures under out_dir and write index.html.

    trials: dicts with trial, system, name, sound (path), target_picture, other_picture,
    target (first|second)."""
    embedded = []
    for t in trials:
        sound = out_dir / "sounds" / f"{t['name']}{Path(t['sound']).suffix}"
        if not sound.exists():
            sound.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(t["sound"], sound)
        pictures = {}
        for key in ("target_picture", "other_picture"):
            target = out_dir / "pictures" / t["system"] / Path(t[key]).name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(t[key], target)
            pictures[key] = target.relative_to(out_dir).as_posix()
        first, second = ((pictures["target_picture"], pictures["other_picture"]) if t["target"] == "first"
                         else (pictures["other_picture"], pictures["target_picture"]))
        embedded.append({"trial": t["trial"], "system": t["system"], "name": t["name"], "target": t["target"],
                         "sound": sound.relative_to(out_dir).as_posix(), "first": first, "second": second})
    payload = json.dumps(embedded, ensure_ascii=True).replace("</", "<\\/")
    page = out_dir / "index.html"
    atomic_write_text(page, _PAGE.replace("__TRIALS__", payload))
    return page


def outcome(target: str, answer: str) -> str:
    """first/second/neither + the target's position -> positive/negative/neither."""
    if answer == "neither":
        return "neither"
    return "positive" if answer == target else "negative"


def read_answers(path: str | Path) -> list[dict]:
    """Rows of an exported CSV, checked: one line naming the file and line on a bad row."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(CSV_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"not a 2AFC answer file: missing columns {sorted(missing)}", str(path), 1)
        for number, row in enumerate(reader, 2):
            if row["answer"] not in ("first", "second", "neither") or row["target"] not in ("first", "second"):
                raise InputError(f"answer '{row['answer']}' / target '{row['target']}' not understood",
                                 str(path), number)
            rows.append(dict(row, outcome=outcome(row["target"], row["answer"])))
    return rows


def shares(outcomes: list[str]) -> np.ndarray:
    counts = np.array([sum(o == c for o in outcomes) for c in CHOICES], dtype=float)
    return counts / max(1, len(outcomes))


def table1(groups: list[list[dict]], n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Per system: shares (%) pooled over groups, 95 % bootstrap CI over trials (sounds, all
    groups' answers to a sound resampled together), and the range over the groups."""
    from speechlib.tasks.audio2image.common import bootstrap_ci

    result = {}
    systems = sorted({row["system"] for group in groups for row in group})
    for system in systems:
        by_sound: dict[str, list[str]] = {}
        for group in groups:
            for row in group:
                if row["system"] == system:
                    by_sound.setdefault(row["sound"], []).append(row["outcome"])
        sounds = sorted(by_sound)
        per_sound = np.array([[np.sum(np.array(by_sound[s]) == c) for c in CHOICES] + [len(by_sound[s])]
                              for s in sounds], dtype=float)
        entry = {"trials": int(per_sound[:, -1].sum()), "groups": len(groups)}
        for index, choice in enumerate(CHOICES):
            ratio = lambda rows, i=index: rows[:, i].sum() / rows[:, -1].sum()  # noqa: E731
            estimate, low, high = bootstrap_ci(per_sound, statistic=ratio, n_boot=n_boot, seed=seed)
            per_group = [100 * shares([r["outcome"] for r in g if r["system"] == system])[index] for g in groups]
            entry[choice] = {"share": 100 * estimate, "low": 100 * low, "high": 100 * high,
                             "min": min(per_group), "max": max(per_group)}
        result[system] = entry
    return result


def table1_markdown(result: dict[str, dict]) -> str:
    lines = ["| System | trials | Positive % | Negative % | Neither % |", "|---|---|---|---|---|"]
    for system, entry in result.items():
        cells = [f"{entry[c]['share']:.1f} [{entry[c]['low']:.1f}, {entry[c]['high']:.1f}] "
                 f"(range {entry[c]['min']:.0f}-{entry[c]['max']:.0f})" for c in CHOICES]
        lines.append(f"| {system} | {entry['trials']} | " + " | ".join(cells) + " |")
    lines.append("| *WavBriVL (paper, human)* | – | *72 - 78* | *10 - 16* | *9 - 15* |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m speechlib.tasks.audio2image.human (or local/score_2afc.py)",
                                     description="Score exported 2AFC answers into Table 1.")
    parser.add_argument("csv", nargs="+", help="answer files exported by the page (one per repetition/rater)")
    parser.add_argument("--out", default="", help="also write the table (markdown) and JSON here (<out>.md/.json)")
    args = parser.parse_args()
    groups = [read_answers(path) for path in args.csv]
    result = table1(groups)
    text = table1_markdown(result)
    print(text, end="")
    if args.out:
        atomic_write_text(f"{args.out}.md", text)
        with atomic_path(f"{args.out}.json") as tmp:
            tmp.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    exit_on_input_error("audio2image.human", main)
