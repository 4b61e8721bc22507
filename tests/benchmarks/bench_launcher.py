"""Benchmark utils/run.py: per-job overhead, and 100 trivial jobs with --max-jobs-run 2.

Targets (issue 2): overhead per job under 0.5 s; 100 trivial jobs with --max-jobs-run 2 in
under 60 s. The peer measured in the same run is the bare cost of starting the same command
directly (subprocess), so the launcher's own overhead is the difference.

    python tests/benchmarks/bench_launcher.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results" / "launcher.json"
TRIVIAL = ["true"]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    run_py = [sys.executable, str(REPO / "utils" / "run.py")]
    with tempfile.TemporaryDirectory() as tmp:
        bare = min(timed(TRIVIAL) for _ in range(20))
        single = min(timed(run_py + [f"{tmp}/one.log"] + TRIVIAL) for _ in range(5))
        array_100 = timed(run_py + ["--max-jobs-run", "2", "JOB=1:100", f"{tmp}/a.JOB.log"] + TRIVIAL)
        serial_bare = sum(timed(TRIVIAL) for _ in range(100))
    per_job = (array_100 - single) / 100 * 2  # two run at once: wall time per slot per job
    rows = {
        "bare `true` (peer), s": bare,
        "run.py, one job (incl. Python start-up), s": single,
        "run.py, 100 jobs --max-jobs-run 2, s": array_100,
        "100 bare `true` in series (peer), s": serial_bare,
        "launcher overhead per job (per slot), s": per_job,
    }
    width = max(map(len, rows))
    for name, value in rows.items():
        print(f"{name:<{width}}  {value:8.4f}")
    verdict = {"per_job_under_0.5s": per_job < 0.5, "100_jobs_under_60s": array_100 < 60}
    print("targets:", verdict)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"seconds": rows, "targets_met": verdict}, indent=1) + "\n")


if __name__ == "__main__":
    main()
