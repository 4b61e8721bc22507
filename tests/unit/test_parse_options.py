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
