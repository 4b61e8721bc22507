"""Shared fixtures: the mini corpus (built once per session) and a real single-node Slurm."""
pytest_plugins = ["tests.fixtures_mini", "tests.slurm_fixtures"]
