"""End-to-end: egs/voice_privacy on the small mini corpus with the tiny CI config, through run.sh,
then the user-facing protect/restore commands on the trained model, and stage skipping."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import PYTHON, REPO, copy_recipe, run

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def finished_run(mini_small, tmp_path_factory) -> Path:
    """A copy of egs/voice_privacy (data/ and exp/ in a temp dir) run end to end once."""
    dest = copy_recipe("voice_privacy", tmp_path_factory.mktemp("vp"))
    out = run(["./run.sh", "--config", "conf/tiny_voice_privacy.yaml", "--nj", "2"], cwd=dest,
              env={"MAIN_ROOT": str(REPO), "SPEECHLIB_MINI": str(mini_small), "LIBRISPEECH": ""}, timeout=540)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return dest


def test_every_stage_ran_and_wrote_the_tables(finished_run):
    exp = finished_run / "exp" / "tiny_voice_privacy"
    results = json.loads((exp / "results.json").read_text())
    titles = [table["title"] for table in results["tables"]]
    assert any(t.startswith("Table 1") for t in titles) and any(t.startswith("Table 2") for t in titles)
    table1 = next(t for t in results["tables"] if t["title"].startswith("Table 1"))
    for cell in table1["rows"]["test-clean male"] + table1["rows"]["test-clean female"]:
        assert 0.0 <= cell <= 100.0
    assert table1["rows"]["dev-clean male"][0].startswith("not run")
    table2 = next(t for t in results["tables"] if t["title"].startswith("Table 2"))
    assert table2["columns"] == ["rec", "adv", "rst", "an", "qt", "ms"]
    assert table2["rows"]["SNR (dB)"][0] == "∞" and table2["rows"]["PESQ"][0] == pytest.approx(4.5, abs=0.01)
    assert table2["rows"]["utterances"] == [4] * 6
    assert (finished_run / "RESULTS.md").read_text().count("(paper)") >= 7
    assert list((exp / "examples").glob("*_rst.wav"))
    assert list((exp / "tensorboard").iterdir())
    for name in ("prepare", "train_speaker_white", "train_speaker_black", "train", "protect_sets", "asv", "report"):
        assert (exp / "conf" / f"{name}.yaml").is_file(), name


def test_trial_lists_are_balanced(finished_run):
    exp = finished_run / "exp" / "tiny_voice_privacy"
    utt_gender = {}
    for line in (finished_run / "data" / "test-clean" / "spk2gender").read_text().splitlines():
        spk, gender = line.split()
        utt_gender[spk] = gender
    for gender in ("m", "f"):
        lines = [line.split() for line in (exp / "asv" / "trials" / f"test-clean_{gender}").read_text().splitlines()]
        per_enroll = Counter((e, kind) for e, _, kind in lines)
        assert len({e for e, _ in per_enroll}) == 20
        assert set(per_enroll.values()) <= {1, 30}
        assert sum(1 for (_, kind), n in per_enroll.items() if kind == "target" and n == 1) == 20
        assert all(utt_gender[t.split("-")[0]] == gender for _, t, _ in lines)


def test_protect_and_restore_commands(finished_run, tmp_path):
    exp = finished_run / "exp" / "tiny_voice_privacy"
    wav = next((exp / "audio" / "test-clean" / "adv").glob("*.wav")).name
    source = Path(next(line.split(maxsplit=1)[1] for line in
                       (finished_run / "data" / "test-clean" / "wav.scp").read_text().splitlines()
                       if line.startswith(wav[:-4] + " ")))
    protected, restored = tmp_path / "p.wav", tmp_path / "r.wav"
    for module, src, dst in (("protect", source, protected), ("restore", protected, restored)):
        out = run([PYTHON, "-m", f"speechlib.tasks.voice_privacy.{module}", "--model", str(exp),
                   "--in", str(src), "--out", str(dst)])
        assert out.returncode == 0, out.stderr
        assert "1 processed, 0 refused" in out.stdout
    x, _ = soundfile.read(source)
    p, _ = soundfile.read(protected)
    r, _ = soundfile.read(restored)
    assert len(x) == len(p) == len(r)
    assert 0 < np.abs(p - x).max() <= 0.05 + 1e-3
    out = run([PYTHON, "-m", "speechlib.tasks.voice_privacy.protect", "--model", str(tmp_path),
               "--in", str(source), "--out", str(tmp_path / "x.wav")])
    assert out.returncode == 1 and "ssed.json missing" in out.stderr and "Traceback" not in out.stderr


def test_finished_stages_are_skipped(finished_run):
    out = run(["./run.sh", "--config", "conf/tiny_voice_privacy.yaml", "--stage", "2", "--stop-stage", "2"],
              cwd=finished_run, env={"MAIN_ROOT": str(REPO), "LIBRISPEECH": ""})
    assert out.returncode == 0, out.stderr
    exp = finished_run / "exp" / "tiny_voice_privacy"
    assert "is up to date" in (exp / "log" / "train.log").read_text()
