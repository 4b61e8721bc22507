"""speechlib.tasks.model_dir: one format, one loader that refuses what is not the asked-for model."""
from __future__ import annotations

import hashlib
import json
import stat

import pytest
import torch

from speechlib.io.errors import InputError
from speechlib.tasks.model_dir import load_model_dir, save_model_dir


def small(width: int = 3) -> torch.nn.Module:
    return torch.nn.Linear(width, 2)


def save(path, recipe="se_uda", kind="enhancer", width=3):
    torch.manual_seed(0)
    module = small(width)
    save_model_dir(path, recipe=recipe, kind=kind, system="dann", sample_rate=16000, modules={"net": module},
                   configs={"net": {"width": width}}, corpus="mini v2", extra={"note": "x"})
    return module


def test_round_trip_with_provenance(tmp_path):
    module = save(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m", "se_uda", "enhancer")
    rebuilt = loaded.build("net", small)
    assert torch.equal(rebuilt.weight, module.weight) and not rebuilt.training
    assert loaded.sample_rate == 16000 and loaded.config == {"net": {"width": 3}}
    assert {"recipe", "system", "git", "corpus", "date", "command"} <= set(loaded.provenance)
    assert loaded.provenance["corpus"] == "mini v2" and loaded.extra == {"note": "x"}
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o044 == 0o044 for p in (tmp_path / "m").iterdir())


@pytest.mark.parametrize("recipe,kind,message", [
    ("voice_privacy", "protect", "this is a se_uda enhancer model (system dann), not a voice_privacy protect model"),
    ("se_uda", "classifier", "not a se_uda classifier model"),
])
def test_foreign_directory_refused_in_one_line(tmp_path, recipe, kind, message):
    save(tmp_path / "m")
    with pytest.raises(InputError) as err:
        load_model_dir(tmp_path / "m", recipe, kind)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model_dir(tmp_path / "nothing", "se_uda", "enhancer")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="has no model.json"):
        load_model_dir(tmp_path / "plain", "se_uda", "enhancer")
    (tmp_path / "plain" / "model.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a speechlib model directory"):
        load_model_dir(tmp_path / "plain", "se_uda", "enhancer")


class Payload:
    """Unpickling this would run code: weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_weights_load_with_weights_only(tmp_path):
    save(tmp_path / "m")
    torch.save({"weight": Payload()}, tmp_path / "m" / "net.pt")
    with pytest.raises(InputError, match="weights do not match model.json"):
        load_model_dir(tmp_path / "m", "se_uda", "enhancer").state_dict("net")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["sha256"]["net"] = hashlib.sha256((tmp_path / "m" / "net.pt").read_bytes()).hexdigest()
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="cannot load weights"):
        load_model_dir(tmp_path / "m", "se_uda", "enhancer").state_dict("net")


def test_weights_that_do_not_fit_the_config(tmp_path):
    save(tmp_path / "m", width=3)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["config"]["net"]["width"] = 5
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="do not fit the architecture"):
        load_model_dir(tmp_path / "m", "se_uda", "enhancer").build("net", small)


def test_a_killed_save_is_never_loaded_as_a_model(tmp_path, monkeypatch):
    save(tmp_path / "m")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("speechlib.tasks.model_dir.atomic_write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path / "m", width=4)  # new weights written, model.json not
    with pytest.raises(InputError, match="a save was interrupted"):
        load_model_dir(tmp_path / "m", "se_uda", "enhancer").build("net", small)
    monkeypatch.undo()
    (tmp_path / "m" / "keep").mkdir()
    save(tmp_path / "m", width=4)  # the re-run completes it; other files stay
    assert load_model_dir(tmp_path / "m", "se_uda", "enhancer").build("net", small).weight.shape == (2, 4)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["keep", "model.json", "net.pt"]


def test_enhance_finds_the_first_seed_of_an_experiment_dir(tmp_path, monkeypatch):
    """`--model exp/<tag>` (the --help example) on a multi-seed run: exp/<tag>/seed<N>/models/<system>,
    lowest N first (seed2 before seed10); a plain exp dir's models/<system> before any seed's."""
    import argparse

    from speechlib.nn.unet import SpeechNoiseUNet
    from speechlib.tasks.se_uda import enhance
    from speechlib.tasks.se_uda.common import save_model

    loaded = []
    monkeypatch.setattr(enhance, "load_model_dir", lambda path, *a: loaded.append(path) or load_model_dir(path, *a))
    for seed in ("seed10", "seed2"):
        save_model(tmp_path / "exp" / seed / "models" / "dann", SpeechNoiseUNet((4, 8)))
    enhance.load(argparse.Namespace(model=str(tmp_path / "exp"), system="dann", device="cpu"))
    assert loaded[-1] == tmp_path / "exp" / "seed2" / "models" / "dann"
    save_model(tmp_path / "exp" / "models" / "dann", SpeechNoiseUNet((4, 8)))
    enhance.load(argparse.Namespace(model=str(tmp_path / "exp"), system="dann", device="cpu"))
    assert loaded[-1] == tmp_path / "exp" / "models" / "dann"
