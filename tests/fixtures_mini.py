"""Session fixtures for the mini corpus, shared by every test that needs real audio.

`mini_small`: the `--small` corpus (every promised speaker count, fewer utterances), built once
per test session into a temp dir from the cached packages (tools/downloads; fetched with
`apt-get download` on a fresh machine). About 70 s of CPU (format 3, measured 55 s user + 16 s
system: 45 base voices, festival/flite synthesis, Praat pseudo-speakers); 3.5 min wall measured on
the shared 2-core machine at load 13 (more when another build holds the build lock). Never
skipped: a failure to build fails. Under pytest-xdist every worker asks for the same directory
(beside the workers' own temp dirs): the first builds it, the others wait on the build lock of
tools/make_mini_corpus.sh and find it complete.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAKE_MINI = REPO / "tools" / "make_mini_corpus.sh"


@pytest.fixture(scope="session")
def mini_small(tmp_path_factory) -> Path:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.getbasetemp().parent / "mini_small" / "mini"
    else:
        out = tmp_path_factory.mktemp("mini") / "mini"
    proc = subprocess.run([str(MAKE_MINI), "--small", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / ".complete").is_file()
    return out
