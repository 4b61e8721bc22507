"""End-to-end: egs/voice_privacy on the small mini corpus with the tiny CI config, through run.sh,
then the user-facing protect/restore commands on the trained model, and stage skipping."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import PYTHON, REPO, run

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def finished_run(recipe_runs) -> Path:
    """The session's one tiny run of egs/voice_privacy (tests/recipes/conftest.py), in a temp dir."""
    return recipe_runs.get("voice_privacy")


def _first_number(cell: str) -> float:
    return float(cell.split()[0])


def test_every_stage_ran_and_wrote_the_tables(finished_run):
    exp = finished_run / "exp" / "tiny_voice_privacy"
    results = json.loads((exp / "results.json").read_text())
    tables = {table["title"]: table for table in results["tables"]}
    for protocol in ("paper", "extended"):
        for model in ("white", "black", "ge2e"):
            table = next(t for title, t in tables.items() if title.startswith(f"Table 1 ({protocol} protocol, {model})"))
            assert table["columns"] == ["rec-rec", "rec-adv", "adv-adv", "rec-rst", "rec-an", "rec-gn"]
            for cell in table["rows"]["test-clean male"] + table["rows"]["test-clean female"]:
                value, low, high = (float(v) for v in cell.replace("[", "").replace("]", "").replace(",", "").split())
                assert 0.0 <= low <= value <= high <= 100.0, cell
            assert table["rows"]["dev-clean male"][0].startswith("not run (its speakers train")
    assert any(title.startswith("minDCF") for title in tables) and any(title.startswith("Paired") for title in tables)
    table2 = next(t for title, t in tables.items() if title.startswith("Table 2"))
    assert table2["columns"] == ["rec", "adv", "rst", "an", "qt", "ms", "gn"]
    assert table2["rows"]["SNR (dB)"][0] == "∞" and _first_number(table2["rows"]["PESQ"][0]) == pytest.approx(4.5, abs=0.01)
    assert table2["rows"]["utterances"] == [2] * 7
    assert (finished_run / "RESULTS.md").read_text().count("(paper)") >= 7
    assert list((exp / "examples").glob("*_rst.flac"))
    assert len(list((exp / "asv" / "det").glob("test-clean_*.png"))) == 6
    assert (exp / "asv" / "cosines_test-clean.png").is_file()
    for name in ("prepare", "train_speaker_white", "train_speaker_black", "train", "protect_sets", "asv", "report"):
        assert (exp / "conf" / f"{name}.yaml").is_file(), name


def test_restored_audio_is_closer_to_the_recording_than_the_protected_audio(finished_run):
    """The trained tiny pair: per utterance, rst has a higher SNR against the recording than adv,
    and the white-box embedding of rst is closer to the recording's than that of adv (means)."""
    exp = finished_run / "exp" / "tiny_voice_privacy"
    rows = [json.loads(line) for part in (exp / "quality").glob("part.*.jsonl") for line in part.read_text().splitlines()]
    snr = {cond: np.array([r["snr"] for r in rows if r["cond"] == cond]) for cond in ("adv", "rst")}
    assert snr["rst"].mean() > snr["adv"].mean() + 3
    cosines = json.loads((exp / "asv" / "cosines.json").read_text())["test-clean"]["white"]
    assert np.mean(cosines["rst"]) > np.mean(cosines["adv"])


def test_trial_lists_are_balanced(finished_run):
    exp = finished_run / "exp" / "tiny_voice_privacy"
    utt_gender = {}
    for line in (finished_run / "data" / "test-clean" / "spk2gender").read_text().splitlines():
        spk, gender = line.split()
        utt_gender[spk] = gender
    for gender in ("m", "f"):
        lines = [line.split() for line in (exp / "asv" / "trials" / f"test-clean_{gender}_paper").read_text().splitlines()]
        per_enroll = Counter((e, kind) for e, _, kind in lines)
        assert len({e for e, _ in per_enroll}) == 20
        assert set(per_enroll.values()) <= {1, 30}
        assert sum(1 for (_, kind), n in per_enroll.items() if kind == "target" and n == 1) == 20
        assert all(utt_gender[t.split("-")[0]] == gender for _, t, _ in lines)
        extended = (exp / "asv" / "trials" / f"test-clean_{gender}_extended").read_text().splitlines()
        assert len(extended) == 60 * 59 // 2  # 20 speakers x 3 utterances, every pair


def test_protect_and_restore_commands(finished_run, tmp_path):
    """The trained tiny pair through the user commands on a 48 kHz stereo recording: each output
    48 kHz stereo of the input's length, and per channel the restored file is closer to the
    recording than the protected one (a remover that returns its input fails here)."""
    from speechlib.io.audio import resample
    from speechlib.signal.mixing import snr_db
    from speechlib.tasks.voice_privacy.apply import read_provenance

    exp = finished_run / "exp" / "tiny_voice_privacy"
    wav = next((exp / "audio" / "test-clean" / "adv").glob("*.wav")).name
    source = Path(next(line.split(maxsplit=1)[1] for line in
                       (finished_run / "data" / "test-clean" / "wav.scp").read_text().splitlines()
                       if line.startswith(wav[:-4] + " ")))
    mono, rate = soundfile.read(source)
    high = resample(mono.astype(np.float32), rate, 48000)
    stereo = np.stack([high, 0.6 * np.roll(high, 480)], axis=1)
    soundfile.write(tmp_path / "x.wav", stereo, 48000, subtype="FLOAT")
    protected, restored = tmp_path / "p.wav", tmp_path / "r.wav"
    for module, src, dst in (("protect", tmp_path / "x.wav", protected), ("restore", protected, restored)):
        out = run([PYTHON, "-m", f"speechlib.tasks.voice_privacy.{module}", "--model", str(exp),
                   "--in", str(src), "--out", str(dst), "--report"])
        assert out.returncode == 0, out.stderr
        assert "white-box cosine" in out.stdout
        assert "1 done, 0 refused, 0 failed of 1" in out.stdout.strip().splitlines()[-1]
    p, p_rate = soundfile.read(protected)
    r, r_rate = soundfile.read(restored)
    assert p_rate == r_rate == 48000 and p.shape == r.shape == stereo.shape
    with soundfile.SoundFile(protected) as handle:
        gain = read_provenance(handle.copy_metadata())["gain"]  # the headroom gain, 1 unless near full scale
    for channel in range(2):
        x = stereo[:, channel]
        assert snr_db(gain * x, p[:, channel] - gain * x) < 60  # protection did change it
        assert snr_db(x, r[:, channel] - x) > snr_db(x, p[:, channel] - x) + 3, channel
    out = run([PYTHON, "-m", "speechlib.tasks.voice_privacy.restore", "--model", str(exp),
               "--in", str(tmp_path / "x.wav"), "--out", str(tmp_path / "y.wav")])
    assert out.returncode == 1 and "no voice-privacy provenance" in out.stderr
    out = run([PYTHON, "-m", "speechlib.tasks.voice_privacy.protect", "--model", str(tmp_path),
               "--in", str(source), "--out", str(tmp_path / "z.wav")])
    assert out.returncode == 1 and "not a model directory" in out.stderr and "Traceback" not in out.stderr


def test_finished_stages_are_skipped(finished_run):
    out = run(["./run.sh", "--config", "conf/tiny_voice_privacy.yaml", "--stage", "2", "--stop-stage", "2"],
              cwd=finished_run, env={"MAIN_ROOT": str(REPO), "LIBRISPEECH": ""})
    assert out.returncode == 0, out.stderr
    exp = finished_run / "exp" / "tiny_voice_privacy"
    assert "is up to date" in (exp / "log" / "train.log").read_text()


def test_joint_probe_runs_on_the_trained_models_and_the_angular_term_alone_fools_the_speaker(finished_run):
    """The README's diagnosis tool: on the tiny run's white box, a generator trained on the angular
    term alone (theta 0, beta 0) over one repeated batch lowers the cosine to the recording's
    embedding; with --grads it also prints each weighted part's pull."""
    def probe(*options: str) -> list[str]:
        out = run([PYTHON, "-m", "speechlib.tasks.voice_privacy.joint_probe", "conf/tiny_voice_privacy.yaml",
                   "--speaker", "exp/tiny_voice_privacy/speaker_white", "--data", "data/train", "--utts", "8",
                   "--lr", "1e-3", "--fixed-batch", *options], cwd=finished_run)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.splitlines()

    lines = probe("--theta", "0", "--beta", "0", "--steps", "10", "--log-every", "9")
    angular = [float(line.split("angular ")[1].split(",")[0]) for line in lines if line.startswith("step ")]
    assert len(angular) == 2 and angular[1] < angular[0] - 1e-3, lines
    pulls = [line for line in probe("--steps", "1", "--grads") if "|gradient|" in line]
    assert len(pulls) == 1 and all(name in pulls[0] for name in ("angular", "quality", "rpt")), pulls
    assert any(line.startswith("step 1:") for line in probe("--steps", "1", "--detach-targets"))
