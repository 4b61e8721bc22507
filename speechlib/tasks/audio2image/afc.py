"""Stage 6 of egs/audio2image: the 2AFC test (Table 1), automatic and human; RESULTS.md.

    python -m speechlib.tasks.audio2image.afc conf/mini_audio2image.yaml --output_folder exp/x

Automatic 2AFC: for each held-out sound (class c), the picture generated from it (A) against the
picture generated from a sound of another class (B, drawn at random; `afc_repeats` different
pairings, the paper repeated its test 3 times). A judge gives p(c | picture); margin =
p(c | A) - p(c | B): "positive" above tau, "negative" below -tau, "neither" in between.
Judges: (1) a small CNN classifier trained here on the *real* training pictures, never used for
guidance; (2) the image-text model's zero-shot text prompts (the class name through the text
tower, softmax over classes of cos / T); the image tower in (2) is the one that guided the
generation, so (2) is not independent of it: (1) is the primary judge.
tau: the `afc_neither_quantile` quantile of the judge's |p(c | view 1) - p(c | view 2)| over two
augmented views of each *validation* picture: a margin no larger than what two views of one
picture differ by counts as "neither". Sounds whose class the judge does not know (a class
absent from the training pictures) are left out and counted.
Also writes the human test page (2afc/index.html) and renders every table into RESULTS.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
import torch.nn.functional as F

from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import exit_on_input_error
from speechlib.results.tables import ResultTable, write_results
from speechlib.nn.brivl import SmallConvBackbone
from speechlib.tasks.audio2image.common import (SYSTEMS, ModelDir, Tokenizer, augment, fmt_ci, load, load_module,
                                                pairs_dataset, picture_tensor, read_pairs, tower_dir)
from speechlib.tasks.brain import RecipeBrain
from speechlib.tasks.training import build_brain, fit, optimizer_from_config
from speechlib.tasks.audio2image.human import CHOICES, table1, write_page
from speechlib.tasks.stage import start_stage

PAPER_TABLE1 = {"positive": "72 - 78", "negative": "10 - 16", "neither": "9 - 15"}
KIND_NAMES = {"sfx": "sound effects", "desc": "spoken descriptions", "name": "spoken names"}


class Judge(torch.nn.Module):
    """SmallConvBackbone(channels) -> global average -> linear over classes."""

    def __init__(self, channels: list[int], classes: int):
        super().__init__()
        self.backbone = SmallConvBackbone(channels)
        self.head = torch.nn.Linear(self.backbone.num_features, classes)

    def forward(self, pictures: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_features(pictures).mean(dim=(2, 3)))


class JudgeBrain(RecipeBrain):
    """Cross-entropy on the real training pictures (BriVL's augmentation from the dataset, plus
    random flips), class-balanced weights; no validation set (the last epoch is kept)."""

    needs = ("class_index", "class_weights")

    def compute_forward(self, batch, stage):
        images = batch.image.data.to(self.device)
        if stage == sb.Stage.TRAIN:
            flip = torch.rand(images.shape[0], device=self.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        return self.modules.judge(images)

    def compute_objectives(self, logits, batch, stage):
        labels = torch.tensor([self.class_index[label] for label in batch.label], device=self.device)
        return F.cross_entropy(logits, labels, weight=self.class_weights.to(self.device))


def train_judge(stage, classes: list[str]) -> Judge:
    """The judge as system exp/<tag>/judge (the kit's layout; a finished one is reloaded)."""
    hp = stage.hparams
    train = pairs_dataset(f"{hp['data_folder']}/train", hp, train=True, audio=False, unique_pictures=True,
                          extra_keys=("label",))
    labels = torch.tensor([classes.index(train.data[key]["label"]) for key in train.data_ids])
    counts = torch.bincount(labels, minlength=len(classes)).float().clamp(min=1)
    judge = Judge(hp["judge_channels"], len(classes))
    brain = build_brain(JudgeBrain, stage, "judge", {"judge": judge}, epochs=hp["epochs_judge"],
                        optimizer=optimizer_from_config({"name": "AdamW", "lr": hp["lr_judge"],
                                                         "weight_decay": hp["weight_decay"]}),
                        class_index={c: i for i, c in enumerate(classes)},
                        class_weights=counts.sum() / (len(classes) * counts))
    fit(brain, train, None, train_loader_kwargs={"batch_size": hp["batch_size"], "shuffle": True})
    return judge.eval()


def augmented_view(picture: torch.Tensor, generator: torch.Generator, hp: dict) -> torch.Tensor:
    view = augment(picture, generator, hp["grayscale_p"], hp["colour_jitter"])
    return view.flip(-1) if float(torch.rand(1, generator=generator)) < 0.5 else view


@torch.no_grad()
def view_threshold(prob_fn, pictures: torch.Tensor, labels: torch.Tensor, hp: dict, seed: int,
                   views: int = 8) -> float:
    """The quantile of |p(c | view 1) - p(c | view 2)| over pairs of views of each picture."""
    generator = torch.Generator().manual_seed(seed)
    gaps = []
    for _ in range(views):
        one = torch.stack([augmented_view(p, generator, hp) for p in pictures])
        two = torch.stack([augmented_view(p, generator, hp) for p in pictures])
        rows = torch.arange(len(labels))
        gaps.append((prob_fn(one)[rows, labels] - prob_fn(two)[rows, labels]).abs())
    return float(torch.quantile(torch.cat(gaps), float(hp["afc_neither_quantile"])))


def zero_shot_judge(hp: dict, model: ModelDir, classes: list[str]):
    """p(class | picture): softmax over classes of cos(tower(picture), text tower(class name)) / T."""
    tower, text_tower = load_module(model, "image_tower"), load_module(model, "text_tower")
    tokenizer = Tokenizer(model.path / "tokenizer.model", hp["max_text_len"])
    with torch.no_grad():
        ids = torch.nn.utils.rnn.pad_sequence([tokenizer(c.replace("/", " ")) for c in classes], batch_first=True)
        class_text = F.normalize(text_tower(ids), dim=-1)
    return lambda x: torch.softmax(F.normalize(tower(x), dim=-1) @ class_text.T / hp["temperature"], dim=-1)


def pairings(labels: list[str], repeats: int, seed: int) -> list[list[int]]:
    """For each repeat, each sound's partner: a random sound of another class."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(repeats):
        partner = []
        for label in labels:
            others = [j for j, other in enumerate(labels) if other != label]
            partner.append(int(rng.choice(others)))
        result.append(partner)
    return result


def decide(margin: np.ndarray, tau: float) -> np.ndarray:
    return np.where(margin > tau, "positive", np.where(margin < -tau, "negative", "neither"))


def load_generated(exp_dir: Path, system: str, utts: list[str], size: int) -> torch.Tensor:
    return torch.stack([picture_tensor(str(exp_dir / "generated" / system / f"{u}.png"), size) for u in utts])


def main() -> None:
    stage = start_stage("afc", options=())
    hp = stage.hparams
    exp = stage.exp_dir
    out_path = exp / "2afc" / "automatic.json"
    if stage.is_done((out_path, exp / "RESULTS.md")):
        print(f"afc: {out_path} is up to date")
        return
    data, size, seed = hp["data_folder"], hp["image_size"], int(hp["seed"])
    train, valid, test = (read_pairs(f"{data}/{s}") for s in ("train", "valid", "test"))

    def unique_pictures(pairs):
        found = {row["image"]: row["label"] for row in pairs.values()}
        return sorted(found), [found[p] for p in sorted(found)]

    _, train_labels = unique_pictures(train)
    classes = sorted(set(train_labels))
    valid_paths, valid_labels = unique_pictures(valid)
    valid_keep = [i for i, label in enumerate(valid_labels) if label in classes]
    utts = [u for u in sorted(test) if test[u]["label"] in classes]
    left_out = len(test) - len(utts)
    labels = [test[u]["label"] for u in utts]
    to_index = lambda names: torch.tensor([classes.index(n) for n in names])  # noqa: E731
    judge = train_judge(stage, classes)
    judges = {"classifier on real pictures": lambda x: torch.softmax(judge(x), dim=-1)}
    image_text = load(tower_dir(exp), "image_text")
    if image_text.has("text_tower"):   # absent when BriVL's image tower was loaded
        judges["image-text zero-shot prompts"] = zero_shot_judge(hp, image_text, classes)
    valid_pictures = torch.stack([picture_tensor(valid_paths[i], size) for i in valid_keep])
    valid_index = to_index([valid_labels[i] for i in valid_keep])
    real_test = torch.stack([picture_tensor(test[u]["image"], size) for u in utts])
    label_index = to_index(labels)
    pairs = pairings(labels, int(hp["afc_repeats"]), seed)
    automatic: dict = {"sounds": len(utts), "left_out_unknown_class": left_out, "classes": classes, "judges": {}}
    with torch.no_grad():
        for name, prob_fn in judges.items():
            tau = view_threshold(prob_fn, valid_pictures, valid_index, hp, seed)
            rows = torch.arange(len(utts))
            real_accuracy = float((prob_fn(real_test).argmax(1) == label_index).float().mean())
            entry = {"tau": tau, "real_test_accuracy": real_accuracy, "systems": {}}
            for system in SYSTEMS:
                # p(c | picture generated from this sound of class c)
                own_class = prob_fn(load_generated(exp, system, utts, size))[rows, label_index].numpy()
                groups = []
                for repeat, partner in enumerate(pairs):
                    # the partner picture judged for *this* sound's class c
                    other = prob_fn(load_generated(exp, system, [utts[j] for j in partner], size))[
                        rows, label_index].numpy()
                    outcome = decide(own_class - other, tau)
                    groups.append([{"system": system, "sound": u, "outcome": o} for u, o in zip(utts, outcome)])
                entry["systems"][system] = table1(groups, int(hp["bootstrap"]), seed)[system]
            automatic["judges"][name] = entry
            print(f"afc: judge '{name}': tau {tau:.3f}, accuracy on real test pictures {100 * real_accuracy:.1f}%; "
                  + "; ".join(f"{s} positive {entry['systems'][s]['positive']['share']:.1f}%" for s in SYSTEMS))
    atomic_write_text(out_path, json.dumps(automatic, indent=1) + "\n")
    human_page(exp, test, utts, pairs[0], seed)
    write_report(stage, automatic)
    stage.mark_done()


def human_page(exp: Path, test: dict, utts: list[str], partner: list[int], seed: int) -> None:
    """The page's trials: every held-out sound, each system, the first pairing, order random."""
    rng = np.random.default_rng(seed)
    trials = []
    for system in SYSTEMS:
        for i, utt in enumerate(utts):
            trials.append({"system": system, "name": utt, "sound": test[utt]["wav"],
                           "target_picture": str(exp / "generated" / system / f"{utt}.png"),
                           "other_picture": str(exp / "generated" / system / f"{utts[partner[i]]}.png"),
                           "target": "first" if rng.random() < 0.5 else "second"})
    order = rng.permutation(len(trials))
    trials = [dict(trials[k], trial=n + 1) for n, k in enumerate(order)]
    page = write_page(exp / "2afc", trials)
    print(f"afc: human 2AFC page {page} ({len(trials)} trials)")


def targets_table(metrics: dict, automatic: dict) -> ResultTable:
    """The issue's three checks, and the class-oracle ceiling they rest on (no audio tower can
    show held-out retrieval when the frozen tower's own ceiling is at chance), decided from the
    numbers (never by hand). R@5: the seed-averaged
    R@5 of all held-out sounds, its 95 % CI from one bootstrap over seeds and stamps (evaluate.py),
    must lie above chance; the Student-t over 3 seeds alone ignores the test set's sampling."""
    chance = metrics["chance"][1]
    pooled = metrics["pooled"]
    estimate, low, high = pooled["all"]["wavbrivl"][1]
    by_kind = "; ".join(f"{KIND_NAMES.get(kind, kind)} {fmt_ci(*entry['wavbrivl'][1])}"
                        for kind, entry in pooled.items() if kind != "all")
    judge = automatic["judges"]["classifier on real pictures"]["systems"]["wavbrivl"]["positive"]
    diff = metrics["difference"]["over_seeds"][1]
    oracle = metrics["class_oracle"]
    rows = {
        "class-oracle ceiling R@5 above chance, CI excluding chance (the frozen tower's share)": [
            f"R@5 {fmt_ci(oracle['metrics'][1], oracle['low'][1], oracle['high'][1])} (each held-out sound replaced "
            f"by its class prototype; bootstrap over stamps); chance {100 * chance:.1f}",
            "met" if oracle["low"][1] > chance else "not met"],
        "WavBriVL R@5 above chance, CI excluding chance": [
            f"R@5 {fmt_ci(estimate, low, high)} (all {pooled['all']['queries']} held-out sounds, seed-averaged, "
            f"bootstrap over seeds and stamps; {by_kind}); chance {100 * chance:.1f}",
            "met" if low > chance else "not met"],
        "automatic 2AFC positive share above 50 %, with CI": [
            f"{fmt_ci(judge['share'], judge['low'], judge['high'], scale=1.0)} (judge: classifier on real pictures)",
            "met" if judge["low"] > 50 else "not met"],
        "WavBriVL - Wav2CLIP, with CI over >= 3 seeds": [
            f"R@5 difference {fmt_ci(*pooled['all']['difference'][1])} (seed-averaged, bootstrap over seeds and "
            f"stamps); {fmt_ci(*diff)} (paired t over {len(metrics['seeds'])} seeds)",
            "reported" if len(metrics["seeds"]) >= 3 else "not met (fewer than 3 seeds)"],
    }
    return ResultTable(title="Targets of the mini run (issue 15)", columns=["measured (%)", "verdict"], rows=rows,
                       caption="Decided by the code from the tables below; 95 % CIs.")


def kinds_table(metrics: dict) -> ResultTable:
    """Held-out retrieval per kind of sound, seed-averaged, with the class-oracle ceiling."""
    rows = {}
    for kind, entry in metrics["pooled"].items():
        label = "all held-out sounds" if kind == "all" else KIND_NAMES.get(kind, kind)
        head = f"{label} ({entry['queries']} sounds, {entry['stamps']} stamps)"
        rows[f"{head}: WavBriVL"] = [fmt_ci(*entry["wavbrivl"][j]) for j in range(3)]
        rows[f"{head}: Wav2CLIP"] = [fmt_ci(*entry["wav2clip"][j]) for j in range(3)]
        rows[f"{head}: WavBriVL - Wav2CLIP"] = [fmt_ci(*entry["difference"][j]) for j in range(3)]
        if "class_oracle" in entry:
            rows[f"{head}: class oracle"] = [fmt_ci(*entry["class_oracle"][j]) for j in range(3)]
    rows["chance"] = [f"{100 * c:.1f}" for c in metrics["chance"][:3]]
    return ResultTable(
        title="Held-out retrieval by kind of sound (seed-averaged; bootstrap over seeds and stamps)",
        columns=["R@1 (%)", "R@5 (%)", "R@10 (%)"], rows=rows,
        caption=("Hit rates averaged over the training seeds; each 95 % CI resamples the test stamps and, per "
                 "system, the seeds. A sound effect asks the audio tower to hear the object; a spoken description "
                 "(a stamp's name, several languages) asks it to understand a word it never heard in training. "
                 "Class oracle: each sound replaced by its class prototype."))


def learning_curves(exp: Path, hp: dict, seeds: list[int]) -> str:
    """learning_curves.png: training (solid) and validation (dashed) loss per epoch of the image-text
    model and every audio tower, each against its chance level (a loss that never leaves it has
    learnt nothing): MoCo losses 2 ln(queue + 1) (two directions), CLIP's ln(batch)."""
    from speechlib.results import plots   # matplotlib with the Agg backend

    panels = {"image-text model (stage 1)": (["brivl"], 2 * np.log(hp["queue_size_brivl"] + 1)),
              "WavBriVL (stage 2)": ([f"wavbrivl_seed{s}" for s in seeds], 2 * np.log(hp["queue_size_audio"] + 1)),
              "Wav2CLIP (stage 3)": ([f"wav2clip_seed{s}" for s in seeds], np.log(hp["batch_size"]))}
    fig, axes = plots.plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, (title, (systems, chance)) in zip(axes[0], panels.items()):
        for index, system in enumerate(systems):
            path = exp / system / "loss_curve.json"
            if not path.is_file():
                continue
            rows = json.loads(path.read_text())
            epochs = [row["epoch"] for row in rows]
            ax.plot(epochs, [row["train"]["loss"] for row in rows], color=f"C{index}", label=f"{system} train")
            valid = [(row["epoch"], row["valid"]["loss"]) for row in rows if row.get("valid")]
            if valid:
                ax.plot(*zip(*valid), color=f"C{index}", linestyle="--", label=f"{system} valid")
        ax.axhline(chance, color="grey", linestyle=":", label="chance")
        ax.set(title=title, xlabel="epoch", ylabel="loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    plots._save(fig, exp / "learning_curves.png")
    return "learning_curves.png"


def write_report(stage, automatic: dict) -> None:
    """Every table of the recipe (stage 4's metrics, stage 5's timing, this stage's Table 1)."""
    hp, exp = stage.hparams, stage.exp_dir
    metrics = json.loads((exp / "eval" / "metrics.json").read_text())
    timing = json.loads((exp / "generated" / "timing.json").read_text())
    names = {"wavbrivl": "WavBriVL", "wav2clip": "Wav2CLIP"}
    tables = []
    for name, entry in automatic["judges"].items():
        rows = {names[s]: [fmt_ci(e[c]["share"], e[c]["low"], e[c]["high"], scale=1.0) +
                           f" (repeats {e[c]['min']:.0f}-{e[c]['max']:.0f})" for c in CHOICES]
                for s, e in entry["systems"].items()}
        tables.append(ResultTable(
            title=f"Table 1 (automatic 2AFC, judge: {name}): share of trials (%)",
            columns=["Positive", "Negative", "Neither"], rows=rows,
            paper={"WavBriVL": [PAPER_TABLE1[c] for c in CHOICES]},
            caption=(f"{automatic['sounds']} held-out sounds x {hp['afc_repeats']} pairings; 95 % bootstrap CI over "
                     f"sounds in brackets, range over the pairings after it. tau = {entry['tau']:.3f} "
                     f"({hp['afc_neither_quantile']} quantile of the judge's gap between two augmented views of a "
                     f"validation picture). Judge accuracy on the real test pictures: "
                     f"{100 * entry['real_test_accuracy']:.1f}% (chance {100 / len(automatic['classes']):.1f}%). "
                     f"{automatic['left_out_unknown_class']} test sounds left out (class absent from training). "
                     "The paper's row is human raters; ours is an automatic judge.")))
    systems = metrics["systems"]
    columns = ["R@1 (%)", "R@5 (%)", "R@10 (%)", "median rank", "zero-shot accuracy (%)"]
    rows = {}
    for s in SYSTEMS:
        over = systems[s]["over_seeds"]
        cells = [fmt_ci(*over[j]) for j in range(3)] + [fmt_ci(*over[3], scale=1.0)]
        rows[f"{names[s]} (mean over seeds {metrics['seeds']})"] = cells + [fmt_ci(*systems[s]["accuracy_over_seeds"])]
        for run in systems[s]["runs"]:
            m, lo, hi = run["metrics"], run["low"], run["high"]
            cells = [fmt_ci(m[j], lo[j], hi[j]) for j in range(3)] + [fmt_ci(m[3], lo[3], hi[3], scale=1.0)]
            rows[f"{names[s]} seed {run['seed']}"] = cells + [fmt_ci(*run["accuracy"])]
    diff = metrics["difference"]
    rows["WavBriVL - Wav2CLIP (paired over seeds, t)"] = [fmt_ci(*diff["over_seeds"][j]) for j in range(3)] + \
        [fmt_ci(*diff["over_seeds"][3], scale=1.0), fmt_ci(*diff["accuracy_over_seeds"])]
    rows["WavBriVL - Wav2CLIP (seed-averaged, bootstrap over stamps)"] = \
        [fmt_ci(*diff["bootstrap_stamps"][j]) for j in range(3)] + ["–", "–"]
    oracle = metrics["class_oracle"]
    rows["class oracle (each sound replaced by its class prototype)"] = [
        fmt_ci(oracle["metrics"][j], oracle["low"][j], oracle["high"][j]) for j in range(3)] + [
        fmt_ci(oracle["metrics"][3], oracle["low"][3], oracle["high"][3], scale=1.0), "100"]
    chance = metrics["chance"]
    rows["chance"] = [f"{100 * c:.1f}" for c in chance[:3]] + [f"{chance[3]:.1f}",
                                                                f"{100 * metrics['chance_accuracy']:.1f}"]
    seen_rows = {f"{names[s]} seed {run['seed']}": [f"{100 * v:.1f}" for v in run["train_metrics"][:3]] +
                 [f"{run['train_metrics'][3]:.1f}"] for s in SYSTEMS for run in systems[s]["runs"]}
    train_chance = metrics["train_chance"]
    seen_rows["chance"] = [f"{100 * c:.1f}" for c in train_chance[:3]] + [f"{train_chance[3]:.1f}"]
    seen = ResultTable(
        title="Audio -> picture retrieval on the training pairs (not held out: did the audio tower learn?)",
        columns=columns[:4], rows=seen_rows,
        caption=(f"{metrics['train_queries']} training sounds against a gallery of the {metrics['train_gallery']} "
                 "training pictures, first max_seconds of each sound, no augmentation. A fit, not a generalisation "
                 "measure."))
    tables.insert(0, ResultTable(
        title="Audio -> picture retrieval and zero-shot classification on the held-out pairs (beyond the paper)",
        columns=columns, rows=rows,
        caption=(f"{metrics['queries']} test sounds, gallery of {metrics['gallery']} test pictures, "
                 f"{metrics['classified']} sounds classified over {metrics['classes']} class prototypes. "
                 "Per seed: 95 % CI by bootstrap over test stamps; over seeds: Student-t. The paper reports "
                 "no retrieval or classification number. Class oracle: what an audio tower that knew each test "
                 "sound's class exactly, and nothing finer, would score with this image tower (bootstrap CI).")))
    tables.insert(1, kinds_table(metrics))
    tables.insert(2, seen)
    if "tower_check" in metrics:
        check = metrics["tower_check"]
        tables.insert(0, ResultTable(
            title="The frozen image tower (stage 1): is it informative?",
            columns=["pictures", "texts", "picture -> own text R@1 (%)", "R@5 (%)", "chance R@1 / R@5 (%)",
                     "mean cosine between pictures"],
            rows={f"{name} pictures" + (" (held out)" if name == "test" else ""): [
                c["pictures"], c["texts"], f"{100 * c['R@1']:.1f}", f"{100 * c['R@5']:.1f}",
                f"{100 * c['chance@1']:.1f} / {100 * c['chance@5']:.1f}", f"{c['mean_cosine']:.3f}"]
                for name, c in check.items()},
            caption=("Each picture against every text of its split (the stamp's name and the transcripts of its "
                     "spoken descriptions, several languages); a hit when a top-k text is one of the picture's own. "
                     "Held-out pictures come with words the tokenizer and text tower never saw in training.")))
    tables.insert(0, targets_table(metrics, automatic))
    tables.append(ResultTable(
        title="Generation speed", columns=["seconds per picture", "steps", "cutouts", "device"],
        rows={names[s]: [timing[s], timing["steps"], timing["cutouts"], timing["device"]] for s in SYSTEMS},
        caption="Measured in stage 5 on a shared, loaded machine; batched over sounds and cutouts."))
    write_results(exp, "egs/audio2image (WavBriVL)", tables, corpus=str(hp["corpus"]),
                  notes="Stand-ins trained here (mini): the BriVL-like image-text model, a random-init WavLM, "
                        "a small VQGAN. See README.md for what the numbers show.",
                  figures=["figure4_generated.png", learning_curves(exp, hp, metrics["seeds"])])


if __name__ == "__main__":
    exit_on_input_error("audio2image.afc", main)
