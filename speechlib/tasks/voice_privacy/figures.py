"""Figures of the voice-privacy evaluation: DET curves of the condition pairs (from the same
error rates the EER uses) and the per-utterance distributions of cos(z(x), z(y)) for
y = protected, restored, noise control."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from speechlib.io.atomic import atomic_path  # noqa: E402
from speechlib.metrics.verification import error_rates  # noqa: E402

DET_TICKS = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95])


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def det_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str) -> Path:
    """Miss against false-alarm rate on probit axes, one curve per (scores, labels) entry."""
    from scipy.stats import norm

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (scores, labels) in curves.items():
        far, frr = error_rates(scores, labels)
        ax.plot(norm.ppf(np.clip(far, 1e-4, 1 - 1e-4)), norm.ppf(np.clip(frr, 1e-4, 1 - 1e-4)), label=name)
    labels_pct = [f"{100 * t:g}" for t in DET_TICKS]
    ax.set_xticks(norm.ppf(DET_TICKS), labels_pct)
    ax.set_yticks(norm.ppf(DET_TICKS), labels_pct)
    limits = norm.ppf([0.0005, 0.99])
    ax.set(xlabel="false-alarm rate (%)", ylabel="miss rate (%)", title=title, xlim=limits, ylim=limits)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def cosine_histograms(per_model: Mapping[str, Mapping[str, Sequence[float]]], path: str | Path, title: str) -> Path:
    """One panel per speaker model, one histogram per condition, cosine on [-1, 1]."""
    fig, axes = plt.subplots(1, len(per_model), figsize=(4 * len(per_model), 3.2), squeeze=False)
    bins = np.linspace(-1, 1, 81)
    for ax, (model, conditions) in zip(axes[0], per_model.items()):
        for cond, values in conditions.items():
            ax.hist(values, bins=bins, alpha=0.5, label=f"{cond} (mean {np.mean(values):.2f})")
        ax.set_title(model)
        ax.set_xlabel("cos(z(x), z(y))")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("utterances")
    fig.suptitle(title)
    return _save(fig, path)


def learning_curves(curves: Mapping[str, Sequence[Mapping]], path: str | Path, title: str) -> Path:
    """One panel per trained system (the kit's loss_curve.json rows): the training loss per
    epoch, and on a second axis the statistic that says whether it learns its task (the
    speaker models' training accuracy, the generator's white-box cosine, eq. (2))."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for ax, (system, rows) in zip(axes[0], curves.items()):
        epochs = [row["epoch"] for row in rows]
        ax.plot(epochs, [row["train"]["loss"] for row in rows], marker="o", color="C0")
        ax.set(title=system, xlabel="epoch", ylabel="training loss")
        ax.grid(alpha=0.3)
        second = next((key for key in ("accuracy", "angular") if rows and key in rows[0]["train"]), None)
        if second:
            twin = ax.twinx()
            twin.plot(epochs, [row["train"][second] for row in rows], marker="s", color="C1")
            twin.set_ylabel("training accuracy" if second == "accuracy" else "cos(z(x), z(x'))", color="C1")
    fig.suptitle(title)
    return _save(fig, path)
