"""Stage 0 of egs/mushra_gml: real per-listener MUSHRA data -> screened listening-test data dirs.

    python -m speechlib.tasks.mushra_gml.prepare conf/mini_mushra_gml.yaml --output_folder exp/x \
        --odaq DIR --odaq_audio DIR --webmushra CSV --listening_csv CSV

Each db.sh corpus variable (ODAQ result folder + audio folder, a webMUSHRA mushra.csv, a generic
per-listener CSV) that is set is read, checked for completeness (every listener rated every
stimulus of the test), post-screened per ITU-R BS.1534-3, and written as data/<test>/ plus
data/tests.json (each test's role: train, or the name of a held-out test set). With every
variable empty the mini tests of stage 1 are used and this stage has nothing to do.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from speechlib.data.listening_tests import Rating, check_complete, post_screen, read_generic_csv, write_test_dir
from speechlib.data.odaq import read_odaq
from speechlib.data.webmushra import read_webmushra_csv
from speechlib.io.atomic import atomic_write_text
from speechlib.io.errors import InputError, exit_on_input_error
from speechlib.tasks.stage import start_stage

log = logging.getLogger("mushra_gml.prepare")


def screen_and_write(ratings: list[Rating], hp: dict, roles: dict[str, str]) -> dict:
    """Completeness check, BS.1534-3 post-screening, one data dir per test, data/tests.json.

    `roles`: test -> "train" or a held-out test-set name; tests without a role are not written.
    Returns the tests.json content (roles, listeners kept and excluded with reasons).
    """
    check_complete(ratings)
    kept, report = post_screen(ratings, hp["screen_reference_pattern"], hp["screen_anchor_pattern"],
                               hp["screen_reference_min"], hp["screen_anchor_max"], hp["screen_max_share"])
    log.info("post-screening (ITU-R BS.1534-3):\n%s", report.summary())
    unknown = sorted({r.test for r in ratings} - set(roles))
    if unknown:
        log.warning("tests without a role in the config (not used): %s", ", ".join(unknown))
    data = Path(hp["data_folder"])
    summary = {}
    for test, role in sorted(roles.items()):
        rows = [r for r in kept if r.test == test]
        if not rows:
            raise InputError(f"test '{test}' (config: tests) has no ratings after screening")
        write_test_dir(data / test, rows)
        summary[test] = {"role": role, "listeners": report.kept.get(test, []),
                         "excluded": report.excluded.get(test, {})}
    atomic_write_text(data / "tests.json", json.dumps(summary, indent=1) + "\n")
    return summary


def read_real_corpora(hp: dict) -> list[Rating]:
    """The ratings of every corpus variable that is set (db.sh -> config keys)."""
    ratings: list[Rating] = []
    if hp["odaq"]:
        ratings += read_odaq([hp["odaq"]], hp["odaq_audio"] or None)
    if hp["webmushra"]:
        ratings += read_webmushra_csv(hp["webmushra"])
    if hp["listening_csv"]:
        ratings += read_generic_csv(hp["listening_csv"])
    return ratings


def main() -> None:
    stage = start_stage("prepare", options=())
    hp = stage.hparams
    if not (hp["odaq"] or hp["webmushra"] or hp["listening_csv"]):
        log.info("no real listening-test corpus set in db.sh (ODAQ, WEBMUSHRA, LISTENING_CSV): "
                 "stage 1 builds the mini tests with a simulated panel")
        return
    tests = Path(hp["data_folder"]) / "tests.json"
    if stage.is_done((tests,)):
        log.info("%s is up to date", tests)
        return
    summary = screen_and_write(read_real_corpora(hp), hp, dict(hp["test_roles"]))
    stage.mark_done()
    log.info("wrote %d tests: %s", len(summary), ", ".join(summary))


if __name__ == "__main__":
    exit_on_input_error("mushra_gml.prepare", main)
