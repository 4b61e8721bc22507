"""One end-to-end test over every recipe, driven by tests/recipes/recipes.csv (SpeechBrain's
tests/recipes style). A row per recipe:

    recipe          egs/<recipe>
    config          its tiny config (seconds to a few minutes on 2 CPU cores)
    run_args        extra run.sh arguments (shell words, e.g. --nj 2)
    env             KEY=VALUE pairs for the run ({mini}: the mini corpus; KEY= hides a db.sh corpus)
    expected_files  paths under exp/<tag>/ the run must leave, space separated
    expected_tables title prefixes results.json must hold, ';' separated
    repeat_args     the exact-repeat check (README, "Same command, same table"). `all`: the whole
                    recipe runs again in a fresh copy, and every table and loss curve must equal
                    the first run's to the last digit. Otherwise run.sh arguments selecting the
                    recipe's first training stage (e.g. `--stage 2 --stop-stage 2`): a copy of the
                    first run with every trained system and stage marker removed runs them, and
                    each system it trains must repeat the first run's loss curve to the last digit
                    (the data stages' own fixed-output checks live in the recipes' tests)
    mini            yes: the recipe reads the mini corpus (the session's small build)
    timeout         seconds per run

The first run is the session's one tiny run of the recipe (tests/recipes/conftest.py), which the
recipe's own end-to-end tests (test_<recipe>*.py) read too. Add your recipe's row here
(utils/new_recipe.sh adds one for a new recipe).
"""
from __future__ import annotations

import csv
import json
import shlex
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO, copy_recipe, run
from tests.recipes.conftest import TABLE, recipe_env, run_row, table_rows


def outcome(exp: Path) -> dict:
    """What must repeat exactly: every table, and the losses of every trained system."""
    results = exp / "results.json"
    tables = json.loads(results.read_text())["tables"] if results.is_file() else None
    losses = {}
    for curve in sorted(exp.rglob("loss_curve.json")):
        losses[str(curve.parent.relative_to(exp))] = [
            {split: {k: v for k, v in (row[split] or {}).items() if "loss" in k} for split in ("train", "valid")}
            for row in json.loads(curve.read_text())]
    return {"tables": tables, "losses": losses}


def retrain_copy(recipe: Path, dest: Path) -> Path:
    """A copy of a finished recipe run without its trained systems (every directory holding a
    loss curve) and without its stage markers, so the training stages run again on the same data."""
    shutil.copytree(recipe, dest, symlinks=True)
    for curve in list((dest / "exp").rglob("loss_curve.json")):
        shutil.rmtree(curve.parent, ignore_errors=True)
    for marker in list((dest / "exp").rglob(".done")):   # a stage's marker dir, or a system's file
        shutil.rmtree(marker) if marker.is_dir() else marker.unlink()
    return dest


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row["recipe"])
def test_recipe_end_to_end(row, recipe_runs, tmp_path, request):
    exp = recipe_runs.exp(row["recipe"])
    missing = [name for name in row["expected_files"].split() if not (exp / name).exists()]
    assert not missing, f"egs/{row['recipe']}: missing under {exp.name}: {missing}"
    titles = [table["title"] for table in json.loads((exp / "results.json").read_text())["tables"]]
    for prefix in filter(None, row["expected_tables"].split(";")):
        assert any(title.startswith(prefix) for title in titles), f"no table '{prefix}...' in {titles}"
    if not row["repeat_args"]:
        return
    mini = request.getfixturevalue("mini_small") if row["mini"] == "yes" else None
    if row["repeat_args"] == "all":
        recipe, out = run_row(row, tmp_path, mini)
    else:
        recipe = retrain_copy(exp.parent.parent, tmp_path / row["recipe"])
        out = run(["./run.sh", "--config", row["config"], *shlex.split(row["run_args"]),
                   *shlex.split(row["repeat_args"])], cwd=recipe, env=recipe_env(row, mini),
                  timeout=float(row["timeout"]))
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    again = outcome(recipe / "exp" / exp.name)
    first = outcome(exp)
    assert again["losses"], f"the repeat ({row['repeat_args']}) trained nothing to compare"
    for system, curve in again["losses"].items():
        assert curve == first["losses"][system], f"{system}: the same command gave another loss curve"
    if again["tables"] is not None:
        assert again["tables"] == first["tables"], "the same command gave another table"


def test_the_table_names_existing_recipes_and_configs():
    recipes = {path.parent.name for path in REPO.glob("egs/*/run.sh")}
    listed = {row["recipe"] for row in table_rows()}
    assert listed == recipes, f"recipes without a row: {recipes - listed}; rows without a recipe: {listed - recipes}"
    for row in table_rows():
        assert (REPO / "egs" / row["recipe"] / row["config"]).is_file(), row
        assert row["mini"] in ("yes", "no"), row


def test_new_recipe_skeleton_runs(tmp_path):
    """utils/new_recipe.sh NAME in a scratch checkout: the skeleton it makes runs end to end on
    its tiny config and gets its row in the table."""

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
    assert table_rows()[0]["recipe"] == "toy"
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
