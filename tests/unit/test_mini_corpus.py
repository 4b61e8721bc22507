"""The mini corpus: built from the Debian packages, read back independently of the builder.

Builds the --small variant into a temporary directory once per session (tests/fixtures_mini.py;
from the cached packages in tools/downloads; on a fresh machine `apt-get download` fetches them).
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
    assert {r["kind"] for r in rows} == {"real", "pseudo", "synthesised"}
    by_libri = {r["libri_id"]: r for r in rows if r["libri_id"] != "-"}
    assert set(by_libri) == set(seen)
    for libri_id, row in by_libri.items():
        assert row["gender"] == speakers[libri_id]["gender"]
        assert row["kind"] in speakers[libri_id]["name"]     # SPEAKERS.TXT says real/pseudo too
        assert f"base {row['base']}," in speakers[libri_id]["name"]
    real = [r for r in rows if r["kind"] == "real"]
    assert any("en" in r["langs"].split(",") for r in real)
    # pseudo-speakers' gender follows their target F0
    for r in rows:
        if r["kind"] == "pseudo":
            assert (float(r["median_f0"]) >= 160) == (r["gender"] == "f")


def _speaker_table(corpus: Path) -> list[dict[str, str]]:
    lines = (corpus / "speakers.tsv").read_text().splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def test_speaker_fields_and_base_voice_rules(corpus):
    """Every speaker says kind, base voice, transform, languages, gender and its rule; a base voice
    is in at most one of train/dev/test and gives one f and one m speaker to an evaluation set."""
    rows = _speaker_table(corpus)
    by_spk = {r["spk"]: r for r in rows}
    for row in rows:
        assert row["base"] in by_spk and by_spk[row["base"]]["kind"] in ("real", "synthesised"), row
        assert row["gender"] in ("f", "m") and row["gender_rule"] and row["langs"], row
        if row["kind"] == "real":
            assert row["transform"] == "none" and row["base"] == row["spk"]
        elif row["kind"] == "synthesised":
            assert "text-to-speech" in row["transform"] and row["gender_rule"] == "package description"
        else:
            assert row["transform"].startswith("praat change-gender") and row["base"] != row["spk"]
    subsets_of_base = defaultdict(set)
    per_set = defaultdict(Counter)
    for row in rows:
        if row["libri_subset"] != "-":
            subsets_of_base[row["base"]].add(row["libri_subset"])
            per_set[row["libri_subset"]][(row["base"], row["gender"])] += 1
    assert all(len(s) == 1 for s in subsets_of_base.values()), subsets_of_base
    for subset in ("dev-clean", "test-clean"):
        assert max(per_set[subset].values()) == 1            # one f and one m per base voice at most
        assert len({base for base, _ in per_set[subset]}) == 20
    # utt2lang covers every utterance of every subset; train is English only
    for subset in SUBSETS:
        langs = read_dict(corpus / "LibriSpeech" / subset / "utt2lang")
        flacs = {p.stem for p in (corpus / "LibriSpeech" / subset).rglob("*.flac")}
        assert set(langs) == flacs
        if subset.startswith("train"):
            assert set(langs.values()) == {"en"}
        else:
            assert "en" in langs.values()


def test_english_and_wideband_voices_first(corpus):
    """Every English base voice is in train or in an evaluation set, and there it reads more than
    the other voices; 8 kHz (telephone) voices are in an evaluation set only when the wideband
    ones are too few for 20 base voices per set."""
    rows = _speaker_table(corpus)
    bases = {r["spk"]: r for r in rows if r["kind"] != "pseudo"}
    assert all(int(r["source_rate"]) >= 8000 for r in rows)
    english = [b for b, r in bases.items() if "en" in r["langs"].split(",")]
    assert len(english) >= 5 and all(bases[b]["libri_subset"] != "-" for b in english)
    per_speaker = defaultdict(list)
    for subset in ("dev-clean", "test-clean"):
        langs = read_dict(corpus / "LibriSpeech" / subset / "utt2lang")
        counts = Counter((utt.split("-")[0], lang) for utt, lang in langs.items())
        for (_, lang), n in counts.items():
            per_speaker[lang == "en"].append(n)
    assert min(per_speaker[True]) > max(per_speaker[False]), per_speaker
    in_eval = [r for r in bases.values() if r["libri_subset"] in ("dev-clean", "test-clean")]
    narrow_in_eval = sum(int(r["source_rate"]) < 16000 for r in in_eval)
    wide_unused = [b for b, r in bases.items() if int(r["source_rate"]) >= 16000 and r["libri_subset"] == "-"]
    assert narrow_in_eval == 0 or not wide_unused, (narrow_in_eval, wide_unused)


def test_speakers_distinct_and_speech_clean(corpus):
    """Two pretrained judges (weights in their wheels, offline), the issue's protocol scaled to the
    --small build (4 utterances per speaker; DistillMOS on 6 utterances per group and subset):
    resemblyzer EER <= 10 % on dev-clean and test-clean, for all same-gender utterance pairs and
    for trial lists of 1 target + 30 non-target per speaker; DistillMOS of the pseudo-speakers
    within 0.5 of their base voices' own utterances (pooled over the subsets at this sample size).
    The issue's other DistillMOS target (>= 3.3 over the layout) is not met (format 3, full build:
    3.08 +- 0.20 (95 % CI) on 48 utterances; the evaluation voices include diphone synthesisers, Tux Paint
    volunteers' home recordings and one 8 kHz telephone voice, and half of them are pseudo-speakers);
    the benchmark tests/benchmarks/bench_mini_corpus.py checks it on the full build and reports it."""
    from speechlib.data import mini_quality
    figures = mini_quality.measure(corpus, per_speaker=4, mos_per_subset=6)
    for subset in ("dev-clean", "test-clean"):
        f = figures[subset]
        assert f["pairs_target"] >= 40 * 3 and f["trials_nontarget"] == 40 * 30, f
        assert f["eer_pairs"] <= 0.10 and f["eer_trials"] <= 0.10, (subset, f)
    pooled = {k: np.mean([f[f"mos_{k}"] for f in figures.values()]) for k in ("pseudo", "base", "all")}
    assert abs(pooled["pseudo"] - pooled["base"]) <= 0.5, figures
    assert 2.0 < pooled["all"] < 5.0, figures


def test_eer_against_a_hand_count():
    """EER on scores where the answer is known: 1 of 4 targets below 1 of 4 non-targets."""
    from speechlib.data.mini_quality import eer
    assert eer(np.array([0.9, 0.8, 0.7, 0.2]), np.array([0.1, 0.0, -0.1, 0.75])) == pytest.approx(0.25)
    assert eer(np.array([0.9, 0.8]), np.array([0.1, 0.0])) == 0.0


def test_measured_f0_follows_pseudo_gender(corpus):
    """Independent of the builder's bookkeeping: the f pseudo-speakers really sound higher."""
    from speechlib.data.mini_build import median_f0
    speakers = librispeech.read_speakers(corpus / "LibriSpeech" / "SPEAKERS.TXT")
    f0 = defaultdict(list)
    pseudo = [s for s in _speaker_dirs(corpus, "dev-clean") if speakers[s]["name"].startswith("pseudo")]
    for spk in pseudo[:12]:
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


# What the layouts offer for training and for testing. Speech and noise: the recipes train only
# on the first group. DNS clean speech (every language) is test material: se_uda splits it by reader
# and trains on one part, but no other list may hold any of it.
TRAIN_ROLES = ("LibriSpeech/train-clean-100", "speech", "wham_noise/tr")
TEST_ROLES = ("LibriSpeech/dev-clean", "LibriSpeech/test-clean", "dns/datasets/clean", "wham_noise/cv",
              "wham_noise/tt")
# Sets that recipes split by utterance (mos_pretrain: NISQA-style sets from train-clean-100 minus the
# pre-training utterances, VCC-style sets from dev-clean + test-clean): the split is clean only if
# no file of the source is another file's copy or link.
UTTERANCE_SPLIT_SOURCES = (("LibriSpeech/train-clean-100",), ("LibriSpeech/dev-clean", "LibriSpeech/test-clean"))
AUDIO2IMAGE_CONFIG = REPO / "egs" / "audio2image" / "conf" / "mini_audio2image.yaml"


def _fingerprints(paths: list[Path]) -> dict[str, tuple[str, tuple[int, int]]]:
    """path -> (hash of the decoded samples, (device, inode)): a re-encoded copy or a hard link
    of a file is the same file in another role."""
    result = {}
    for path in paths:
        samples = soundfile.read(str(path), dtype="int16")[0]
        stat = path.stat()
        result[str(path)] = (hashlib.sha1(samples.tobytes()).hexdigest(), (stat.st_dev, stat.st_ino))
    return result


def _audio2image_roles(corpus: Path) -> dict[str, list[Path]]:
    """The audio2image recipe's own train/valid/test pairs of this corpus (its split function, its
    mini config), as roles; none when the corpus has no sound/picture pairs."""
    import yaml
    from speechlib.data.image_pairs import SPLITS, mini_pairs, split_by_stamp

    if not (corpus / "audio_image" / "index.tsv").is_file():
        return {}
    loader = type("TagsIgnored", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda *_: None)
    hp = yaml.load(AUDIO2IMAGE_CONFIG.read_text(), Loader=loader)
    pairs = mini_pairs(corpus, hp["class_level"], tuple(hp["pair_kinds"]))
    split = split_by_stamp(sorted({p.stamp for p in pairs}), (hp["valid_fraction"], hp["test_fraction"]),
                           hp["split_seed"])
    return {f"audio_image {name}": sorted({Path(p.audio) for p in pairs if split[p.stamp] == name})
            for name in SPLITS}


def _overlaps(corpus: Path) -> list[str]:
    """Every (train role, test role) and (test role, test role) pair sharing content or an inode;
    the audio2image split's train/valid/test among themselves, its train against every other
    layout's test roles and its valid/test against their training roles (except the speech pool,
    which it draws from); duplicates inside the sources that recipes split by utterance."""
    roles = {role: sorted(p for p in (corpus / role).rglob("*") if p.suffix in (".flac", ".wav"))
             for role in TRAIN_ROLES + TEST_ROLES}
    image_roles = _audio2image_roles(corpus)
    roles.update(image_roles)
    prints = {role: _fingerprints(paths) for role, paths in roles.items()}
    pairs = [(a, b) for a in TRAIN_ROLES for b in TEST_ROLES] + \
        [(a, b) for i, a in enumerate(TEST_ROLES) for b in TEST_ROLES[i + 1:]]
    if image_roles:
        pairs += [("audio_image train", "audio_image valid"), ("audio_image train", "audio_image test"),
                  ("audio_image valid", "audio_image test")]
        pairs += [("audio_image train", b) for b in TEST_ROLES]
        pairs += [(a, b) for a in TRAIN_ROLES if a != "speech" for b in ("audio_image valid", "audio_image test")]
    problems = []
    for a, b in pairs:
        hashes = {h: path for path, (h, _) in prints[a].items()}
        inodes = {i: path for path, (_, i) in prints[a].items()}
        for path, (digest, inode) in prints[b].items():
            if digest in hashes:
                problems.append(f"{path} ({b}) has the content of {hashes[digest]} ({a})")
            if inode in inodes:
                problems.append(f"{path} ({b}) is a hard link of {inodes[inode]} ({a})")
    for source in UTTERANCE_SPLIT_SOURCES:
        seen: dict[object, str] = {}
        for role in source:
            for path, (digest, inode) in prints[role].items():
                for key in (digest, inode):
                    if key in seen:
                        problems.append(f"{path} and {seen[key]} are one file (both in {' + '.join(source)})")
                    seen[key] = path
    return problems


def test_overlap_check_catches_links_and_copies(tmp_path):
    """The checker itself: a hard link and a re-encoded copy across roles are both reported."""
    audio = (0.1 * np.sin(np.arange(8000) * 0.07)).astype(np.float32)
    train = tmp_path / "speech" / "x.flac"
    train.parent.mkdir(parents=True)
    soundfile.write(str(train), audio, 16000)
    (tmp_path / "LibriSpeech" / "dev-clean").mkdir(parents=True)
    os.link(train, tmp_path / "LibriSpeech" / "dev-clean" / "y.flac")
    tt = tmp_path / "wham_noise" / "tt"
    tt.mkdir(parents=True)
    soundfile.write(str(tt / "z.wav"), soundfile.read(str(train), dtype="int16")[0], 16000)   # re-encoded
    source = tmp_path / "LibriSpeech" / "train-clean-100"
    source.mkdir(parents=True)
    soundfile.write(str(source / "a.flac"), -audio, 16000)
    os.link(source / "a.flac", source / "b.flac")          # one utterance under two names
    problems = _overlaps(tmp_path)
    assert any("hard link" in p and "y.flac" in p for p in problems)
    assert any("content" in p and "z.wav" in p for p in problems)
    assert any("one file" in p and "a.flac" in p and "b.flac" in p for p in problems)
    assert not any("a.flac" in p and "b.flac" not in p for p in problems)


def test_no_file_in_two_roles(corpus):
    assert all(list((corpus / role).rglob("*.*")) for role in TRAIN_ROLES + TEST_ROLES)
    assert all(_audio2image_roles(corpus).values())
    problems = _overlaps(corpus)
    assert not problems, problems[:5]
    # DNS English is read by held-out speakers (no training speaker, no training file)
    speakers = {r["spk"]: r for r in _speaker_table(corpus)}
    train_bases = {r["base"] for r in speakers.values() if r["libri_subset"] == "train-clean-100"}
    dns_en = sorted((corpus / "dns/datasets/clean/english").glob("*.flac"))
    readers = {p.stem.rsplit("_", 1)[0] for p in dns_en}
    assert dns_en and readers <= set(speakers) and not readers & train_bases
    # every DNS language is held out of the speech index (no recipe can list its files elsewhere)
    dns_other = [p for p in (corpus / "dns/datasets/clean").rglob("*.flac") if p.parent.name != "english"]
    indexed = {Path(row["path"]).name for row in mini.speech_index(corpus)}
    assert len({p.parent.name for p in dns_other}) >= 5 and not {p.name for p in dns_other} & indexed
    # and no transcript of dev is a transcript of test (long ones; "ONE" may be said twice)
    texts: dict[str, set[str]] = defaultdict(set)
    for subset in SUBSETS:
        for trans in (corpus / "LibriSpeech" / subset).rglob("*.trans.txt"):
            for line in trans.read_text().splitlines():
                texts[subset].add(line.split(maxsplit=1)[1])
    long_dev = {t for t in texts["dev-clean"] if len(t.split()) >= 4}
    long_test = {t for t in texts["test-clean"] if len(t.split()) >= 4}
    assert not long_dev & long_test


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
    assert "missing voice packages: none" in readme           # the cached packages are complete
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


def test_missing_voice_package_goes_on_and_shortfall_is_named(tmp_path, capsys):
    """A voice package that is not there is listed (the build goes on without it); too few base
    voices for 20 per evaluation set is an error naming the set and how many are missing."""
    from speechlib.data import mini_build, mini_sources
    for package in list(mini_sources.PACKAGES) + list(mini_sources.VOICE_PACKAGES):
        if package != "festvox-czech-ph":
            (tmp_path / f"{package}_1.0_all.deb").write_bytes(b"")
    debs, missing = mini_build.find_debs(tmp_path)
    assert missing == ["festvox-czech-ph"] and len(debs) == len(mini_sources.PACKAGES) + len(
        mini_sources.VOICE_PACKAGES) - 1
    assert "festvox-czech-ph" in capsys.readouterr().err
    (tmp_path / "pingus-data_1.0_all.deb").unlink()
    with pytest.raises(InputError, match="pingus-data"):
        mini_build.find_debs(tmp_path)
    rng = np.random.default_rng(0)
    candidates = [(f"b{i}", "en" if i < 4 else "fr") for i in range(40)]
    sets = mini_build.assign_eval_bases(candidates, rng, [])
    assert [len(v) for v in sets.values()] == [20, 20]
    assert not {b for b, _ in sets["dev-clean"]} & {b for b, _ in sets["test-clean"]}
    assert all(sum(lang == "en" for _, lang in v) == 2 for v in sets.values())
    with pytest.raises(InputError) as err:
        mini_build.assign_eval_bases(candidates[:37], rng, ["festvox-czech-ph"])
    message = str(err.value)
    assert "test-clean is 2 base voice(s) short" in message and "dev-clean is 1" in message
    assert "festvox-czech-ph" in message


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
