"""Shared fixtures: the mini corpus (built once per session) and a real single-node Slurm.

`make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`). Session
fixtures are per worker, so the tests that share an expensive one are kept on one worker: a
recipe's tiny run (`recipe_runs`) with every test that reads it, and the local Slurm
(`slurm_cluster`, one set of daemons per machine). The mini corpus is shared between workers
through one build directory (tests/fixtures_mini.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures_mini", "tests.slurm_fixtures"]


def shared_fixture_group(item: pytest.Item) -> str | None:
    """The xdist group of a test that uses a per-session fixture too costly to build twice."""
    fixtures = getattr(item, "fixturenames", ())
    if "slurm_cluster" in fixtures:
        return "slurm"
    if "recipe_runs" in fixtures:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "row" in callspec.params:
            return f"recipe-{callspec.params['row']['recipe']}"
        module = Path(str(item.fspath)).stem
        for affix in ("test_", "_recipe", "_e2e"):
            module = module.replace(affix, "")
        return f"recipe-{module}"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = shared_fixture_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
