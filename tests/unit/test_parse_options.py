"""utils/parse_options.sh: ESPnet/Kaldi semantics."""
from __future__ import annotations

from tests.helpers import REPO, run

SCRIPT = f"""
stage=1; stop_stage=100; nj=4; use_gpu=false; tag=""; config=conf/a.yaml
help_message="usage: demo [options]"
. {REPO}/utils/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage nj=$nj use_gpu=$use_gpu tag=$tag config=$config rest=$*"
"""


def parse(*args: str, script: str = SCRIPT):
    return run(["bash", "-c", script, "demo", *args])


def test_sets_declared_variables_dashes_to_underscores():
    out = parse("--stage", "3", "--stop-stage=5", "--tag", "a b", "--use-gpu", "true", "pos1", "pos2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stage=3 stop_stage=5 nj=4 use_gpu=true tag=a b config=conf/a.yaml rest=pos1 pos2"


def test_unknown_option_is_an_error():
    out = parse("--stgae", "3")
    assert out.returncode != 0
    assert "invalid option --stgae" in out.stderr
    assert out.stdout == ""


def test_help_prints_usage_and_exits_zero():
    out = parse("--help")
    assert out.returncode == 0
    assert out.stdout.strip() == "usage: demo [options]"


def test_boolean_keeps_its_type_and_missing_value_fails():
    assert "takes true or false" in parse("--use-gpu", "yes").stderr
    assert "needs a value" in parse("--nj").stderr


def test_declared_config_is_a_plain_option():
    out = parse("--config", "conf/b.yaml")
    assert "config=conf/b.yaml" in out.stdout


def test_undeclared_config_is_sourced_first(tmp_path):
    shell_config = tmp_path / "opts.sh"
    shell_config.write_text("nj=9\nstage=7\n")
    script = SCRIPT.replace('; config=conf/a.yaml', '')
    out = parse("--stage", "2", "--config", str(shell_config), script=script)
    assert out.returncode == 0, out.stderr
    # the config file is applied first, explicit options win
    assert "stage=2" in out.stdout and "nj=9" in out.stdout
    missing = parse("--config", str(tmp_path / "nope.sh"), script=script)
    assert missing.returncode != 0 and "no such file" in missing.stderr


def test_double_dash_ends_options():
    out = parse("--nj", "2", "--", "--stage", "9")
    assert "nj=2" in out.stdout and "rest=--stage 9" in out.stdout


RECIPE = """#!/usr/bin/env bash
set -euo pipefail
stage=1; stop_stage=10000; nj=2; ngpu=0; config=conf/c.yaml; tag=""; seed=1; help_message=usage
. utils/recipe_init.sh
echo "launcher=${train_launcher[*]} device=${train_device[*]} db=${db_opts[*]}"
echo "command=${RECIPE_COMMAND}"
if stage_begin 1 "array"; then
    launch ${decode_cmd} JOB=1:3 exp/x/log/a.JOB.log bash -c 'echo JOB'
fi
if stage_begin 2 "one job with a progress line"; then
    launch ${train_cmd} exp/x/log/b.log bash -c 'echo "2026-01-01 00:00:00 INFO progress: epoch 1/1"'
fi
if stage_begin 3 "skipped unless asked"; then echo never; fi
"""


def recipe_dir(tmp_path):
    """A minimal recipe: run.sh sourcing utils/recipe_init.sh, the shared path.sh/cmd.sh."""
    recipe = tmp_path / "egs" / "r"
    (recipe / "conf").mkdir(parents=True)
    (recipe / "conf" / "c.yaml").write_text("seed: 1\n")
    (recipe / "run.sh").write_text(RECIPE)
    (recipe / "run.sh").chmod(0o755)
    (recipe / "db.sh").write_text("LIBRISPEECH=${LIBRISPEECH:-}\nWHAM_NOISE=/c/w\n")
    for name in ("path.sh", "cmd.sh"):
        (recipe / name).symlink_to(REPO / "utils" / name)
    (recipe / "utils").symlink_to(REPO / "utils")
    return recipe


def test_recipe_init_log_stages_launch_and_ngpu(tmp_path):
    recipe = recipe_dir(tmp_path)
    out = run(["./run.sh", "--stop-stage", "2"], cwd=recipe, env={"MAIN_ROOT": str(REPO)})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "launcher=utils/run.py device=--device cpu db=--librispeech  --wham_noise /c/w" in lines
    assert "command=cd egs/r && ./run.sh --stop-stage 2" in lines
    assert any(line.endswith("(run.sh:7:main) Stage 1: array") for line in lines)
    assert any(line.strip().endswith("jobs done: 3/3") for line in lines)
    assert any(line.strip().endswith("INFO progress: epoch 1/1") for line in lines)
    assert any("Stage 2 done [elapsed=" in line for line in lines) and "never" not in out.stdout
    assert "Successfully finished. [elapsed=" in lines[-1]
    gpu = run(["./run.sh", "--stop-stage", "0", "--ngpu", "2"], cwd=recipe, env={"MAIN_ROOT": str(REPO)})
    assert "launcher=utils/run.py --gpu 1 --gpu 2 device= " in gpu.stdout
    one = run(["./run.sh", "--stop-stage", "0", "--ngpu", "1"], cwd=recipe, env={"MAIN_ROOT": str(REPO)})
    assert "device=--device cuda:0" in one.stdout


def test_a_failing_stage_is_named_with_its_exit_code(tmp_path):
    recipe = recipe_dir(tmp_path)
    script = (recipe / "run.sh").read_text().replace("bash -c 'echo JOB'", "bash -c 'exit 3'")
    (recipe / "run.sh").write_text(script)
    out = run(["./run.sh"], cwd=recipe, env={"MAIN_ROOT": str(REPO)})
    assert out.returncode != 0
    assert "Failed in stage 1 with exit code 1." in out.stdout.splitlines()[-1]


def test_wait_all_lets_every_job_finish_and_reports_a_failure(tmp_path):
    recipe = recipe_dir(tmp_path)
    script = (recipe / "run.sh").read_text().replace('if stage_begin 1 "array"; then', '''bash -c 'exit 4' & a=$!
(sleep 0.5; touch late_job_finished) & b=$!
wait_all "${a}" "${b}" || echo "wait_all status $?"
true & wait_all $! && echo "wait_all ok"
if stage_begin 1 "array"; then''')
    (recipe / "run.sh").write_text(script)
    out = run(["./run.sh", "--stop-stage", "0"], cwd=recipe, env={"MAIN_ROOT": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "wait_all status 4" in out.stdout and "wait_all ok" in out.stdout
    assert (recipe / "late_job_finished").is_file()


def test_in_slots_keeps_at_most_n_running_and_reports_a_failure_that_ended_early(tmp_path):
    """The pool of utils/recipe_init.sh (audio2image's stages 2-3): never more than N commands at
    once, every command runs, and a failure that ended before anyone waited is still reported."""
    recipe = recipe_dir(tmp_path)
    script = (recipe / "run.sh").read_text().replace('if stage_begin 1 "array"; then', '''job() {  # job NAME SECONDS STATUS: records start/end, to count how many ran at once
    echo "start $1" >> events; sleep "$2"; echo "end $1" >> events; return "$3"
}
in_slots 2 job a 0 5
sleep 0.3
for name in b c d e; do in_slots 2 job "${name}" 1 0; done
wait_slots || echo "pool status $?"
in_slots 2 job f 0 0
wait_slots && echo "second pool ok"
if stage_begin 1 "array"; then''')
    (recipe / "run.sh").write_text(script)
    out = run(["./run.sh", "--stop-stage", "0"], cwd=recipe, env={"MAIN_ROOT": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "pool status 5" in out.stdout and "second pool ok" in out.stdout
    running, most = 0, 0
    events = (recipe / "events").read_text().split()
    for kind in events[::2]:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most == 2
    assert sorted(events[1::2]) == sorted("a a b b c c d d e e f f".split())
