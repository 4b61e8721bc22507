"""pytest plugin: the `slurm_cluster` fixture, a real single-node Slurm for the session.

Registered from tests/conftest.py (`pytest_plugins = ["tests.slurm_fixtures"]`). Under CI=true a
Slurm that cannot be started fails the tests (tools/setup.sh installs slurm-wlm and munge there);
elsewhere, without root or without the packages, the tests are skipped with the reason.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.slurm_cluster import LocalSlurm, missing_programs


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true but the local Slurm cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurm]:
    """A started LocalSlurm; use `slurm_cluster.env` (it carries SLURM_CONF) for commands."""
    missing = missing_programs()
    if missing:
        unavailable(f"Slurm/munge programs missing ({', '.join(missing)}); "
                    f"install with: apt-get install slurm-wlm munge (tools/setup.sh does it as root)")
    if os.geteuid() != 0:
        unavailable("starting munged/slurmctld/slurmd needs root (slurmd runs jobs as their user)")
    cluster = LocalSlurm()
    try:
        cluster.start()
    except Exception as err:  # noqa: BLE001 - any start failure has the same consequence
        cluster.stop()
        unavailable(f"local Slurm did not start: {err}")
    try:
        yield cluster
    finally:
        cluster.stop()
