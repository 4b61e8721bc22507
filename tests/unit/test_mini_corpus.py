"""The mini corpus: built from the Debian packages, read back independently of the builder.

Builds the --small variant into a temporary directory once per session (about 30 s from the
cached packages in tools/downloads; on a fresh machine `apt-get download` fetches them).
The checks read the files themselves (soundfile headers, directory trees, SPEAKERS.TXT)
rather than trusting the builder's own indexes.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechlib.data import librispeech, mini
from speechlib.io.errors import InputError
from speechlib.io.kaldi import read_dict

from tests.helpers import REPO
SCRIPT = REPO / "tools" / "make_mini_corpus.sh"
SUBSETS = ("train-clean-100", "dev-clean", "test-clean")


@pytest.fixture(scope="session")
def corpus(mini_small: Path) -> Path:
    return mini_small


def _speaker_dirs(corpus: Path, subset: str) -> list[str]:
    return sorted(p.name for p in (corpus / "LibriSpeech" / subset).iterdir() if p.is_dir())


def test_rerun_is_a_no_op(corpus):
    marker = (corpus / ".complete").stat().st_mtime_ns
    proc = subprocess.run([str(SCRIPT), "--small", "--out", str(corpus)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do" in proc.stderr
    assert (corpus / ".complete").stat().st_mtime_ns == marker


def test_librispeech_prep_reads_the_tree(corpus, tmp_path):
    speakers = librispeech.read_speakers(corpus / "LibriSpeech" / "SPEAKERS.TXT")
    for subset in SUBSETS:
        data = tmp_path / subset
        count = librispeech.prepare(corpus / "LibriSpeech" / subset, data)
        wav = read_dict(data / "wav.scp")
        utt2spk = read_dict(data / "utt2spk")
        text = read_dict(data / "text")
        spk2gender = read_dict(data / "spk2gender")
        assert count == len(wav) == len(utt2spk) == len(text) > 0
        assert all(utt.startswith(spk + "-") for utt, spk in utt2spk.items())
        assert all(words == words.upper() and words.strip() for words in text.values())
        assert set(spk2gender) == set(_speaker_dirs(corpus, subset))
        assert all(speakers[spk]["subset"] == subset for spk in spk2gender)
        from speechlib.data.datadir import validate_data_dir
        validate_data_dir(data, check_audio=True)
        keys = (data / "wav.scp").read_text().split("\n")[:-1]
        assert keys == sorted(keys, key=lambda line: line.split()[0].encode())


def test_speaker_counts_and_genders(corpus):
    speakers = librispeech.read_speakers(corpus / "LibriSpeech" / "SPEAKERS.TXT")
    seen: dict[str, str] = {}
    for subset in SUBSETS:
        spks = _speaker_dirs(corpus, subset)
        genders = Counter(speakers[s]["gender"] for s in spks)
        if subset != "train-clean-100":
            assert genders == {"f": 20, "m": 20}, (subset, genders)
        else:
            assert genders["f"] >= 20 and genders["m"] >= 20
        for spk in spks:
            assert spk not in seen, f"speaker {spk} in {seen.get(spk)} and {subset}"
            seen[spk] = subset
            # ASV protocol: enrolment + at least one trial utterance per speaker
            assert len(list((corpus / "LibriSpeech" / subset / spk).rglob("*.flac"))) >= 3
    table = (corpus / "speakers.tsv").read_text().splitlines()
    header = table[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in table[1:]]
    assert {r["kind"] for r in rows} <= {"real", "pseudo", "synthetic"}
    by_libri = {r["libri_id"]: r for r in rows if r["libri_id"] != "-"}
    assert set(by_libri) == set(seen)
    for libri_id, row in by_libri.items():
        assert row["gender"] == speakers[libri_id]["gender"]
        assert row["kind"] in speakers[libri_id]["name"]     # SPEAKERS.TXT says real/pseudo too
    real = [r for r in rows if r["kind"] == "real"]
    assert any("en" in r["langs"].split(",") for r in real)
    # pseudo-speakers' gender follows their target F0
    for r in rows:
        if r["kind"] == "pseudo":
            assert (float(r["median_f0"]) >= 160) == (r["gender"] == "f")


def test_measured_f0_follows_pseudo_gender(corpus):
    """Independent of the builder's bookkeeping: the f speakers really sound higher."""
    from speechlib.data.mini_build import median_f0
    speakers = librispeech.read_speakers(corpus / "LibriSpeech" / "SPEAKERS.TXT")
    f0 = defaultdict(list)
    for spk in _speaker_dirs(corpus, "dev-clean")[:12]:
        audio = np.concatenate([soundfile.read(p, dtype="float32")[0]
                                for p in sorted((corpus / "LibriSpeech" / "dev-clean" / spk).rglob("*.flac"))])
        f0[speakers[spk]["gender"]].append(median_f0(audio))
    assert np.median(f0["f"]) > 160 > np.median(f0["m"]), dict(f0)


def test_real_speech_languages(corpus):
    rows = mini.speech_index(corpus)
    spk = mini.speakers(corpus)
    real_langs = {r["lang"] for r in rows if spk[r["spk"]]["kind"] == "real"}
    assert "en" in real_langs and len(real_langs) >= 5
    assert len(real_langs & {"fr", "de", "it", "zh", "ru", "es"}) >= 3


def test_every_utterance_readable_16k_non_silent(corpus):
    files = sorted((corpus / "LibriSpeech").rglob("*.flac")) + sorted((corpus / "speech").rglob("*.flac"))
    assert len(files) > 500
    for path in files:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels) == (16000, 1), path
        audio = soundfile.read(str(path), dtype="float32")[0]
        assert audio.size >= 0.2 * 16000, path
        assert np.sqrt(np.mean(audio ** 2)) > 3e-4, f"{path} is silent"


def test_no_file_in_two_splits(corpus):
    owner: dict[str, str] = {}
    for subset in SUBSETS:
        for path in (corpus / "LibriSpeech" / subset).rglob("*.flac"):
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            assert digest not in owner, f"{path} duplicates a file of {owner[digest]}"
            owner[digest] = subset
    # and the source prompts behind the pseudo-speakers are split too: a transcript of dev or
    # test never appears in another split (Allison's prompts are divided before transforming)
    texts: dict[str, set[str]] = defaultdict(set)
    for subset in SUBSETS:
        for trans in (corpus / "LibriSpeech" / subset).rglob("*.trans.txt"):
            for line in trans.read_text().splitlines():
                texts[subset].add(line.split(maxsplit=1)[1])
    # identical short prompts can exist as distinct recordings ("ONE"), so compare long ones
    long_dev = {t for t in texts["dev-clean"] if len(t.split()) >= 4}
    long_test = {t for t in texts["test-clean"] if len(t.split()) >= 4}
    assert not long_dev & long_test
    for split in ("tr", "cv", "tt"):
        assert list((corpus / "wham_noise" / split).glob("*.wav"))


def test_noise_pool_categories(corpus, tmp_path):
    data = mini.noise_pool(tmp_path / "noise", root=corpus)
    from speechlib.data.datadir import validate_data_dir
    validate_data_dir(data, check_audio=True, require_text=False)
    cats = Counter(read_dict(data / "utt2category").values())
    assert len(set(cats) & set(mini.CATEGORIES)) >= 6, cats
    for key, path in read_dict(data / "wav.scp").items():
        info = soundfile.info(path)
        assert info.samplerate == 16000 and info.channels == 1, path
    music = sorted((corpus / "music48k").glob("*.flac"))
    assert music
    for path in music:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels) == (48000, 2)
        assert np.abs(soundfile.read(str(path))[0]).max() > 0.01


def test_speech_pool_data_dir(corpus, tmp_path):
    data = mini.speech_pool(tmp_path / "pool", root=corpus)
    wav = read_dict(data / "wav.scp")
    for name in ("utt2spk", "text", "utt2lang", "spk2utt"):
        assert set(read_dict(data / name)) <= set(wav) | set(read_dict(data / "spk2utt"))
    utt2spk = read_dict(data / "utt2spk")
    assert set(read_dict(data / "utt2lang")) == set(wav) == set(utt2spk) == set(read_dict(data / "text"))
    assert all(utt.startswith(spk + "-") for utt, spk in utt2spk.items())
    assert set(read_dict(data / "spk2gender").values()) == {"m", "f"}
    assert all(os.path.isfile(p) for p in wav.values())
    from speechlib.data.datadir import validate_data_dir
    validate_data_dir(data, check_audio=True)
    french = mini.speech_pool(tmp_path / "fr", root=corpus, langs=["fr"])
    assert set(read_dict(french / "utt2lang").values()) == {"fr"}


def test_audio_image_pairs(corpus):
    lines = (corpus / "audio_image" / "index.tsv").read_text().splitlines()[1:]
    assert len(lines) >= 20
    groups = set()
    for line in lines:
        name, group, category, audio, image = line.split("\t")
        assert (corpus / audio).is_file() and (corpus / image).is_file()
        groups.add(group.split("/")[0])
    assert len(groups) >= 3


def test_readme_and_licenses(corpus):
    readme = (corpus / "README.md").read_text()
    assert "Skipped source files" in readme and "hours" in readme
    licenses = (corpus / "LICENSES.md").read_text()
    for package in ("asterisk-core-sounds-en-g722", "tuxpaint-stamps-default", "pingus-data"):
        assert package in licenses


def test_librispeech_bad_lines(tmp_path):
    root = tmp_path / "LibriSpeech"
    chapter = root / "dev-clean" / "12" / "34"
    chapter.mkdir(parents=True)
    (root / "SPEAKERS.TXT").write_text(";ID|SEX|SUBSET|MINUTES|NAME\n12 | X | dev-clean | 1.0 | someone\n")
    with pytest.raises(InputError) as err:
        librispeech.prepare(root / "dev-clean", tmp_path / "data")
    assert err.value.line == 2 and "SPEAKERS.TXT" in str(err.value)
    (root / "SPEAKERS.TXT").write_text("12 | F | dev-clean | 1.0 | someone\n")
    soundfile.write(str(chapter / "12-34-0000.flac"), np.full(1600, 0.1, np.float32), 16000)
    (chapter / "12-34.trans.txt").write_text("12-34-0000 HELLO\n12-35-0001 WRONG CHAPTER\n")
    with pytest.raises(InputError) as err:
        librispeech.prepare(root / "dev-clean", tmp_path / "data")
    assert err.value.line == 2
    (chapter / "12-34.trans.txt").write_text("12-34-0000 HELLO\n")
    assert librispeech.prepare(root / "dev-clean", tmp_path / "data") == 1


def test_missing_package_is_one_line_error(tmp_path):
    empty = tmp_path / "debs"
    empty.mkdir()
    proc = subprocess.run([str(SCRIPT), "--small", "--from-dir", str(empty), "--out", str(tmp_path / "m")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get download" in lines[0], lines
    assert "asterisk-core-sounds" in lines[0]


def test_corrupt_source_is_skipped_and_counted(tmp_path):
    """A truncated/garbage file becomes a warning and a README count, never a corpus file."""
    from speechlib.data.mini_build import Report, _decode_task
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"OggS" + os.urandom(200))
    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros(16000, np.float32), 16000)
    good = tmp_path / "good.wav"
    soundfile.write(str(good), 0.1 * np.sin(np.arange(16000) * 0.05).astype(np.float32), 16000)
    items = [(str(p), str(tmp_path / "out" / (p.stem + ".wav"))) for p in (bad, silent, good)]
    results = dict(_decode_task(("file", items, "")))
    assert isinstance(results[items[0][1]], str) and "decode" in results[items[0][1]]
    assert results[items[1][1]] == "silent"
    assert isinstance(results[items[2][1]], float)
    assert not Path(items[0][1]).exists() and not Path(items[1][1]).exists()
    report = Report()
    report.skip("corrupt or undecodable", str(bad))
    assert report.skipped["corrupt or undecodable"] == 1
