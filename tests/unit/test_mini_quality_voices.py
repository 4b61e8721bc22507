"""mini_quality --by-voice: the per-base-voice aggregation and the bound, on given scores (no model),
against numbers worked by hand; the seeded choice of utterances on a hand-made speech index."""
from __future__ import annotations

import numpy as np
import pytest

from speechlib.data import mini_quality

COLUMNS = ("spk", "kind", "base", "source", "source_rate", "libri_id")
SPEAKERS = [("A", "real", "A", "pkg-a", "16000", "1"), ("pA", "pseudo", "A", "pkg-a", "16000", "2"),
            ("B", "synthesised", "B", "pkg-b", "22050", "3"), ("pB", "pseudo", "B", "pkg-b", "22050", "4"),
            ("C", "real", "C", "pkg-c", "8000", "-"), ("D", "real", "D", "pkg-d", "44100", "5"),
            ("E", "real", "E", "pkg-e", "16000", "6")]
TABLE = {row[0]: dict(zip(COLUMNS, row)) for row in SPEAKERS}
# (speaker, split, score): C is a pool-only voice, D has no pseudo-speaker, E sits exactly on 3.3
SCORED = [("A", "dev-clean", 4.0), ("A", "dev-clean", 3.0), ("pA", "dev-clean", 2.0),
          ("B", "test-clean", 3.0), ("B", "test-clean", 3.0), ("B", "test-clean", 3.6),
          ("pB", "test-clean", 2.5), ("pB", "test-clean", 3.5),
          ("C", "pool", 1.0), ("C", "pool", 2.0), ("D", "train-clean-100", 5.0), ("E", "train-clean-100", 3.3)]


def _breakdown(best=(2, 3, 10)):
    rows = [dict(spk=s, split=split) for s, split, _ in SCORED]
    return mini_quality.voice_breakdown(rows, np.array([v for *_, v in SCORED]), TABLE, best=best, target=3.3)


def test_per_voice_means_by_hand():
    result = _breakdown()
    voices = {v["base"]: v for v in result["voices"]}
    assert [v["base"] for v in result["voices"]] == ["D", "A", "E", "B", "C"]   # own mean 5, 3.5, 3.3, 3.2, 1.5
    a, b, c = voices["A"], voices["B"], voices["C"]
    assert (a["own_n"], a["pseudo_n"], b["own_n"], b["pseudo_n"], c["own_n"], c["pseudo_n"]) == (2, 1, 3, 2, 2, 0)
    assert a["own_mean"] == pytest.approx(3.5) and a["pseudo_mean"] == pytest.approx(2.0)
    assert b["own_mean"] == pytest.approx(3.2) and b["pseudo_mean"] == pytest.approx(3.0)
    assert c["own_mean"] == pytest.approx(1.5) and np.isnan(c["pseudo_mean"])
    assert a["own_ci95"] == pytest.approx(1.96 * np.sqrt(0.5) / np.sqrt(2))      # sd of (4, 3) is sqrt(1/2)
    assert (b["kind"], b["source"], b["source_rate"], b["subset"], c["subset"]) == (
        "synthesised", "pkg-b", 22050, "test-clean", "pool")


def test_subset_means_are_utterance_weighted_and_leave_the_pool_out():
    result = _breakdown()
    s = result["subsets"]
    assert (s["dev-clean"]["n"], s["test-clean"]["n"], s["train-clean-100"]["n"]) == (3, 5, 2)
    assert s["dev-clean"]["mean"] == pytest.approx(3.0)                 # (4 + 3 + 2) / 3
    assert s["test-clean"]["mean"] == pytest.approx(15.6 / 5)           # (3 + 3 + 3.6 + 2.5 + 3.5) / 5
    assert s["train-clean-100"]["mean"] == pytest.approx(4.15)
    assert "pool" not in s
    assert result["overall"]["n"] == 10 and result["overall"]["mean"] == pytest.approx(32.9 / 10)


def test_bound_by_hand():
    b = _breakdown()["bound"]
    assert b["voices_scored"] == 5
    assert b["best_2"] == pytest.approx(4.25)                           # (5 + 3.5) / 2
    assert b["best_3"] == pytest.approx((5 + 3.5 + 3.3) / 3)
    assert np.isnan(b["best_10"])                                       # fewer voices than asked for
    assert b["voices_at_target"] == 3                                   # 5, 3.5 and 3.3 itself; not 3.2


def test_markdown_table_and_section_replacement(tmp_path):
    result = _breakdown(best=(2,))
    text = mini_quality.voices_markdown(result, "cmd")
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split(" | ")[1] for r in rows] == ["D", "A", "E", "B", "C"]
    assert "| 2 | A | real | pkg-a | 16000 | dev-clean | 2 | 3.50 ± 0.98 | 1 | 2.00 |" in text
    assert "| overall | 10 | 3.29 ± " in text and "mean of the best 2 = 4.25" in text and ">= 3.3: 3." in text
    path = tmp_path / "voices.md"
    path.write_text("# Title\n\nHand-written paragraph.\n", encoding="utf-8")
    mini_quality.replace_section(path, mini_quality.VOICES_MARK, text)
    mini_quality.replace_section(path, mini_quality.VOICES_MARK, text.replace("cmd", "cmd2"))
    written = path.read_text(encoding="utf-8")
    assert written.startswith("# Title\n\nHand-written paragraph.\n\n" + mini_quality.VOICES_MARK)
    assert written.count(mini_quality.VOICES_MARK) == 1 and "`cmd2`" in written and "`cmd`" not in written


def test_voice_utterances_seeded_choice(tmp_path):
    (tmp_path / "speech").mkdir()
    (tmp_path / "speakers.tsv").write_text(
        "\t".join(COLUMNS) + "\n" + "".join("\t".join(row) + "\n" for row in SPEAKERS), encoding="utf-8")
    index = ["utt\tspk\tsplit\tpath"]
    index += [f"A-{i}\tA\tdev-clean\tLibriSpeech/a{i}.flac" for i in range(10)]
    index += [f"A-pool-{i}\tA\tpool\tspeech/a{i}.flac" for i in range(3)]     # A is in the layout: not scored
    index += [f"C-{i}\tC\tpool\tspeech/c{i}.flac" for i in range(6)]          # C is pool-only: scored
    index += ["pA-0\tpA\tdev-clean\tLibriSpeech/p0.flac"]
    (tmp_path / "speech" / "index.tsv").write_text("\n".join(index) + "\n", encoding="utf-8")
    everything = mini_quality.voice_utterances(tmp_path)
    assert sorted(r["utt"] for r in everything) == sorted([f"A-{i}" for i in range(10)] + [f"C-{i}" for i in range(6)]
                                                          + ["pA-0"])
    some = mini_quality.voice_utterances(tmp_path, per_speaker=4, seed=3)
    by_spk = {s: [r["utt"] for r in some if r["spk"] == s] for s in ("A", "C", "pA")}
    assert (len(by_spk["A"]), len(by_spk["C"]), by_spk["pA"]) == (4, 4, ["pA-0"])
    assert by_spk["A"] == sorted(by_spk["A"], key=lambda u: int(u.split("-")[1]))   # kept in index order
    assert some == mini_quality.voice_utterances(tmp_path, per_speaker=4, seed=3)
    others = [mini_quality.voice_utterances(tmp_path, per_speaker=4, seed=s) for s in range(4, 9)]
    assert any(o != some for o in others)                                # the seed does choose
