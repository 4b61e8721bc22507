"""utils/run.py: Kaldi run.pl's interface, with arguments passed literally."""
from __future__ import annotations

import re
import time

from tests.helpers import PYTHON, REPO, run

RUN = [PYTHON, str(REPO / "utils" / "run.py")]


def test_substitutes_job_in_command_and_log(tmp_path):
    out = run(RUN + ["JOB=1:3", str(tmp_path / "log" / "x.JOB.log"), "echo", "task-JOB"])
    assert out.returncode == 0, out.stderr
    for task in (1, 2, 3):
        log = (tmp_path / "log" / f"x.{task}.log").read_text()
        assert f"\ntask-{task}\n" in log
        assert log.startswith(f"# echo task-{task}\n# Started at ")
        assert re.search(r"# Accounting: time=\d+ threads=1\n# Ended \(code 0\) at .*elapsed time \d+ seconds\n$", log)


def test_single_job_and_other_variable_name(tmp_path):
    out = run(RUN + ["TASK=3", str(tmp_path / "y.TASK.log"), "echo", "TASK"])
    assert out.returncode == 0
    assert "\n3\n" in (tmp_path / "y.3.log").read_text()
    plain = run(RUN + [str(tmp_path / "z.log"), "echo", "JOB"])
    assert "\nJOB\n" in (tmp_path / "z.log").read_text() and plain.returncode == 0


def test_arguments_are_never_interpreted_by_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    nasty = ["id with spaces", "it's \"quoted\"", f"$(touch {marker})", f"; touch {marker}", "`id`"]
    out = run(RUN + ["JOB=1:2", str(tmp_path / "q.JOB.log"), PYTHON, "-c",
                     "import sys; print(repr(sys.argv[1:]))", *nasty])
    assert out.returncode == 0, out.stderr
    assert repr(nasty) in (tmp_path / "q.1.log").read_text()
    assert not marker.exists()


def test_failure_report_names_count_glob_and_tail(tmp_path):
    script = "import sys; print('about to fail', sys.argv[1]); sys.exit(3 if sys.argv[1] in ('2', '4') else 0)"
    out = run(RUN + ["JOB=1:5", str(tmp_path / "f.JOB.log"), PYTHON, "-c", script, "JOB"])
    assert out.returncode == 1
    assert f"run.py: 2 / 5 failed, log is in {tmp_path}/f.*.log" in out.stderr
    assert f"{tmp_path}/f.2.log (exit code 3)" in out.stderr
    assert "about to fail 2" in out.stderr
    assert "# Ended (code 3)" in (tmp_path / "f.2.log").read_text()


def test_command_not_found_and_killed_job(tmp_path):
    out = run(RUN + [str(tmp_path / "n.log"), "no-such-program-xyz"])
    assert out.returncode == 1 and "exit code 127" in out.stderr
    killed = run(RUN + [str(tmp_path / "k.log"), "bash", "-c", "kill -9 $$"])
    assert killed.returncode == 1 and "out of memory" in killed.stderr


def test_array_without_job_in_log_is_refused(tmp_path):
    out = run(RUN + ["JOB=1:4", str(tmp_path / "same.log"), "true"])
    assert out.returncode == 1
    assert "lacks JOB" in out.stderr
    assert not (tmp_path / "same.log").exists()


def test_max_jobs_run_caps_concurrency(tmp_path):
    # each job sleeps 1 s: longer than a Python start on a loaded machine, so two jobs overlap
    script = ("import sys, time; print('start', time.time()); time.sleep(1.0); print('end', time.time())")
    started = time.monotonic()
    out = run(RUN + ["--max-jobs-run", "2", "--mem", "4G", "--time", "1:00:00", "JOB=1:6",
                     str(tmp_path / "c.JOB.log"), PYTHON, "-c", script])
    elapsed = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    intervals = []
    for task in range(1, 7):
        fields = dict(line.split() for line in (tmp_path / f"c.{task}.log").read_text().splitlines()
                      if line.startswith(("start", "end")))
        intervals.append((float(fields["start"]), float(fields["end"])))
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running, peak = 0, 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2
    assert elapsed >= 3 * 1.0


def test_gpu_option_needs_visible_gpus(tmp_path):
    out = run(RUN + ["--gpu", "1", str(tmp_path / "g.log"), "true"], env={"CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 1 and "more GPUs than are visible" in out.stderr
    # two visible GPUs, one per job: each job gets its own device, at most 2 at once
    out = run(RUN + ["--gpu", "1", "JOB=1:4", str(tmp_path / "g.JOB.log"), "bash", "-c",
                     "echo dev=$CUDA_VISIBLE_DEVICES"], env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert out.returncode == 0
    devices = {line[4:] for t in range(1, 5) for line in (tmp_path / f"g.{t}.log").read_text().splitlines()
               if line.startswith("dev=")}
    assert devices == {"0", "1"}


def test_usage_errors():
    assert run(RUN + ["JOB=1:2"]).returncode == 1
    assert run(RUN + ["--max-jobs-run", "x", "JOB=1:2", "l.JOB.log", "true"]).returncode == 1


# ---------------------------------------------------------------- no silent success (issue 17)
def _shell(command: str, tmp_path):
    import subprocess

    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_every_job_runs_under_a_low_open_file_limit(tmp_path):
    """ulimit -n 64 and 100 jobs: concurrency shrinks to fit; all jobs run, exit 0."""
    out = _shell(f"ulimit -n 64; {PYTHON} {REPO}/utils/run.py JOB=1:100 {tmp_path}/l/t.JOB.log "
                 f"{PYTHON} -c 'open(\"{tmp_path}/done.JOB\", \"w\")'", tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(list(tmp_path.glob("done.*"))) == 100 and "Traceback" not in out.stderr


def test_too_few_descriptors_is_one_line_and_fails(tmp_path):
    out = _shell(f"ulimit -n 18; {PYTHON} {REPO}/utils/run.py JOB=1:3 {tmp_path}/t.JOB.log true", tmp_path)
    assert out.returncode == 1 and "ulimit -n" in out.stderr and "Traceback" not in out.stderr


def test_unwritable_log_dir_runs_nothing_and_fails(tmp_path):
    (tmp_path / "afile").write_text("a file, not a directory")
    out = run(RUN + ["JOB=1:3", str(tmp_path / "afile" / "log" / "t.JOB.log"), "touch", str(tmp_path / "ran.JOB")])
    assert out.returncode == 1 and "cannot write the logs" in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.glob("ran.*"))


def test_a_job_whose_log_cannot_be_written_counts_as_not_done(tmp_path):
    (tmp_path / "d.2").write_text("blocks the log directory of job 2")
    out = run(RUN + ["JOB=1:3", str(tmp_path / "d.JOB" / "t.log"), "touch", str(tmp_path / "ran.JOB")])
    assert out.returncode == 1, out.stderr
    assert "job 2 never started" in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == "run.py: 1 of 3 job(s) not done (1 never started)"
    assert sorted(p.name for p in tmp_path.glob("ran.*")) == ["ran.1", "ran.3"]


def test_bad_ranges_and_option_values_are_refused(tmp_path):
    out = run(RUN + ["JOB=a:b", str(tmp_path / "x.JOB.log"), "touch", str(tmp_path / "ran")])
    assert out.returncode == 1 and "bad job range 'JOB=a:b'" in out.stderr
    out = run(RUN + ["--mem", "JOB=1:2", str(tmp_path / "x.JOB.log"), "touch", str(tmp_path / "ran")])
    assert out.returncode == 1 and "option --mem needs a value (got 'JOB=1:2')" in out.stderr
    assert not (tmp_path / "ran").exists() and not list(tmp_path.glob("x.*"))


def test_progress_lines_without_carriage_returns():
    import io

    from speechlib.io.progress import Progress

    stream = io.StringIO()
    progress = Progress(4, "run.py", unit="job", interval=0.0, stream=stream)
    progress.update(1)
    progress.tick()  # nothing finished: still a line (a long job shows the run is alive)
    progress.update(3)
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["run.py: 1/4 jobs done", "run.py: 1/4 jobs done",
                                                       "run.py: 4/4 jobs done"]
    assert "\r" not in stream.getvalue()
