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
