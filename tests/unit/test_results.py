"""RESULTS.md: tables with the paper's numbers beside ours, environment block, collection."""
from __future__ import annotations

import json
import math

import pytest

from speechlib.results.collect import collect
from speechlib.results.tables import ResultTable, write_results


def table() -> ResultTable:
    return ResultTable(title="Table 1: PESQ", columns=["-5 dB", "0 dB"],
                       rows={"Noisy": [1.234, 1.5], "SRST": [float("nan"), "not run (needs a GPU)"]},
                       paper={"Noisy": [1.11, None]})


def markdown_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("| System"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_markdown_has_ours_and_the_papers_rows():
    rows = markdown_rows(table().to_markdown())
    assert rows["Noisy"] == ["1.23", "1.50"]
    assert rows["*Noisy (paper)*"] == ["*1.11*", "*–*"]
    assert rows["SRST"] == ["nan", "not run (needs a GPU)"]
    assert list(rows) == ["Noisy", "*Noisy (paper)*", "SRST"]


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        ResultTable(title="t", columns=["a"], rows={"x": [1, 2]})
    with pytest.raises(ValueError, match="no row of ours"):
        ResultTable(title="t", columns=["a"], rows={"x": [1]}, paper={"y": [2]})


def test_write_and_collect(tmp_path):
    recipe = tmp_path / "egs" / "demo"
    (recipe / "exp" / "a").mkdir(parents=True)
    (recipe / "exp" / "a" / "hist.png").write_bytes(b"png")
    md = write_results(recipe / "exp" / "a", "demo", [table()], corpus="mini", figures=["hist.png"])
    text = md.read_text()
    assert "Corpus: **mini**" in text and "not comparable" in text
    for key in ("date", "git", "python", "torch", "speechbrain", "device", "corpus"):
        assert f"- {key}: `" in text
    payload = json.loads((recipe / "exp" / "a" / "results.json").read_text())
    assert payload["environment"]["corpus"] == "mini"
    assert math.isnan(payload["tables"][0]["rows"]["SRST"][0])
    write_results(recipe / "exp" / "b", "demo b", [table()], corpus="real")
    out = collect(recipe)
    combined = out.read_text()
    assert "## demo (`exp/a`)" in combined and "## demo b (`exp/b`)" in combined
    # figures under exp/ (not committed) are copied next to the recipe's RESULTS.md
    assert "![a-hist](figures/a-hist.png)" in combined
    assert (recipe / "figures" / "a-hist.png").read_bytes() == b"png"
    assert markdown_rows(combined)["*Noisy (paper)*"] == ["*1.11*", "*–*"]


def test_git_revision_ignores_generated_results(tmp_path):
    import subprocess

    from speechlib.results.environment import git_revision

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "RESULTS.md").write_text("old\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    clean = git_revision(tmp_path)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "RESULTS.md").write_text("regenerated\n")
    assert git_revision(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_revision(tmp_path) == clean + "-dirty"


def test_headline_examples_recipe_json_and_summary(tmp_path, monkeypatch):
    """collect publishes listening examples and writes egs/<recipe>/results.json; the summary
    takes each table's headline cells, ours beside the paper's, and the reproducing command."""
    import numpy as np
    import soundfile

    from speechlib.results.examples import write_example
    from speechlib.results.summary import build

    recipe = tmp_path / "egs" / "demo"
    exp = recipe / "exp" / "a"
    marked = ResultTable(title="Table 2", columns=["EER", "WER"], rows={"ours": [12.5, 3.0], "base": [20.0, 4.0]},
                         paper={"ours": [10.0, None]}, headline=[("ours", "EER"), ("ours", "WER")])
    sr = 16000
    long = 0.5 * np.sin(np.arange(10 * sr) / 10)
    flac = write_example(exp / "examples" / "utt1.wav", long, sr)
    assert flac.suffix == ".flac" and soundfile.info(flac).frames == 4 * sr
    write_results(exp, "demo", [table(), marked], corpus="mini", examples=["examples/utt1.flac"])
    (recipe / "examples").mkdir()
    (recipe / "examples" / "stale.flac").write_bytes(b"old")
    monkeypatch.chdir(recipe)  # as run.sh calls it: `collect .`
    combined = collect(".").read_text()
    assert "[a-utt1](examples/a-utt1.flac)" in combined
    assert sorted(p.name for p in (recipe / "examples").iterdir()) == ["a-utt1.flac"]
    payload = json.loads((recipe / "results.json").read_text())
    assert payload["recipe"] == "demo" and payload["experiments"][0]["exp"] == "exp/a"
    text = build(tmp_path)
    rows = [line for line in text.splitlines() if line.startswith("| [demo]")]
    assert [row.split(" | ")[4:] for row in rows] == [["ours", "EER", "12.50", "10.00 |"],
                                                      ["ours", "WER", "3.00", "– |"]]
    assert "| mini |" in rows[0] and "`exp/a`" in rows[0]


def test_examples_over_budget_are_refused(tmp_path):
    from speechlib.io.errors import InputError
    from speechlib.results.examples import BUDGET_BYTES, publish_examples

    big = tmp_path / "big.flac"
    big.write_bytes(b"x" * (BUDGET_BYTES + 1))
    with pytest.raises(InputError, match="over the 1000000-byte budget"):
        publish_examples(tmp_path / "recipe", {big: tmp_path / "recipe" / "examples" / "big.flac"})
    assert not (tmp_path / "recipe" / "examples").exists()


def test_det_points_match_a_direct_count():
    """Every threshold: miss = P(target <= t), false alarm = P(non-target > t), counted by hand."""
    import numpy as np

    from speechlib.results.plots import det_points

    rng = np.random.default_rng(0)
    target, nontarget = rng.normal(1, 1, 50).round(1), rng.normal(-1, 1, 70).round(1)
    fa, miss = det_points(target, nontarget)
    thresholds = np.unique(np.r_[target, nontarget])
    assert fa[0] == 1.0 and miss[0] == 0.0 and fa[-1] == 0.0 and miss[-1] == 1.0
    for t, f, m in zip(thresholds, fa[1:], miss[1:]):
        assert m == pytest.approx(np.mean(target <= t)) and f == pytest.approx(np.mean(nontarget > t))


def test_plots_write_pngs(tmp_path):
    import numpy as np

    from speechlib.results import plots

    rng = np.random.default_rng(1)
    true = rng.normal(3, 1, 40)
    pred = true + rng.normal(0, 0.5, 40)
    paths = [plots.scatter_lcc(true, pred, tmp_path / "s.png"),
             plots.det_curves({"a": (rng.normal(1, 1, 30), rng.normal(-1, 1, 30))}, tmp_path / "d.png"),
             plots.metric_vs_snr({"x": {-5: 1.0, 0: 2.0}}, tmp_path / "m.png", "PESQ"),
             plots.spectrograms({"noisy": rng.normal(0, 0.1, 8000), "clean": rng.normal(0, 0.1, 8000)}, 16000,
                                tmp_path / "sp.png"),
             plots.loss_curves([{"epoch": 1, "train": {"loss": 1.0}, "valid": {"loss": 1.2}},
                                {"epoch": 2, "train": {"loss": 0.5}, "valid": None}], tmp_path / "l.png")]
    for path in paths:
        assert path.read_bytes()[:4] == b"\x89PNG"


def test_mini_corpus_identity_follows_its_content(tmp_path, monkeypatch):
    from speechlib.results.environment import describe_environment, mini_corpus_identity

    monkeypatch.setenv("SPEECHLIB_MINI", str(tmp_path))
    assert mini_corpus_identity() == "not built"
    (tmp_path / ".complete").write_text("abc\n")
    (tmp_path / "skipped.txt").write_text("")
    first = mini_corpus_identity()
    (tmp_path / "skipped.txt").write_text("festvox-kallpc16k: not downloaded\n")
    assert mini_corpus_identity() != first
    assert describe_environment("mini")["mini corpus"] == mini_corpus_identity()
    assert "mini corpus" not in describe_environment("real")
