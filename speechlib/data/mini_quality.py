"""Is the mini corpus fit for speaker and quality tables? Two pretrained judges, both offline.

- resemblyzer 0.1.4 (GE2E speaker encoder; weights inside the wheel): EER of cosine scores on
  (a) all same-gender utterance pairs of up to 8 utterances per speaker, and (b) VoicePrivacy-
  style trial lists: per speaker, enrolment = all but one utterance (centroid), 1 target trial
  (the held-out one) + 30 non-target trials (utterances of other same-gender speakers).
- DistillMOS (distillmos + xls-r-sqa; weights inside the wheels): mean predicted MOS of the
  pseudo-speakers' utterances against the mean of their base voices' own utterances, and
  of all the LibriSpeech-layout speech.

`python -m speechlib.data.mini_quality --root mini [--write-readme]` prints the figures per
subset (JSON) and, with --write-readme, adds them to the corpus README.md.

`--by-voice [--per-speaker-mos K] [--json PATH] [--markdown PATH]`: DistillMOS per base voice
instead (K seeded utterances of every speaker, default all; the voices that only the speech pool
holds scored on their pool utterances), with per-subset means and the bound on the layout's mean
that the best voices allow (`voice_breakdown`, `voices_markdown`).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile

from speechlib.data import librispeech
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import exit_on_input_error

SUBSETS = ("train-clean-100", "dev-clean", "test-clean")
MARK = "<!-- mini_quality -->"


def eer(target: np.ndarray, nontarget: np.ndarray) -> float:
    """Equal error rate: where the miss rate on targets equals the false-alarm rate on non-targets."""
    scores = np.concatenate([target, nontarget])
    labels = np.concatenate([np.ones(len(target)), np.zeros(len(nontarget))])
    order = np.argsort(-scores, kind="stable")
    labels = labels[order]
    fa = np.cumsum(1 - labels) / len(nontarget)          # accept everything scored >= threshold
    miss = 1 - np.cumsum(labels) / len(target)
    fa, miss = np.concatenate([[0.0], fa]), np.concatenate([[1.0], miss])
    i = int(np.argmin(np.abs(fa - miss)))
    return float((fa[i] + miss[i]) / 2)


def subset_utterances(root: Path, subset: str, per_speaker: int) -> dict[str, list[Path]]:
    """speaker -> up to `per_speaker` utterance files (sorted, so the choice is reproducible)."""
    result = {}
    for spk_dir in sorted(p for p in (root / "LibriSpeech" / subset).iterdir() if p.is_dir()):
        result[spk_dir.name] = sorted(spk_dir.rglob("*.flac"))[:per_speaker]
    return result


class Judges:
    """The two pretrained models, loaded once."""

    def __init__(self, mos: bool = True, encoder: bool = True):
        self.encoder = None
        if encoder:
            from resemblyzer import VoiceEncoder
            self.encoder = VoiceEncoder("cpu", verbose=False)
        self.mos_model = None
        if mos:
            import distillmos
            self.mos_model = distillmos.ConvTransformerSQAModel()
            self.mos_model.eval()

    def embed(self, path: Path) -> np.ndarray:
        from resemblyzer import preprocess_wav
        return self.encoder.embed_utterance(preprocess_wav(soundfile.read(str(path), dtype="float32")[0], 16000))

    def mos(self, path: Path) -> float:
        import torch
        audio = soundfile.read(str(path), dtype="float32")[0]
        with torch.no_grad():
            return float(self.mos_model(torch.from_numpy(audio)[None]).item())


def speaker_eers(judges: Judges, utts: dict[str, list[Path]], genders: dict[str, str],
                 nontarget_trials: int = 30, seed: int = 0) -> dict[str, float]:
    """(a) same-gender pairs EER and (b) trial-list EER, as fractions, with the trial counts."""
    emb = {spk: np.stack([judges.embed(p) for p in paths]) for spk, paths in utts.items()}
    emb = {spk: e / np.linalg.norm(e, axis=1, keepdims=True) for spk, e in emb.items()}
    spks = sorted(emb)
    target, nontarget = [], []
    for i, a in enumerate(spks):
        sims = emb[a] @ emb[a].T
        target += list(sims[np.triu_indices(len(sims), 1)])
        for b in spks[i + 1:]:
            if genders[a] == genders[b]:
                nontarget += list((emb[a] @ emb[b].T).ravel())
    rng = np.random.default_rng(seed)
    t_scores, n_scores = [], []
    for a in spks:
        if len(emb[a]) < 2:
            continue
        enrol = emb[a][:-1].mean(axis=0)
        enrol /= np.linalg.norm(enrol)
        t_scores.append(float(emb[a][-1] @ enrol))
        others = np.concatenate([emb[b] for b in spks if b != a and genders[b] == genders[a]])
        pick = rng.choice(len(others), min(nontarget_trials, len(others)), replace=False)
        n_scores += list(others[pick] @ enrol)
    return dict(eer_pairs=eer(np.array(target), np.array(nontarget)), pairs_target=len(target),
                pairs_nontarget=len(nontarget), eer_trials=eer(np.array(t_scores), np.array(n_scores)),
                trials_target=len(t_scores), trials_nontarget=len(n_scores))


def measure(root: Path, per_speaker: int = 8, mos_per_subset: int = 24, seed: int = 0,
            mos: bool = True) -> dict[str, dict]:
    """The figures per subset; DistillMOS on a seeded sample of pseudo and base utterances."""
    judges = Judges(mos=mos)
    speakers = librispeech.read_speakers(root / "LibriSpeech" / "SPEAKERS.TXT")
    table = _speakers_tsv(root)
    by_libri = {row["libri_id"]: row for row in table.values() if row["libri_id"] != "-"}
    rng = np.random.default_rng(seed)
    figures: dict[str, dict] = {}
    for subset in SUBSETS:
        utts = subset_utterances(root, subset, per_speaker)
        result: dict = {}
        if subset != "train-clean-100":
            result.update(speaker_eers(judges, utts, {s: speakers[s]["gender"] for s in utts}, seed=seed))
        if mos:
            pseudo = [p for s, ps in utts.items() if by_libri[s]["kind"] == "pseudo" for p in ps]
            bases = {by_libri[s]["base"] for s in utts if by_libri[s]["kind"] == "pseudo"}
            own = [p for s, ps in utts.items() if by_libri[s]["kind"] != "pseudo" and by_libri[s]["spk"] in bases
                   for p in ps]
            everything = [p for ps in utts.values() for p in ps]
            sample = lambda paths: [paths[i] for i in rng.choice(len(paths), min(mos_per_subset, len(paths)),
                                                                   replace=False)] if paths else []
            scores = {name: [judges.mos(p) for p in sample(paths)]
                      for name, paths in (("pseudo", pseudo), ("base", own), ("all", everything))}
            for name, values in scores.items():
                result[f"mos_{name}"] = float(np.mean(values)) if values else float("nan")
                result[f"mos_{name}_n"] = len(values)
                result[f"mos_{name}_ci95"] = ci95(values)
                result[f"mos_{name}_scores"] = [round(v, 4) for v in values]
        figures[subset] = result
    return figures


def _speakers_tsv(root: Path) -> dict[str, dict[str, str]]:
    lines = (root / "speakers.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return {row["spk"]: row for row in (dict(zip(header, line.split("\t"))) for line in lines[1:])}


def ci95(values: list[float]) -> float:
    """Half-width of the normal-approximation 95 % confidence interval of a mean (nan below n = 2)."""
    if len(values) < 2:
        return float("nan")
    return float(1.96 * np.std(values, ddof=1) / np.sqrt(len(values)))


def pooled_mos(figures: dict[str, dict]) -> tuple[float, int, float]:
    """DistillMOS over the whole LibriSpeech layout: the subsets' samples pooled (mean, n, CI half-width)."""
    scores = [v for f in figures.values() for v in f.get("mos_all_scores", [])]
    return (float(np.mean(scores)) if scores else float("nan")), len(scores), ci95(scores)


def readme_section(figures: dict[str, dict], command: str) -> str:
    """Markdown table of the figures (EER in %, DistillMOS means with their sample sizes)."""
    lines = [MARK, "", "## Measured with pretrained judges", "",
             f"Command: `{command}` (resemblyzer 0.1.4 GE2E EER on cosine scores; DistillMOS means).", "",
             "| subset | EER same-gender pairs % (target/non-target) | EER trial lists % (target/non-target) "
             "| DistillMOS pseudo (n) | DistillMOS their base voices (n) | DistillMOS all (n) |",
             "|---|---|---|---|---|---|"]
    for subset, f in figures.items():
        pairs = (f"{100 * f['eer_pairs']:.1f} ({f['pairs_target']}/{f['pairs_nontarget']})"
                 if "eer_pairs" in f else "not measured (training set)")
        trials = (f"{100 * f['eer_trials']:.1f} ({f['trials_target']}/{f['trials_nontarget']})"
                  if "eer_trials" in f else "-")
        mos = [f"{f[f'mos_{k}']:.2f} ± {f[f'mos_{k}_ci95']:.2f} ({f[f'mos_{k}_n']})" if f"mos_{k}" in f
               else "not run" for k in ("pseudo", "base", "all")]
        lines.append(f"| {subset} | {pairs} | {trials} | {' | '.join(mos)} |")
    mean, n, half = pooled_mos(figures)
    if n:
        lines += ["", f"DistillMOS over the LibriSpeech layout (the subsets' samples pooled): {mean:.2f} ± {half:.2f} "
                  f"(n = {n}). DistillMOS: mean ± half-width of its 95 % confidence interval (n utterances)."]
    return "\n".join(lines) + "\n"


def write_readme(root: Path, figures: dict[str, dict], command: str) -> None:
    """Replace (or append) the measured section of the corpus README.md."""
    replace_section(root / "README.md", MARK, readme_section(figures, command))


def replace_section(path: Path, mark: str, section: str) -> None:
    """Everything from `mark` on replaced by `section` (which starts with it); appended if absent."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    text = re.split(re.escape(mark), text)[0].rstrip("\n")
    atomic_write_text(path, (text + "\n\n" if text else "") + section)


VOICES_MARK = "<!-- mini_quality --by-voice -->"


def voice_utterances(root: Path, per_speaker: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """speech/index.tsv rows to score: every LibriSpeech-layout speaker's utterances, and the pool
    utterances of the voices that the layout does not hold; up to `per_speaker` of each speaker
    (a seeded choice, kept in index order)."""
    lines = (root / "speech" / "index.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    table = _speakers_tsv(root)
    by_spk: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["split"] in SUBSETS or table[row["spk"]]["libri_id"] == "-":
            by_spk[row["spk"]].append(row)
    rng = np.random.default_rng(seed)
    chosen = []
    for spk in sorted(by_spk):
        utts = by_spk[spk]
        if per_speaker is not None and per_speaker < len(utts):
            utts = [utts[i] for i in sorted(rng.choice(len(utts), per_speaker, replace=False))]
        chosen += utts
    return chosen


def voice_breakdown(rows: list[dict[str, str]], scores: np.ndarray, table: dict[str, dict[str, str]],
                    best: tuple[int, ...] = (40, 20), target: float = 3.3) -> dict:
    """Aggregate given DistillMOS scores (one per row of `voice_utterances`) per base voice, per
    subset and overall (LibriSpeech layout only, utterance-weighted), and the bound: base voices
    ranked by the mean of their own utterances, the voice-weighted mean of the best k of them
    (what an evaluation set of k base voices would score if its pseudo-speakers scored like their
    bases) and how many reach `target`."""
    scores = np.asarray(scores, dtype=float)
    spk = np.array([r["spk"] for r in rows])
    split = np.array([r["split"] for r in rows])
    base = np.array([table[s]["base"] for s in spk])
    own = np.array([table[s]["kind"] != "pseudo" for s in spk])

    def grouped(keys: np.ndarray, mask: np.ndarray) -> dict[str, tuple[int, float, float]]:
        """key -> (n, mean, ci95) of the scores under mask."""
        names, inverse = np.unique(keys[mask], return_inverse=True)
        n = np.bincount(inverse, minlength=len(names))
        sums = np.bincount(inverse, weights=scores[mask], minlength=len(names))
        masked = scores[mask]
        return {str(k): (int(c), float(t / c), ci95(list(masked[inverse == i])))
                for i, (k, c, t) in enumerate(zip(names, n, sums))}

    own_g, pseudo_g = grouped(base, own), grouped(base, ~own)
    layout = np.isin(split, SUBSETS)
    subsets = {k: dict(n=v[0], mean=v[1], ci95=v[2]) for k, v in grouped(split, layout).items()}
    overall = grouped(np.full(len(rows), "all"), layout).get("all", (0, float("nan"), float("nan")))
    voices = []
    for b in sorted(set(base)):
        row = table[b]
        n_own, mean_own, ci_own = own_g.get(b, (0, float("nan"), float("nan")))
        n_ps, mean_ps, _ = pseudo_g.get(b, (0, float("nan"), float("nan")))
        voices.append(dict(base=b, source=row["source"], kind=row["kind"], source_rate=int(row["source_rate"]),
                           subset="+".join(sorted(set(split[base == b]))), own_n=n_own, own_mean=mean_own,
                           own_ci95=ci_own, pseudo_n=n_ps, pseudo_mean=mean_ps))
    voices.sort(key=lambda v: -v["own_mean"] if v["own_n"] else np.inf)
    ranked = np.array([v["own_mean"] for v in voices if v["own_n"]])
    bound = dict(target=target, voices_scored=len(ranked), voices_at_target=int((ranked >= target).sum()),
                 **{f"best_{k}": float(ranked[:k].mean()) if len(ranked) >= k else float("nan") for k in best})
    return dict(voices=voices, subsets=subsets, overall=dict(n=overall[0], mean=overall[1], ci95=overall[2]),
                bound=bound)


def voices_markdown(result: dict, command: str) -> str:
    """The per-voice table (best own mean first), the subset means and the bound, as markdown."""
    b = result["bound"]
    lines = [VOICES_MARK, "", "## DistillMOS per base voice (mini)", "", f"Command: `{command}`", "",
             "| rank | base voice | kind | source package | source rate Hz | subset | own n | own mean ± 95 % CI "
             "| pseudo n | pseudo mean |", "|---|---|---|---|---|---|---|---|---|---|"]
    for i, v in enumerate(result["voices"], 1):
        pseudo = f"{v['pseudo_mean']:.2f}" if v["pseudo_n"] else "-"
        lines.append(f"| {i} | {v['base']} | {v['kind']} | {v['source']} | {v['source_rate']} | {v['subset']} "
                     f"| {v['own_n']} | {v['own_mean']:.2f} ± {v['own_ci95']:.2f} | {v['pseudo_n']} | {pseudo} |")
    lines += ["", "| LibriSpeech layout | n | mean DistillMOS ± 95 % CI |", "|---|---|---|"]
    for name, s in [*result["subsets"].items(), ("overall", result["overall"])]:
        lines.append(f"| {name} | {s['n']} | {s['mean']:.2f} ± {s['ci95']:.2f} |")
    best = [k for k in b if k.startswith("best_")]
    lines += ["", f"Bound (base voices ranked by the mean of their own utterances, {b['voices_scored']} scored): "
              + ", ".join(f"mean of the best {k[5:]} = {b[k]:.2f}" for k in best)
              + f"; voices with a mean >= {b['target']}: {b['voices_at_target']}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="corpus root (default: mini/)")
    parser.add_argument("--per-speaker", type=int, default=8)
    parser.add_argument("--mos-per-subset", type=int, default=24)
    parser.add_argument("--no-mos", action="store_true")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--by-voice", action="store_true", help="DistillMOS per base voice and the bound")
    parser.add_argument("--per-speaker-mos", type=int, default=None, help="with --by-voice (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="with --by-voice: write the result here")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="with --by-voice: replace (or append) the table section of this file")
    args = parser.parse_args()
    from speechlib.data import mini
    root = mini.mini_root(args.root)
    if args.by_voice:
        return by_voice(root, args)
    figures = measure(root, args.per_speaker, args.mos_per_subset, mos=not args.no_mos)
    print(json.dumps(figures, indent=1))
    if args.write_readme:
        write_readme(root, figures, "python -m speechlib.data.mini_quality " + " ".join(sys.argv[1:]))
    return 0


def _nan_to_none(value):
    """The result with nan as null, so that the JSON is strict."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and np.isnan(value) else value


def by_voice(root: Path, args: argparse.Namespace) -> int:
    import datetime
    import time
    import torch
    from speechlib.results.environment import git_revision
    command = "python -m speechlib.data.mini_quality " + " ".join(sys.argv[1:])
    revision = git_revision()          # at the start: HEAD may move during a 20-minute run
    rows = voice_utterances(root, args.per_speaker_mos, args.seed)
    judges = Judges(encoder=False)
    start = time.monotonic()
    scores = np.array([judges.mos(root / r["path"]) for r in rows])
    result = dict(command=command, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  git=revision, torch_threads=torch.get_num_threads(),
                  score_seconds=round(time.monotonic() - start, 1), files=len(rows),
                  **voice_breakdown(rows, scores, _speakers_tsv(root)),
                  scores={r["utt"]: round(float(v), 4) for r, v in zip(rows, scores)})
    text = json.dumps(_nan_to_none(result), indent=1)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    else:
        print(text)
    if args.markdown:
        replace_section(args.markdown, VOICES_MARK, voices_markdown(result, command))
    return 0


if __name__ == "__main__":
    exit_on_input_error("mini_quality", main)
