"""RecipeBrain: the first non-finite loss stops training and names the batch's utterances."""
from __future__ import annotations

import json

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


class NeedsTeacher(Regression):
    needs = ("teacher",)


def test_dependencies_are_declared_constructor_arguments():
    teacher = torch.nn.Linear(1, 1)
    brain = NeedsTeacher(modules={"model": torch.nn.Linear(1, 1)}, run_opts={"device": "cpu"}, teacher=teacher)
    assert brain.teacher is teacher
    with pytest.raises(TypeError, match=r"missing dependencies \['teacher'\]"):
        NeedsTeacher(modules={"model": torch.nn.Linear(1, 1)}, run_opts={"device": "cpu"})
    with pytest.raises(TypeError, match=r"unexpected \['speaker'\]"):
        NeedsTeacher(modules={"model": torch.nn.Linear(1, 1)}, run_opts={"device": "cpu"}, teacher=teacher,
                     speaker=teacher)


def stage_for(tmp_path, fingerprint: str):
    from speechlib.tasks.stage import Stage

    return Stage("train", {"seed": 1}, {"device": "cpu"}, tmp_path, fingerprint)


def test_training_helper_layout_logs_and_invalidation(tmp_path):
    """build_brain + fit: exp/<tag>/<system>/{save, train_log.txt, tensorboard, loss curve json
    and png, throughput}; an unchanged config resumes (nothing to do), a changed one retrains."""
    import json

    from speechlib.tasks.training import build_brain, fit, system_dir

    def train(fingerprint: str, epochs: int):
        brain = build_brain(Regression, stage_for(tmp_path, fingerprint), "reg", {"model": torch.nn.Linear(1, 1)},
                            optimizer=lambda p: torch.optim.SGD(p, 0.01), epochs=epochs)
        return brain, fit(brain, dataset(None), dataset(None), train_loader_kwargs={"batch_size": 2})

    brain, throughput = train("aaaa", 3)
    folder = system_dir(tmp_path, "reg")
    curve = json.loads(folder.loss_curve.read_text())
    assert [row["epoch"] for row in curve] == [1, 2, 3] and throughput["epochs"] == 3
    # the curve's numbers are the epoch means SpeechBrain computed: check the last against a
    # direct evaluation of the final model on the validation set
    model = brain.modules.model
    x = torch.arange(4.0).unsqueeze(1)
    expected = float(((model(x) - x) ** 2).mean())
    assert curve[-1]["valid"]["loss"] == pytest.approx(expected, rel=1e-5)
    assert folder.train_log.read_text().count("epoch: ") == 3
    assert list(folder.tensorboard.iterdir()) and folder.loss_png.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(folder.throughput.read_text())["epochs"] == 3
    checkpoints = sorted(folder.save.glob("CKPT*"))

    train("aaaa", 3)  # same config: recovers the finished checkpoint, trains nothing
    assert sorted(folder.save.glob("CKPT*")) == checkpoints
    train("bbbb", 2)  # changed config: the old system is removed, trained again
    assert [row["epoch"] for row in json.loads(folder.loss_curve.read_text())] == [1, 2]
    assert folder.fingerprint.read_text().strip() == "bbbb"


class NoisyRegression(Regression):
    """Draws from torch's global generator every step, as random crops and augmentations do."""

    def compute_forward(self, batch, stage):
        return self.modules.model(batch.x.data + torch.randn_like(batch.x.data))


def test_a_resumed_training_repeats_an_uninterrupted_one(tmp_path):
    """The random states travel with the checkpoint: 2 epochs in one go == 1 epoch, a new
    process (other global seed), and the 2nd epoch resumed from the checkpoint."""
    from speechlib.tasks.training import build_brain, fit

    def train(folder, epochs: int):
        brain = build_brain(NoisyRegression, stage_for(folder, "f"), "reg", {"model": torch.nn.Linear(1, 1)},
                            optimizer=lambda p: torch.optim.SGD(p, 0.05), epochs=epochs)
        fit(brain, dataset(None), train_loader_kwargs={"batch_size": 2})
        curve = json.loads((folder / "reg" / "loss_curve.json").read_text())
        return brain.modules.model.weight.detach().clone(), [row["train"]["loss"] for row in curve]

    torch.manual_seed(0)
    straight, straight_losses = train(tmp_path / "a", 2)
    torch.manual_seed(0)
    train(tmp_path / "b", 1)
    torch.manual_seed(12345)  # the re-run is another process: its generator is elsewhere
    resumed, resumed_losses = train(tmp_path / "b", 2)
    assert torch.equal(straight, resumed)
    # the resumed epoch reports its own mean loss, not one averaged with the epoch before it
    assert resumed_losses == straight_losses



LOG_THEN_EXIT = """
import os, sys
from speechlib.tasks.training import TrainingRun, system_dir

run = TrainingRun(system_dir(sys.argv[1], "reg"), "reg", 3)
for epoch in (1, 2, 3):  # the TensorBoard part of log_epoch alone: nothing slow after it
    run.tensorboard.log_stats({"epoch": epoch}, train_stats={"loss": 1.0 / epoch}, valid_stats={"loss": 2.0 / epoch})
run.flush()
os._exit(0)  # at once, as a finished DDP rank leaves (speechlib.io.errors.exit_process)
"""


def test_flushed_tensorboard_events_survive_os_exit(tmp_path, monkeypatch):
    """A DDP rank leaves with os._exit: events still queued in TensorBoard's writer thread would be
    lost (without TrainingRun.flush this child leaves no scalar), so fit() flushes them."""
    import os
    import subprocess
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from speechlib.tasks import training
    from tests.helpers import REPO

    done = subprocess.run([sys.executable, "-c", LOG_THEN_EXIT, str(tmp_path)],
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    events = EventAccumulator(str(training.system_dir(tmp_path, "reg").tensorboard))
    events.Reload()
    assert [e.value for e in events.Scalars("loss/valid")] == pytest.approx([2.0, 1.0, 2.0 / 3])

    flushed = []
    monkeypatch.setattr(training.TrainingRun, "flush", lambda run: flushed.append(run.system))
    brain = training.build_brain(Regression, stage_for(tmp_path / "fit", "aaaa"), "reg",
                                 {"model": torch.nn.Linear(1, 1)}, optimizer=lambda p: torch.optim.SGD(p, 0.01),
                                 epochs=1)
    training.fit(brain, dataset(None), dataset(None), train_loader_kwargs={"batch_size": 2})
    assert flushed == ["reg"]
