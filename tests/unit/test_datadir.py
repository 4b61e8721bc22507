"""Kaldi data-dir rules (speechlib.data.datadir) and the utils/*.sh wrappers around them.

Each rule test starts from a valid fixture dir and breaks exactly one rule, then checks that the
error names the file, the line and the rule. Sortedness is cross-checked with `LC_ALL=C sort`.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from speechlib.data.datadir import (DataDirWarning, combine_data_dirs, fix_data_dir, speaker_chunks,
                                    split_data_dir, subset_data_dir, validate_data_dir)
from speechlib.io.errors import InputError
from tests.helpers import REPO, run, write_tone

SPEAKERS = {"spkA": "m", "spkB": "f", "spkC": "f"}
UTTS = [f"{spk}-{i:03d}" for spk in SPEAKERS for i in range(1, 4)]  # 9 utterances, lines 1..9


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def c_sorted(lines: list[str]) -> list[str]:
    """The independent reference: what `LC_ALL=C sort` makes of these lines."""
    out = subprocess.run(["sort"], input="".join(l + "\n" for l in lines).encode(), capture_output=True,
                         env=dict(os.environ, LC_ALL="C"), check=True)
    return out.stdout.decode().splitlines()


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> Path:
    """Real small wav files, written once: one per utterance, two recordings, one at 8 kHz."""
    folder = tmp_path_factory.mktemp("audio")
    for utt in UTTS:
        write_tone(folder / f"{utt}.wav", seconds=0.3)
    for reco in ("recA", "recB"):
        write_tone(folder / f"{reco}.wav", seconds=1.0)
    write_tone(folder / "narrow.wav", seconds=0.3, sample_rate=8000)
    return folder


@pytest.fixture
def data(tmp_path, audio) -> Path:
    """A valid, unsegmented data dir: 3 speakers x 3 utterances with real audio."""
    d = tmp_path / "train"
    d.mkdir()
    write(d / "wav.scp", [f"{u} {audio / (u + '.wav')}" for u in UTTS])
    write(d / "utt2spk", [f"{u} {u.split('-')[0]}" for u in UTTS])
    write(d / "spk2utt", [f"{s} " + " ".join(u for u in UTTS if u.startswith(s)) for s in SPEAKERS])
    write(d / "text", [f"{u} HELLO WORLD {i}" for i, u in enumerate(UTTS)])
    write(d / "utt2dur", [f"{u} 0.3" for u in UTTS])
    write(d / "spk2gender", [f"{s} {g}" for s, g in SPEAKERS.items()])
    return d


SEGMENTS = [("spkA-recA-1", "recA", 0.0, 0.4), ("spkA-recA-2", "recA", 0.5, 0.9),
            ("spkB-recB-1", "recB", 0.0, 0.5), ("spkB-recB-2", "recB", 0.5, 1.0)]


@pytest.fixture
def segmented(tmp_path, audio) -> Path:
    """A valid segmented dir: 2 one-second recordings, 4 segments."""
    d = tmp_path / "seg"
    d.mkdir()
    write(d / "wav.scp", [f"{r} {audio / (r + '.wav')}" for r in ("recA", "recB")])
    write(d / "segments", [f"{u} {r} {s} {e}" for u, r, s, e in SEGMENTS])
    write(d / "utt2spk", [f"{u} {u.split('-')[0]}" for u, *_ in SEGMENTS])
    write(d / "spk2utt", ["spkA spkA-recA-1 spkA-recA-2", "spkB spkB-recB-1 spkB-recB-2"])
    write(d / "text", [f"{u} HI" for u, *_ in SEGMENTS])
    return d


def edit(path: Path, line: int, new: str | None) -> None:
    """Replace (or with None delete) 1-based `line` of a file."""
    lines = read_lines(path)
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    write(path, lines)


def expect_error(d: Path, name: str, line: int | None, *words: str, **options) -> InputError:
    with pytest.raises(InputError) as caught:
        validate_data_dir(d, **options)
    err = caught.value
    assert err.path == str(d / name), str(err)
    assert err.line == line, str(err)
    for word in words:
        assert word in err.message, str(err)
    assert "\n" not in str(err)
    return err


# ---------------------------------------------------------------------------------------------
# validate: the valid fixtures pass, each broken rule is named


def test_valid_fixtures_pass(data, segmented):
    dd = validate_data_dir(data)
    assert len(dd) == 9 and dd.speakers == list(SPEAKERS) and dd.sample_rate == 16000
    assert validate_data_dir(segmented).sample_rate == 16000


def test_unsorted_is_named_and_agrees_with_lc_all_c_sort(data):
    lines = read_lines(data / "utt2spk")
    lines[4], lines[5] = lines[5], lines[4]
    write(data / "utt2spk", lines)
    check = subprocess.run(["sort", "-c", str(data / "utt2spk")], env=dict(os.environ, LC_ALL="C"),
                           capture_output=True, text=True)
    assert check.returncode != 0 and ":6:" in check.stderr  # sort -c also blames line 6
    expect_error(data, "utt2spk", 6, "not sorted in C locale", "'spkB-002' after 'spkB-003'")


def test_c_locale_order_is_byte_order_not_dictionary_order(tmp_path):
    """Upper case before lower case, '-' before '_' : exactly what `LC_ALL=C sort` does."""
    utts = c_sorted(["s-b", "s-B", "s_a", "s-a", "s-é", "s-Z", "s-1"])
    d = tmp_path / "d"
    d.mkdir()
    write(d / "utt2spk", [f"{u} s" for u in utts])
    write(d / "spk2utt", ["s " + " ".join(utts)])
    validate_data_dir(d, require_text=False, require_wav=False)
    write(d / "utt2spk", [f"{u} s" for u in sorted(utts, key=str.lower)])  # locale-style order
    with pytest.raises(InputError, match="not sorted in C locale"):
        validate_data_dir(d, require_text=False, require_wav=False)


def test_duplicate_key(data):
    lines = read_lines(data / "text")
    write(data / "text", lines[:4] + [lines[3]] + lines[4:])
    expect_error(data, "text", 5, "duplicate key 'spkB-001'")


def test_line_without_value(data):
    edit(data / "utt2dur", 2, "spkA-002")
    expect_error(data, "utt2dur", 2, "has no value")


def test_speaker_id_single_token(data):
    edit(data / "utt2spk", 3, "spkA-003 spkA extra")
    expect_error(data, "utt2spk", 3, "single token")


def test_speaker_prefix(data):
    edit(data / "utt2spk", 3, "spkA-003 spkB")
    write(data / "spk2utt", ["spkA spkA-001 spkA-002", "spkB spkA-003 spkB-001 spkB-002 spkB-003",
                             "spkC spkC-001 spkC-002 spkC-003"])
    expect_error(data, "utt2spk", 3, "'spkB' is not a prefix of utterance id 'spkA-003'")


def test_spk2utt_consistent_with_utt2spk(data):
    edit(data / "spk2utt", 2, "spkB spkB-001 spkB-003")
    expect_error(data, "spk2utt", 2, "speaker 'spkB'", "'spkB-003' where utt2spk gives 'spkB-002'",
                 "grouped by speaker")


def test_utterance_missing_from_an_utterance_keyed_file(data):
    edit(data / "text", 5, None)
    expect_error(data, "text", 5, "utterance 'spkB-002' (utt2spk line 5) has no entry",
                 "cover exactly the utterances of utt2spk")


def test_utterance_keyed_file_with_an_extra_utterance(data):
    lines = read_lines(data / "utt2dur")
    write(data / "utt2dur", lines + ["spkD-001 0.3"])
    expect_error(data, "utt2dur", 10, "utterance 'spkD-001' is not in utt2spk")


def test_task_specific_utt2x_file_is_covered_too(data):
    write(data / "utt2category", [f"{u} speech" for u in UTTS[:-1]])
    expect_error(data, "utt2category", 9, "'spkC-003'", "has no entry")


def test_speaker_keyed_file_coverage(data):
    edit(data / "spk2gender", 2, None)
    expect_error(data, "spk2gender", 2, "speaker 'spkB' (utt2spk line 4) has no entry",
                 "speaker-keyed")


def test_missing_required_file(data):
    (data / "spk2utt").unlink()
    expect_error(data, "spk2utt", None, "does not exist")


def test_missing_text_allowed_with_no_text(data):
    (data / "text").unlink()
    expect_error(data, "text", None, "does not exist")
    validate_data_dir(data, require_text=False)


def test_referenced_audio_file_exists(data, tmp_path):
    edit(data / "wav.scp", 4, f"spkB-001 {tmp_path / 'gone.wav'}")
    expect_error(data, "wav.scp", 4, "'spkB-001'", "audio file does not exist", "gone.wav")
    validate_data_dir(data, check_audio=False)


def test_pipes_are_not_run_unless_asked(data):
    edit(data / "wav.scp", 2, "spkA-002 false |")
    validate_data_dir(data)
    expect_error(data, "wav.scp", 2, "command failed", run_pipes=True)


def test_one_sample_rate_per_dir(data, audio):
    edit(data / "wav.scp", 7, f"spkC-001 {audio / 'narrow.wav'}")
    expect_error(data, "wav.scp", 7, "sample rate 8000 Hz", "16000 Hz", "one sample rate")


def test_utt2dur_positive(data):
    edit(data / "utt2dur", 8, "spkC-002 0")
    expect_error(data, "utt2dur", 8, "positive")
    edit(data / "utt2dur", 8, "spkC-002 abc")
    expect_error(data, "utt2dur", 8, "'abc' is not a number")


def test_spk2gender_values(data):
    edit(data / "spk2gender", 3, "spkC x")
    expect_error(data, "spk2gender", 3, "gender 'x'", "m/f")


def test_segment_start_not_negative(segmented):
    edit(segmented / "segments", 2, "spkA-recA-2 recA -0.5 0.9")
    expect_error(segmented, "segments", 2, "start -0.5", ">= 0")


def test_segment_end_after_start(segmented):
    edit(segmented / "segments", 3, "spkB-recB-1 recB 0.5 0.5")
    expect_error(segmented, "segments", 3, "end 0.5", "after its start")


def test_segment_inside_recording_from_audio_header(segmented):
    edit(segmented / "segments", 4, "spkB-recB-2 recB 0.5 1.005")  # within the 10 ms slack
    validate_data_dir(segmented)
    edit(segmented / "segments", 4, "spkB-recB-2 recB 0.5 1.2")
    expect_error(segmented, "segments", 4, "after the end of recording 'recB'", "audio header")
    validate_data_dir(segmented, check_audio=False)  # no header, no bound


def test_segment_inside_recording_from_reco2dur(segmented):
    write(segmented / "reco2dur", ["recA 0.8", "recB 1.0"])
    expect_error(segmented, "segments", 2, "recording 'recA' (0.800 s from reco2dur)", check_audio=False)


def test_segment_recording_in_wav_scp(segmented):
    edit(segmented / "segments", 3, "spkB-recB-1 recC 0.0 0.5")
    expect_error(segmented, "segments", 3, "recording 'recC'", "not in wav.scp")


def test_recording_keyed_file_coverage(segmented):
    write(segmented / "reco2dur", ["recA 1.0"])
    expect_error(segmented, "reco2dur", 2, "recording 'recB' (wav.scp line 2) has no entry")


def test_segments_need_three_fields(segmented):
    edit(segmented / "segments", 1, "spkA-recA-1 recA 0.0")
    expect_error(segmented, "segments", 1, "got 3 fields")


# ---------------------------------------------------------------------------------------------
# fix


def test_fix_keeps_the_intersection_and_backs_up(data):
    originals = {p.name: p.read_text() for p in data.iterdir()}
    edit(data / "text", 5, None)                                   # spkB-002 lacks text
    lines = read_lines(data / "utt2dur")
    write(data / "utt2dur", lines[::-1] + [lines[0].replace("0.3", "9.9"), "spkZ-001 1.0"])  # unsorted, repeat
    edit(data / "spk2gender", 3, None)                             # spkC loses its gender
    broken = {p.name: p.read_text() for p in data.iterdir() if p.is_file()}
    with pytest.warns(DataDirWarning, match="1 duplicate keys, kept the first"):
        report = fix_data_dir(data)
    assert (report.kept, report.total) == (5, 9)
    assert report.dropped == {"not in text": 1, "speaker not in spk2gender": 3}
    assert report.summary() == "kept 5 of 9 utterances (dropped 4: 3 speaker not in spk2gender, 1 not in text)"
    validate_data_dir(data)
    kept = ["spkA-001", "spkA-002", "spkA-003", "spkB-001", "spkB-003"]
    assert [l.split()[0] for l in read_lines(data / "utt2spk")] == kept
    assert read_lines(data / "spk2utt") == ["spkA spkA-001 spkA-002 spkA-003", "spkB spkB-001 spkB-003"]
    assert read_lines(data / "utt2dur")[0] == "spkA-001 0.3"       # the first of a repeated key
    for name in ("utt2spk", "text", "utt2dur", "wav.scp", "spk2utt"):
        lines = read_lines(data / name)
        assert lines == c_sorted(lines)
    backup = data / ".backup"
    assert {p.name: p.read_text() for p in backup.iterdir()} == broken
    assert broken.keys() == originals.keys()


def test_fix_of_a_valid_dir_changes_nothing(data):
    before = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}
    report = fix_data_dir(data)
    assert report.changed == [] and report.kept == report.total == 9
    assert not (data / ".backup").exists()
    assert {p.name: p.stat().st_mtime_ns for p in data.iterdir()} == before


def test_fix_regenerates_spk2utt_and_drops_unused_recordings(segmented):
    (segmented / "spk2utt").write_text("garbage line\n")
    write(segmented / "text", [f"{u} HI" for u, *_ in SEGMENTS if u.startswith("spkA")])
    fix_data_dir(segmented)
    assert read_lines(segmented / "spk2utt") == ["spkA spkA-recA-1 spkA-recA-2"]
    assert [l.split()[0] for l in read_lines(segmented / "wav.scp")] == ["recA"]
    validate_data_dir(segmented)


# ---------------------------------------------------------------------------------------------
# split


def synthetic(path: Path, counts: list[int], segments: bool = False) -> Path:
    """A dir without audio (pipes are not run): speaker k has counts[k] utterances."""
    path.mkdir(parents=True)
    spks = [f"s{k:03d}" for k in range(len(counts))]
    utts = [f"{s}-{i:04d}" for s, n in zip(spks, counts) for i in range(n)]
    write(path / "utt2spk", [f"{u} {u.split('-')[0]}" for u in utts])
    write(path / "spk2utt", [f"{s} " + " ".join(u for u in utts if u.startswith(s + "-")) for s in spks])
    write(path / "text", [f"{u} WORDS OF {u}" for u in utts])
    write(path / "utt2dur", [f"{u} {1 + i % 7}.5" for i, u in enumerate(utts)])
    write(path / "spk2gender", [f"{s} {'mf'[k % 2]}" for k, s in enumerate(spks)])
    write(path / "wav.scp", [f"{u} flac -c -d -s /corpus/{u}.flac |" for u in utts])
    return path


COUNTS = [3, 12, 1, 7, 7, 2, 15, 4, 9, 1, 6, 8, 2, 11, 5, 3, 10, 1, 4, 6]


def parts_of(split_dir: Path, n: int) -> list[list[str]]:
    return [[l.split()[0] for l in read_lines(split_dir / str(j) / "utt2spk")] for j in range(1, n + 1)]


def test_split_by_speaker(tmp_path):
    d = synthetic(tmp_path / "d", COUNTS)
    out = split_data_dir(d, 4)
    assert out == d / "split4" and sorted(p.name for p in out.iterdir()) == ["1", "2", "3", "4"]
    parts = parts_of(out, 4)
    assert sum(parts, []) == utts_of(d)  # the union is everything, in order
    speakers = [{u.split("-")[0] for u in part} for part in parts]
    assert all(a.isdisjoint(b) for i, a in enumerate(speakers) for b in speakers[i + 1:])
    target = sum(COUNTS) / 4
    assert all(abs(len(part) - target) <= max(COUNTS) for part in parts)
    for j in range(1, 5):
        validate_data_dir(out / str(j), check_audio=False)
        assert len(read_lines(out / str(j) / "wav.scp")) == len(parts[j - 1])
        assert read_lines(out / str(j) / "text") == c_sorted(read_lines(out / str(j) / "text"))


def test_speaker_chunks_are_balanced_and_non_empty():
    rng = np.random.default_rng(0)
    for _ in range(50):
        counts = rng.integers(1, 50, size=rng.integers(5, 200))
        parts = int(rng.integers(1, len(counts) + 1))
        bounds = speaker_chunks(counts, parts)
        assert bounds[0] == 0 and bounds[-1] == len(counts) and np.all(np.diff(bounds) >= 1)
        sizes = np.add.reduceat(counts, bounds[:-1])
        if parts <= len(counts) // 4:
            assert np.all(np.abs(sizes - counts.sum() / parts) <= counts.max())


def test_split_per_utt(tmp_path):
    d = synthetic(tmp_path / "d", COUNTS)
    out = split_data_dir(d, 7, per_utt=True)
    assert out == d / "split7utt"
    parts = parts_of(out, 7)
    assert sum(parts, []) == utts_of(d) and max(map(len, parts)) - min(map(len, parts)) <= 1
    for j in range(1, 8):
        validate_data_dir(out / str(j), check_audio=False)


def test_split_into_more_parts_than_speakers_is_an_error(tmp_path):
    d = synthetic(tmp_path / "d", [2, 3])
    with pytest.raises(InputError, match="cannot split 2 speakers into 3 parts"):
        split_data_dir(d, 3)
    split_data_dir(d, 3, per_utt=True)


def test_split_is_reused_while_newer_than_its_source(tmp_path):
    d = synthetic(tmp_path / "d", COUNTS)
    out = split_data_dir(d, 3)
    stamp = (out / "1" / "utt2spk").stat().st_mtime_ns
    split_data_dir(d, 3)
    assert (out / "1" / "utt2spk").stat().st_mtime_ns == stamp
    future = stamp + 5_000_000_000
    os.utime(d / "text", ns=(future, future))
    split_data_dir(d, 3)
    assert (out / "1" / "utt2spk").stat().st_mtime_ns != stamp


def test_split_keeps_segments_and_recordings_consistent(segmented):
    out = split_data_dir(segmented, 2)
    for j in (1, 2):
        validate_data_dir(out / str(j))
        assert len(read_lines(out / str(j) / "wav.scp")) == 1


# ---------------------------------------------------------------------------------------------
# subset and combine


def utts_of(d: Path) -> list[str]:
    return [l.split()[0] for l in read_lines(d / "utt2spk")]


def test_subset_variants(tmp_path):
    d = synthetic(tmp_path / "d", COUNTS)
    all_utts = utts_of(d)
    assert subset_data_dir(d, tmp_path / "n", num=10) == 10
    assert utts_of(tmp_path / "n") == [all_utts[i] for i in (np.arange(10) * len(all_utts)) // 10]
    subset_data_dir(d, tmp_path / "f", first=5)
    assert utts_of(tmp_path / "f") == all_utts[:5]
    subset_data_dir(d, tmp_path / "l", last=5)
    assert utts_of(tmp_path / "l") == all_utts[-5:]
    write(tmp_path / "ulist", ["s001-0003", "s000-0001", "nobody-1"])
    with pytest.warns(DataDirWarning, match="1 of 3 utterances listed"):
        subset_data_dir(d, tmp_path / "u", utt_list=tmp_path / "ulist")
    assert utts_of(tmp_path / "u") == ["s000-0001", "s001-0003"]
    write(tmp_path / "slist", ["s002", "s006"])
    subset_data_dir(d, tmp_path / "s", spk_list=tmp_path / "slist")
    assert utts_of(tmp_path / "s") == [u for u in all_utts if u[:4] in ("s002", "s006")]
    subset_data_dir(d, tmp_path / "p", per_spk=2)
    per = utts_of(tmp_path / "p")
    assert len(per) == sum(min(2, c) for c in COUNTS)
    for name in "nflusp":
        validate_data_dir(tmp_path / name, check_audio=False)
        assert set(read_lines(tmp_path / name / "spk2gender")) <= set(read_lines(d / "spk2gender"))
    with pytest.raises(InputError, match="asked for 1000 utterances"):
        subset_data_dir(d, tmp_path / "x", num=1000)


def test_combine_restores_the_whole(tmp_path, data):
    subset_data_dir(data, tmp_path / "a", first=4)
    subset_data_dir(data, tmp_path / "b", last=5)
    assert combine_data_dirs(tmp_path / "all", [tmp_path / "b", tmp_path / "a"]) == 9
    for name in ("wav.scp", "utt2spk", "spk2utt", "text", "utt2dur", "spk2gender"):
        assert (tmp_path / "all" / name).read_text() == (data / name).read_text(), name
    validate_data_dir(tmp_path / "all")


def test_combine_duplicate_utterances_is_an_error(tmp_path, data):
    subset_data_dir(data, tmp_path / "a", first=4)
    subset_data_dir(data, tmp_path / "b", last=6)
    with pytest.raises(InputError) as caught:
        combine_data_dirs(tmp_path / "all", [tmp_path / "a", tmp_path / "b"])
    message = str(caught.value)
    assert f"{tmp_path / 'b' / 'utt2spk'}:1:" in message and str(tmp_path / "a" / "utt2spk") in message
    assert "'spkB-001'" in message and not (tmp_path / "all").exists()


def test_combine_drops_files_not_everywhere_and_refuses_mixed_segments(tmp_path, data, segmented):
    subset_data_dir(data, tmp_path / "a", first=4)
    subset_data_dir(data, tmp_path / "b", last=5)
    (tmp_path / "b" / "utt2dur").unlink()
    with pytest.warns(DataDirWarning, match="utt2dur is not in every source"):
        combine_data_dirs(tmp_path / "all", [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "all" / "utt2dur").exists()
    with pytest.raises(InputError, match="cannot combine dirs with and without segments"):
        combine_data_dirs(tmp_path / "mixed", [tmp_path / "a", segmented])


# ---------------------------------------------------------------------------------------------
# the bash wrappers


def sh(name: str, *args: object) -> subprocess.CompletedProcess:
    return run([str(REPO / "utils" / name), *map(str, args)])


def test_wrappers_report_one_line_and_fail(data):
    assert sh("validate_data_dir.sh", data).returncode == 0
    edit(data / "utt2spk", 2, "spkA-002 spkB")
    for script, args in (("validate_data_dir.sh", [data]), ("split_data.sh", [data, 2]),
                         ("subset_data_dir.sh", [data, 2, data.parent / "sub"]),
                         ("combine_data.sh", [data.parent / "c", data])):
        result = sh(script, *args)
        assert result.returncode != 0, script
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"{script}: error: {data / 'utt2spk'}:2: "), result.stderr


def test_fix_wrapper_and_options(data, tmp_path):
    edit(data / "text", 1, None)
    result = sh("fix_data_dir.sh", data)
    assert result.returncode == 0 and result.stdout.strip() == \
        "fix_data_dir.sh: kept 8 of 9 utterances (dropped 1: 1 not in text)"
    assert sh("split_data.sh", "--per-utt", data, 2).returncode == 0
    assert (data / "split2utt" / "2" / "text").exists()
    assert sh("subset_data_dir.sh", "--first", data, 3, tmp_path / "k").returncode == 0  # Kaldi's order
    assert sh("subset_data_dir.sh", "--last", 3, data, tmp_path / "l").returncode == 0
    assert utts_of(tmp_path / "k") == ["spkA-002", "spkA-003", "spkB-001"]
    usage = sh("split_data.sh", data)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1
    assert "usage" in sh("combine_data.sh", "--help").stdout


# ---------------------------------------------------------------- hostile input (issue 17)
def test_every_fix_keeps_its_own_backup(data):
    """A second fix that changes something must not replace the first backup (the originals)."""
    edit(data / "text", 1, None)
    originals = {p.name: p.read_text() for p in data.iterdir() if p.is_file()}
    fix_data_dir(data)
    edit(data / "utt2dur", 1, None)
    before_second = {p.name: p.read_text() for p in data.iterdir() if p.is_file()}
    report = fix_data_dir(data)
    assert report.backup == str(data / ".backup.2")
    assert {p.name: p.read_text() for p in (data / ".backup").iterdir()} == originals
    assert {p.name: p.read_text() for p in (data / ".backup.2").iterdir()} == before_second


def test_fix_keeps_file_modes_and_new_files_follow_the_umask(data):
    os.chmod(data / "text", 0o640)
    edit(data / "text", 1, None)
    (data / "spk2utt").unlink()
    old = os.umask(0o022)
    try:
        fix_data_dir(data)
    finally:
        os.umask(old)
    assert oct((data / "text").stat().st_mode & 0o777) == oct(0o640)      # a rewritten file keeps its mode
    assert oct((data / "spk2utt").stat().st_mode & 0o777) == oct(0o644)   # a new one: 0666 less the umask
    assert oct((data / "utt2spk").stat().st_mode & 0o777) == oct(0o644)
    assert oct((data / ".backup").stat().st_mode & 0o777) == oct(0o755)


@pytest.mark.parametrize("content,words", [
    ("\ufeff", "byte-order mark"),
    ("\r", "carriage return"),
])
def test_bom_and_crlf_are_named_not_swallowed(data, content, words):
    lines = read_lines(data / "utt2spk")
    if content == "\ufeff":
        (data / "utt2spk").write_text("\ufeff" + "".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        (data / "utt2spk").write_bytes("".join(line + "\r\n" for line in lines).encode())
    expect_error(data, "utt2spk", 1, words)
    with pytest.raises(InputError, match=words):
        fix_data_dir(data)  # never silently drops the first utterance


@pytest.fixture
def hostile_audio(tmp_path) -> dict[str, Path]:
    import io

    import soundfile

    folder = tmp_path / "hostile"
    folder.mkdir()
    tone = 0.3 * np.sin(np.arange(16000) / 5)
    soundfile.write(folder / "empty.wav", np.zeros(0), 16000)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone, 16000, format="WAV", subtype="PCM_16")
    (folder / "truncated.wav").write_bytes(buffer.getvalue()[:8000])
    soundfile.write(folder / "x.mp3", tone, 16000, subtype="MPEG_LAYER_III")
    soundfile.write(folder / "x.ogg", tone, 16000, subtype="VORBIS")
    soundfile.write(folder / "stereo.wav", np.stack([tone, tone], 1), 16000)
    return {p.stem if p.suffix == ".wav" else p.suffix[1:]: p for p in folder.iterdir()}


@pytest.mark.parametrize("kind,words", [
    ("empty", "0 samples"), ("truncated", "truncated: the header announces 32000 bytes"),
    ("mp3", "is MP3, not WAV/FLAC"), ("ogg", "is OGG, not WAV/FLAC"), ("stereo", "has 2 channels"),
])
def test_audio_that_kaldi_would_misread_is_refused(data, hostile_audio, kind, words):
    edit(data / "wav.scp", 4, f"spkB-001 {hostile_audio[kind]}")
    expect_error(data, "wav.scp", 4, "'spkB-001'", words)


def test_multichannel_allowed_on_request(data, hostile_audio):
    for line, utt in enumerate(UTTS, 1):
        edit(data / "wav.scp", line, f"{utt} {hostile_audio['stereo']}")
    validate_data_dir(data, multichannel=True)


def test_failing_pipe_is_named_by_its_command(data):
    edit(data / "wav.scp", 2, "spkA-002 printf 'not audio' |")
    err = expect_error(data, "wav.scp", 2, "'spkA-002'", "printf 'not audio'", run_pipes=True)
    assert "BytesIO" not in str(err)
    edit(data / "wav.scp", 2, "spkA-002 sh -c 'echo boom >&2; exit 3' |")
    err = expect_error(data, "wav.scp", 2, "command failed", "boom", run_pipes=True)
    assert "BytesIO" not in str(err)
