"""One end-to-end test over every recipe, driven by tests/recipes/recipes.csv (SpeechBrain's
tests/recipes style). A row per recipe:

    recipe          egs/<recipe>
    config          its tiny config (seconds to a few minutes on 2 CPU cores)
    run_args        extra run.sh arguments, space separated (e.g. --stop-stage 8)
    expected_files  paths under exp/<tag>/ the run must leave, space separated
    expected_tables title prefixes results.json must hold, ';' separated
    repeatable      yes: run the recipe a second time in a fresh copy and require the same
                    results.json tables and the same training losses, to the last digit
                    (README, "Same command, same table"); no: run once
    mini            yes: the recipe reads the mini corpus (the session's small build)
    timeout         seconds per run

Add your recipe's row here (utils/new_recipe.sh adds one for a new recipe). A row whose recipe
starts with '#' is skipped: se_uda, voice_privacy and mos_pretrain run their tiny config once, in
their own end-to-end tests (tests/recipes/test_<recipe>*.py, with the issue-specific assertions);
running it here too cost about 400 s of make test's 20-minute budget on 2 cores.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers import REPO, copy_recipe, run

TABLE = Path(__file__).with_name("recipes.csv")


def rows() -> list[dict[str, str]]:
    with open(TABLE, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["recipe"] and not row["recipe"].startswith("#")]


def run_recipe(row: dict[str, str], parent: Path, env: dict[str, str]) -> Path:
    """Copy the recipe under `parent`, run it on its tiny config, return exp/<tag>."""
    recipe = copy_recipe(row["recipe"], parent)
    out = run(["./run.sh", "--config", row["config"], "--tag", "e2e", *row["run_args"].split()], cwd=recipe,
              env=env, timeout=float(row["timeout"]))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "Successfully finished" in out.stdout
    return recipe / "exp" / "e2e"


def outcome(exp: Path) -> dict:
    """What must repeat exactly: every table, and the losses of every trained system."""
    tables = json.loads((exp / "results.json").read_text())["tables"]
    losses = {}
    for curve in sorted(exp.glob("*/loss_curve.json")):
        losses[curve.parent.name] = [{split: {k: v for k, v in (row[split] or {}).items() if "loss" in k}
                                      for split in ("train", "valid")} for row in json.loads(curve.read_text())]
    return {"tables": tables, "losses": losses}


@pytest.mark.parametrize("row", rows(), ids=lambda row: row["recipe"])
def test_recipe_end_to_end(row, tmp_path, request):
    env = {"MAIN_ROOT": str(REPO)}
    if row["mini"] == "yes":
        env["SPEECHLIB_MINI"] = str(request.getfixturevalue("mini_small"))
    exp = run_recipe(row, tmp_path / "first", env)
    missing = [name for name in row["expected_files"].split() if not (exp / name).exists()]
    assert not missing, f"egs/{row['recipe']}: missing under exp/e2e: {missing}"
    titles = [table["title"] for table in json.loads((exp / "results.json").read_text())["tables"]]
    for prefix in filter(None, row["expected_tables"].split(";")):
        assert any(title.startswith(prefix) for title in titles), f"no table '{prefix}...' in {titles}"
    if row["repeatable"] == "yes":
        again = run_recipe(row, tmp_path / "second", env)
        assert outcome(again) == outcome(exp), "the same command gave another table or loss curve"


def test_the_table_names_existing_recipes_and_configs():
    for row in rows():
        assert (REPO / "egs" / row["recipe"] / row["config"]).is_file(), row
        assert row["repeatable"] in ("yes", "no") and row["mini"] in ("yes", "no"), row


def test_new_recipe_skeleton_runs(tmp_path):
    """utils/new_recipe.sh NAME in a scratch checkout: the skeleton it makes runs end to end on
    its tiny config and gets its row in the table."""
    import shutil

    root = tmp_path / "repo"
    (root / "egs").mkdir(parents=True)
    (root / "tests" / "recipes").mkdir(parents=True)
    shutil.copy(TABLE, root / "tests" / "recipes" / "recipes.csv")
    shutil.copytree(REPO / "speechlib", root / "speechlib", ignore=shutil.ignore_patterns("__pycache__"))
    copy_recipe("toy", root / "egs")
    for link in ("utils", "tools"):
        (root / link).symlink_to(REPO / link)
    out = run([str(REPO / "utils" / "new_recipe.sh"), "--root", str(root), "demo"])
    assert out.returncode == 0, out.stderr
    assert (root / "egs" / "demo" / "path.sh").resolve() == (REPO / "utils" / "path.sh").resolve()
    assert rows()[0]["recipe"] == "toy"
    row = list(csv.DictReader(open(root / "tests" / "recipes" / "recipes.csv", encoding="utf-8")))[-1]
    assert row["recipe"] == "demo" and row["config"] == "conf/tiny_demo.yaml"
    assert "speechlib.tasks.demo.train" in (root / "egs" / "demo" / "run.sh").read_text()
    done = run(["./run.sh", "--config", "conf/tiny_demo.yaml"], cwd=root / "egs" / "demo",
               env={"MAIN_ROOT": str(root), "PYTHONPATH": str(root)}, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = json.loads((root / "egs" / "demo" / "exp" / "tiny_demo" / "results.json").read_text())
    assert results["environment"]["command"] == "cd egs/demo && ./run.sh --config conf/tiny_demo.yaml"
    refused = run([str(REPO / "utils" / "new_recipe.sh"), "--root", str(root), "demo"])
    assert refused.returncode == 1 and "exists" in refused.stderr
