"""write_data_dir: a whole valid data dir, spk2utt derived, nothing left behind on failure."""
from __future__ import annotations

import pytest

from speechlib.data.writer import spk2utt_from, write_data_dir
from speechlib.io.errors import InputError


def test_spk2utt_inverts_utt2spk():
    assert spk2utt_from({"b-2": "b", "a-1": "a", "b-1": "b"}) == {"a": ["a-1"], "b": ["b-1", "b-2"]}


def test_writes_a_valid_dir(tmp_path):
    dest = write_data_dir(tmp_path / "d", {"s1-u2": "s1", "s1-u1": "s1", "s2-u1": "s2"},
                          {"wav.scp": {"s1-u1": "a.wav", "s1-u2": "b.wav", "s2-u1": "c.wav"},
                           "text": {"s1-u1": "hi", "s1-u2": "there", "s2-u1": "you"}},
                          spk2gender={"s1": "f", "s2": "m", "s3": "f"})
    assert (dest / "spk2utt").read_text() == "s1 s1-u1 s1-u2\ns2 s2-u1\n"
    assert (dest / "spk2gender").read_text() == "s1 f\ns2 m\n"
    assert (dest / "wav.scp").read_text().splitlines()[0] == "s1-u1 a.wav"


def test_a_broken_dir_is_refused_and_the_old_one_kept(tmp_path):
    dest = tmp_path / "d"
    write_data_dir(dest, {"s1-u1": "s1"}, {"wav.scp": {"s1-u1": "a.wav"}})
    with pytest.raises(InputError, match="prefix"):
        write_data_dir(dest, {"x-u1": "s1"}, {"wav.scp": {"x-u1": "a.wav"}})
    assert (dest / "utt2spk").read_text() == "s1-u1 s1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
