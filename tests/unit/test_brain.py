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


def test_checkpoint_is_invisible_until_complete(tmp_path, monkeypatch):
    from speechbrain.utils.checkpoints import Checkpointer

    from speechlib.tasks.brain import AtomicCheckpointer

    model = torch.nn.Linear(2, 2)
    checkpointer = Checkpointer(tmp_path, recoverables={"model": model, "other": torch.nn.Linear(1, 1)})
    RecipeBrain(modules={"model": model}, checkpointer=checkpointer, run_opts={"device": "cpu"})
    assert isinstance(checkpointer, AtomicCheckpointer)
    good = checkpointer.save_checkpoint()
    assert (good.path / "CKPT.yaml").is_file() and not list(good.path.glob("*.pending"))

    # a save killed while writing tensors: the meta file is still pending, so it is no checkpoint
    def killed(obj, path):
        raise KeyboardInterrupt("killed while saving")
    monkeypatch.setitem(checkpointer.custom_save_hooks, "other", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save_checkpoint()
    monkeypatch.delitem(checkpointer.custom_save_hooks, "other")
    assert [c.path for c in checkpointer.list_checkpoints()] == [good.path]

    # a checkpoint half deleted (a tensor file gone) is skipped, not loaded
    newer = checkpointer.save_checkpoint()
    (newer.path / "other.ckpt").unlink()
    assert checkpointer.find_checkpoint().path == good.path
    assert checkpointer.recover_if_possible().path == good.path
