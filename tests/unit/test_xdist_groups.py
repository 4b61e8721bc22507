"""tests/conftest.py's xdist groups: every test reading a recipe's shared tiny run lands on the
worker of that recipe's run, every Slurm test on the one worker with the daemons.

A wrong group does not fail a test: the run is then built twice (minutes) or the daemons started
twice. Checked against what each test module itself asks for, read from its source."""
from __future__ import annotations

import json
import re
import sys

from tests.helpers import REPO, run

COLLECT = """
import json, sys
import pytest
from tests.conftest import shared_fixture_group

class Groups:
    def pytest_collection_finish(self, session):
        rows = [[item.nodeid, list(getattr(item, "fixturenames", ())), shared_fixture_group(item)]
                for item in session.items]
        print("GROUPS " + json.dumps(rows))

sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
                      "tests/recipes", "tests/unit/test_slurm.py"], plugins=[Groups()]))
"""


def collected() -> list[tuple[str, list[str], str | None]]:
    out = run([sys.executable, "-c", COLLECT], cwd=REPO)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    line = next(line for line in out.stdout.splitlines() if line.startswith("GROUPS "))
    return [tuple(row) for row in json.loads(line[len("GROUPS "):])]


def recipes_asked_for(module: str) -> set[str]:
    """The recipes whose shared run a test module reads: recipe_runs.get("x") / .exp("x")."""
    source = (REPO / module).read_text(encoding="utf-8")
    return set(re.findall(r"recipe_runs\.(?:get|exp)\(\"(\w+)\"\)", source))


def test_each_shared_run_and_the_slurm_daemons_have_one_group():
    items = collected()
    assert len(items) > 20
    groups_of_recipe: dict[str, set[str]] = {}
    for nodeid, fixtures, group in items:
        module = nodeid.split("::")[0]
        if "slurm_cluster" in fixtures:
            assert group == "slurm", nodeid
        elif "recipe_runs" in fixtures:
            asked = recipes_asked_for(module)
            parametrised = re.search(r"\[(\w+)\]$", nodeid)  # test_recipes.py: one row per recipe
            if not asked and parametrised:
                asked = {parametrised[1]}
            assert len(asked) == 1, f"{nodeid}: reads the runs of {sorted(asked)}"
            recipe = asked.pop()
            assert group == f"recipe-{recipe}", nodeid
            groups_of_recipe.setdefault(recipe, set()).add(nodeid)
        else:
            assert group is None, nodeid
    recipes = {path.parent.name for path in (REPO / "egs").glob("*/run.sh")}
    assert set(groups_of_recipe) == recipes
    # the table-driven test and the recipe's own tests share the group
    assert all(len(nodeids) >= 2 for nodeids in groups_of_recipe.values()), groups_of_recipe
