"""Stage 4 of egs/audio2image: audio -> picture retrieval and zero-shot classification (held out).

    python -m speechlib.tasks.audio2image.evaluate conf/mini_audio2image.yaml --output_folder exp/x \\
        --seeds "1 2 3"

The paper has no number for these (it shows pictures and a human 2AFC test); they are the
quantitative check that the audio lands near its picture in the frozen tower's space.
Retrieval: every test sound queries the gallery of test pictures (one per stamp/video); rank of
its own picture -> R@1/5/10 and median rank. Chance: R@k = min(1, k / gallery), median (gallery + 1) / 2.
Classification: nearest class prototype (mean tower embedding of the train+valid pictures of a
class), over the test sounds whose class has a prototype.
CIs: per seed, a bootstrap over test stamps (all sounds of a stamp resampled together: they
share a picture); across seeds, Student-t over the seeds; WavBriVL - Wav2CLIP both ways. The
seed-averaged hit rates ("pooled") get one bootstrap over seeds and stamps together, for all
held-out sounds and for each kind (sound effects, spoken descriptions) apart: the two ask
different things of an audio tower (hearing the object vs understanding a spoken word).
Writes eval/metrics.json (read by stage 6, which renders every table into RESULTS.md).
"""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import torch

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.audio2image.common import (SYSTEMS, ModelDir, Tokenizer, audio_dir, bootstrap_ci, embed_pictures,
                                                embed_sounds, load, load_module, pretraining_pairs, read_pairs,
                                                read_signals, t_ci, tower_dir)
from speechlib.tasks.stage import Option, start_stage

KS = (1, 5, 10)


def ranks_of(audio: torch.Tensor, gallery: torch.Tensor, target: np.ndarray) -> np.ndarray:
    """1-based rank of each query's own picture among the gallery (by cosine similarity)."""
    sims = (audio @ gallery.T).numpy()
    own = sims[np.arange(len(target)), target]
    return 1 + (sims > own[:, None]).sum(axis=1)


def per_query_metrics(ranks: np.ndarray) -> np.ndarray:
    """(queries, len(KS) + 1): hit@k indicators and the rank, for bootstrapping."""
    return np.column_stack([(ranks <= k).astype(float) for k in KS] + [ranks.astype(float)])


def summarise(rows: np.ndarray) -> np.ndarray:
    return np.concatenate([rows[:, :-1].mean(axis=0), [np.median(rows[:, -1])]])


def cluster_bootstrap(rows: np.ndarray, clusters: np.ndarray, n_boot: int, seed: int,
                      statistic=summarise) -> np.ndarray:
    """(n_boot, metrics): `statistic` of test sets resampled by cluster (stamp)."""
    rng = np.random.default_rng(seed)
    names = np.unique(clusters)
    members = [np.flatnonzero(clusters == name) for name in names]
    out = np.empty((n_boot, rows.shape[1]))
    for b in range(n_boot):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        out[b] = statistic(rows[picked])
    return out


def seeds_and_stamps_bootstrap(hits: dict[str, np.ndarray], clusters: np.ndarray, n_boot: int, seed: int,
                               subset: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(n_boot, metrics) per system: the seed-averaged hit rates of resampled experiments.

    `hits[system]` is (seeds, queries, metrics) of 0/1 indicators. Each draw resamples the test
    stamps (all sounds of a stamp together: they share a picture) and, independently per system,
    the training seeds, so the interval covers both what the test set happened to hold and what
    training happened to give; the stamps are shared between systems (a paired comparison).
    `subset` restricts the queries (e.g. sound effects only) after the stamps are drawn."""
    rng = np.random.default_rng(seed)
    keep = np.ones(len(clusters), bool) if subset is None else subset
    names = np.unique(clusters[keep])
    members = [np.flatnonzero((clusters == name) & keep) for name in names]
    out = {system: np.empty((n_boot, rows.shape[2])) for system, rows in hits.items()}
    for b in range(n_boot):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        for system, rows in hits.items():
            seeds = rng.integers(0, rows.shape[0], rows.shape[0])
            out[system][b] = rows[seeds][:, picked].mean(axis=(0, 1))
    return out


def pooled_summary(hits: dict[str, np.ndarray], clusters: np.ndarray, n_boot: int,
                   subset: np.ndarray | None = None) -> dict:
    """Seed-averaged hit rates with their seeds-and-stamps bootstrap CIs, per system and for
    WavBriVL - Wav2CLIP: {name: [[estimate, low, high] per metric]} plus the query count."""
    keep = np.ones(len(clusters), bool) if subset is None else subset
    boot = seeds_and_stamps_bootstrap(hits, clusters, n_boot, 0, subset)
    estimates = {system: rows[:, keep].mean(axis=(0, 1)) for system, rows in hits.items()}
    boot["difference"] = boot["wavbrivl"] - boot["wav2clip"]
    estimates["difference"] = estimates["wavbrivl"] - estimates["wav2clip"]
    result: dict = {"queries": int(keep.sum()), "stamps": len(np.unique(clusters[keep]))}
    for name, draws in boot.items():
        result[name] = [[float(estimates[name][j]), float(np.quantile(draws[:, j], 0.025)),
                         float(np.quantile(draws[:, j], 0.975))] for j in range(draws.shape[1])]
    return result


class AudioEmbedder(torch.nn.Module):
    """An exported audio tower with the training modules' `embed_audio` (L2-normalised)."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.audio = encoder.eval()

    def embed_audio(self, wavs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return torch.nn.functional.normalize(self.audio(wavs, lengths), dim=-1)


@torch.no_grad()
def tower_check(model: ModelDir, pairs: dict, image_size: int) -> dict:
    """Is the frozen tower informative? Picture -> text retrieval among every text of the split
    (a hit: a top-k text is one of the picture's own), and the mean cosine between different
    pictures (near 1: every picture embedded alike). Needs the text tower (mini scale)."""
    tower, text_tower = load_module(model, "image_tower"), load_module(model, "text_tower")
    tokenizer = Tokenizer(model.path / "tokenizer.model", model.extra["max_text_len"])
    own: dict[str, tuple[str, set[str]]] = {}
    for row in pairs.values():
        own.setdefault(row["stamp"], (row["image"], set()))[1].add(row["text"])
    stamps = sorted(own)
    pictures = embed_pictures(tower, [own[s][0] for s in stamps], image_size)
    texts = sorted({t for s in stamps for t in own[s][1]})
    embedded = torch.nn.functional.normalize(torch.cat([text_tower(tokenizer(t)[None]) for t in texts]), dim=-1)
    order = (pictures @ embedded.T).argsort(dim=1, descending=True).numpy()
    result = {"pictures": len(stamps), "texts": len(texts),
              "mean_cosine": float((pictures @ pictures.T)[~torch.eye(len(stamps), dtype=torch.bool)].mean())}
    share = np.mean([len(own[s][1]) for s in stamps]) / len(texts)
    for k in (1, 5):
        hits = [any(texts[j] in own[s][1] for j in order[i, :k]) for i, s in enumerate(stamps)]
        result[f"R@{k}"] = float(np.mean(hits))
        result[f"chance@{k}"] = float(min(1.0, k * share))
    return result


def retrieval_set(tower, pairs: dict, hp: dict):
    """(utts, gallery embeddings (one per stamp), each sound's picture index, its stamp, signals)."""
    utts = sorted(pairs)
    stamps = sorted({pairs[u]["stamp"] for u in utts})
    picture_of = {pairs[u]["stamp"]: pairs[u]["image"] for u in utts}
    gallery = embed_pictures(tower, [picture_of[s] for s in stamps], hp["image_size"])
    target = np.array([stamps.index(pairs[u]["stamp"]) for u in utts])
    clusters = np.array([pairs[u]["stamp"] for u in utts])
    return utts, gallery, target, clusters, read_signals([pairs[u]["wav"] for u in utts], hp, utts)


def main() -> None:
    stage = start_stage("evaluate", options=(Option("seeds", "the training seeds to evaluate", default="1 2 3"),))
    seeds = [int(s) for s in stage.options["seeds"].split()]
    hp = stage.hparams
    out_path = stage.exp_dir / "eval" / "metrics.json"
    if stage.is_done((out_path,)):
        print(f"evaluate: {out_path} is up to date")
        return
    data = hp["data_folder"]
    tower = load_module(load(tower_dir(stage.exp_dir), "image_text"), "image_tower")
    test = read_pairs(f"{data}/test")
    utts, gallery, target, clusters, signals = retrieval_set(tower, test, hp)
    train_set = retrieval_set(tower, read_pairs(f"{data}/train"), hp)
    seen = {**read_pairs(f"{data}/train"), **read_pairs(f"{data}/valid")}
    by_class: dict[str, set[str]] = defaultdict(set)
    for row in seen.values():
        by_class[row["label"]].add(row["image"])
    classes = sorted(by_class)
    prototypes = torch.nn.functional.normalize(torch.stack(
        [embed_pictures(tower, sorted(by_class[c]), hp["image_size"]).mean(0) for c in classes]), dim=-1)
    has_class = np.array([test[u]["label"] in by_class for u in utts])
    labels = np.array([classes.index(test[u]["label"]) if has_class[i] else -1 for i, u in enumerate(utts)])
    # the ceiling of class knowledge: each sound replaced by its class prototype (all seen pictures
    # when its class has none); an audio tower that knew every test sound's class exactly, and
    # nothing finer, would rank the held-out pictures so
    oracle_queries = torch.stack([prototypes[labels[i]] if has_class[i] else
                                  torch.nn.functional.normalize(prototypes.mean(0), dim=0) for i in range(len(utts))])
    oracle_rows = per_query_metrics(ranks_of(oracle_queries, gallery, target))
    oracle_boot = cluster_bootstrap(oracle_rows, clusters, int(hp["bootstrap"]), 0)
    n_boot = int(hp["bootstrap"])
    result: dict = {"gallery": len(gallery), "queries": len(utts), "classes": len(classes),
                    "classified": int(has_class.sum()), "seeds": seeds, "systems": {},
                    "train_gallery": len(train_set[1]), "train_queries": len(train_set[0]),
                    "class_oracle": {"metrics": summarise(oracle_rows).tolist(),
                                     "low": np.quantile(oracle_boot, 0.025, axis=0).tolist(),
                                     "high": np.quantile(oracle_boot, 0.975, axis=0).tolist()}}
    rows_by: dict[str, list[np.ndarray]] = {}
    for system in SYSTEMS:
        runs = []
        for seed in seeds:
            model = AudioEmbedder(load_module(load(audio_dir(stage.exp_dir, system, seed), "audio_encoder"), "audio"))
            audio = embed_sounds(model, signals)
            ranks = ranks_of(audio, gallery, target)
            rows = per_query_metrics(ranks)
            predicted = (audio[has_class] @ prototypes.T).argmax(1).numpy()
            correct = (predicted == labels[has_class]).astype(float)
            boot = cluster_bootstrap(rows, clusters, n_boot, seed)
            train_ranks = ranks_of(embed_sounds(model, train_set[4]), train_set[1], train_set[2])
            runs.append({"seed": seed, "metrics": summarise(rows).tolist(),
                         "train_metrics": summarise(per_query_metrics(train_ranks)).tolist(),
                         "low": np.quantile(boot, 0.025, axis=0).tolist(),
                         "high": np.quantile(boot, 0.975, axis=0).tolist(),
                         "accuracy": bootstrap_ci(correct, n_boot=n_boot, seed=seed)})
            rows_by.setdefault(system, []).append(rows[:, :len(KS)])
            print(f"evaluate: {system} seed {seed}: R@1/5/10 " +
                  " ".join(f"{100 * v:.1f}" for v in runs[-1]["metrics"][:3]) +
                  f", median rank {runs[-1]['metrics'][3]:.1f}, accuracy {100 * runs[-1]['accuracy'][0]:.1f}%")
        metrics = np.array([r["metrics"] for r in runs])
        accuracy = [r["accuracy"][0] for r in runs]
        result["systems"][system] = {"runs": runs,
                                     "over_seeds": [t_ci(metrics[:, j].tolist()) for j in range(metrics.shape[1])],
                                     "accuracy_over_seeds": t_ci(accuracy)}
    # WavBriVL - Wav2CLIP: paired over seeds (t) and, seed-averaged, bootstrapped over stamps
    diff_seeds = [np.array(a["metrics"]) - np.array(b["metrics"]) for a, b in
                  zip(result["systems"]["wavbrivl"]["runs"], result["systems"]["wav2clip"]["runs"])]
    acc_diff = [a["accuracy"][0] - b["accuracy"][0] for a, b in
                zip(result["systems"]["wavbrivl"]["runs"], result["systems"]["wav2clip"]["runs"])]
    mean_rows = {s: np.mean(rows_by[s], axis=0) for s in SYSTEMS}   # per query, averaged over seeds
    delta = mean_rows["wavbrivl"] - mean_rows["wav2clip"]
    boot = cluster_bootstrap(delta, clusters, n_boot, 0, statistic=lambda r: r.mean(axis=0))
    result["difference"] = {
        "over_seeds": [t_ci([d[j] for d in diff_seeds]) for j in range(len(KS) + 1)],
        "accuracy_over_seeds": t_ci(acc_diff),
        "bootstrap_stamps": [[float(delta[:, j].mean()), float(np.quantile(boot[:, j], 0.025)),
                              float(np.quantile(boot[:, j], 0.975))] for j in range(len(KS))]}
    # seed-averaged, CIs over seeds and stamps together; all held-out sounds, then each kind apart
    hits = {system: np.stack(rows_by[system]) for system in SYSTEMS}
    kinds = np.array([test[u]["kind"] for u in utts])
    result["pooled"] = {"all": pooled_summary(hits, clusters, n_boot)}
    for kind in sorted(set(kinds)):
        result["pooled"][kind] = pooled_summary(hits, clusters, n_boot, kinds == kind)
        kind_boot = cluster_bootstrap(oracle_rows[kinds == kind], clusters[kinds == kind], n_boot, 0)
        result["pooled"][kind]["class_oracle"] = [
            [float(oracle_rows[kinds == kind, j].mean()), float(np.quantile(kind_boot[:, j], 0.025)),
             float(np.quantile(kind_boot[:, j], 0.975))] for j in range(len(KS))]
    result["chance"] = [min(1.0, k / len(gallery)) for k in KS] + [(len(gallery) + 1) / 2]
    result["train_chance"] = [min(1.0, k / len(train_set[1])) for k in KS] + [(len(train_set[1]) + 1) / 2]
    image_text = load(tower_dir(stage.exp_dir), "image_text")
    if image_text.has("text_tower"):   # absent when BriVL's image tower was loaded
        result["tower_check"] = {name: tower_check(image_text, pretraining_pairs(f"{data}/{name}", hp),
                                                   hp["image_size"]) for name in ("train", "test")}
    result["chance_accuracy"] = 1 / len(classes)
    atomic_write_text(out_path, json.dumps(result, indent=1) + "\n")
    stage.mark_done()
    print(f"evaluate: {len(utts)} test sounds, gallery {len(gallery)} pictures; wrote {out_path}")


if __name__ == "__main__":
    exit_on_input_error("audio2image.evaluate", main)
