"""RecipeBrain: the first non-finite loss stops training and names the batch's utterances."""
from __future__ import annotations

import pytest
import speechbrain as sb
import torch

from speechlib.io.errors import TrainingDiverged
from speechlib.tasks.brain import RecipeBrain


class Regression(RecipeBrain):
    def compute_forward(self, batch, stage):
        return self.modules.model(batch.x.data)

    def compute_objectives(self, predictions, batch, stage):
        return ((predictions - batch.y.data) ** 2).mean()


def dataset(bad_id: str | None):
    data = {f"utt{i}": {"x": torch.ones(1) * i, "y": torch.tensor([float(i)])} for i in range(4)}
    if bad_id:
        data[bad_id]["y"] = torch.tensor([float("nan")])
    return sb.dataio.dataset.DynamicItemDataset(data, output_keys=["id", "x", "y"])


def test_nan_loss_stops_with_utterance_ids():
    brain = Regression(modules={"model": torch.nn.Linear(1, 1)}, opt_class=lambda p: torch.optim.SGD(p, 0.01),
                       run_opts={"device": "cpu"})
    with pytest.raises(TrainingDiverged, match=r"non-finite training loss \(nan\).*utt2"):
        brain.fit(range(1), dataset("utt2"), train_loader_kwargs={"batch_size": 2})


def test_finite_training_runs():
    brain = Regression(modules={"model": torch.nn.Linear(1, 1)}, opt_class=lambda p: torch.optim.SGD(p, 0.01),
                       run_opts={"device": "cpu"})
    brain.fit(range(2), dataset(None), train_loader_kwargs={"batch_size": 2})
