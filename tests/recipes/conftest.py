"""One tiny run per recipe per test session, shared by the table-driven test (test_recipes.py)
and each recipe's own end-to-end tests, so that no recipe trains twice for the same check.

The run is described by the recipe's row in recipes.csv (config, extra run.sh arguments,
environment); it lives in a copy of the recipe under the session's temp dir, with the default
tag (the config's name), so `recipe_runs.get(name) / "exp" / "tiny_<name>"` holds its results.
"""
from __future__ import annotations

import csv
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, copy_recipe, run

TABLE = Path(__file__).with_name("recipes.csv")


def table_rows(include_disabled: bool = False) -> list[dict[str, str]]:
    """The rows of recipes.csv; a row whose recipe starts with '#' is disabled."""
    with open(TABLE, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["recipe"]]
    return [row for row in rows if include_disabled or not row["recipe"].startswith("#")]


def row_of(recipe: str) -> dict[str, str]:
    for row in table_rows():
        if row["recipe"] == recipe:
            return row
    raise KeyError(f"tests/recipes/recipes.csv has no (enabled) row for {recipe}")


def recipe_env(row: dict[str, str], mini: Path | None) -> dict[str, str]:
    """MAIN_ROOT, the mini corpus when the row reads it, and the row's own KEY=VALUE pairs
    (`{mini}` in a value is the mini corpus's path; an empty value hides a real corpus of db.sh)."""
    env = {"MAIN_ROOT": str(REPO)}
    if row["mini"] == "yes":
        env["SPEECHLIB_MINI"] = str(mini)
    for pair in shlex.split(row.get("env") or ""):
        key, _, value = pair.partition("=")
        env[key] = value.replace("{mini}", str(mini))
    return env


def run_row(row: dict[str, str], parent: Path, mini: Path | None, *extra: str) -> tuple[Path, subprocess.CompletedProcess]:
    """Copy the recipe under `parent` and run it on the row's tiny config (plus `extra`)."""
    recipe = copy_recipe(row["recipe"], parent)
    out = run(["./run.sh", "--config", row["config"], *shlex.split(row["run_args"]), *extra], cwd=recipe,
              env=recipe_env(row, mini), timeout=float(row["timeout"]))
    return recipe, out


class RecipeRuns:
    """Runs each recipe's tiny config at most once per session; a failed run fails every test
    that asks for it, with the run's output."""

    def __init__(self, request: pytest.FixtureRequest, parent: Path):
        self._request, self._parent, self._done = request, parent, {}

    def get(self, recipe: str) -> Path:
        if recipe not in self._done:
            row = row_of(recipe)
            mini = self._request.getfixturevalue("mini_small") if row["mini"] == "yes" else None
            self._done[recipe] = run_row(row, self._parent / recipe, mini)
        path, out = self._done[recipe]
        assert out.returncode == 0, (out.stdout[-3000:] + out.stderr[-3000:])
        assert "Successfully finished" in out.stdout, out.stdout[-3000:]
        return path

    def exp(self, recipe: str) -> Path:
        return self.get(recipe) / "exp" / Path(row_of(recipe)["config"]).stem


@pytest.fixture(scope="session")
def recipe_runs(request, tmp_path_factory) -> RecipeRuns:
    return RecipeRuns(request, tmp_path_factory.mktemp("recipe_runs"))
