"""db.sh variables: empty means the mini corpus; a wrong path names the variable."""
from __future__ import annotations

import pytest

from speechlib.data.corpora import resolve_corpus
from speechlib.io.errors import InputError


def test_empty_value_means_mini(tmp_path):
    (tmp_path / "mini" / "LibriSpeech").mkdir(parents=True)
    path, is_mini = resolve_corpus("LIBRISPEECH", "", "LibriSpeech", mini_root=tmp_path / "mini")
    assert is_mini and path == tmp_path / "mini" / "LibriSpeech"


def test_empty_value_without_mini_says_how_to_build(tmp_path):
    with pytest.raises(InputError, match="LIBRISPEECH is empty.*make_mini_corpus.sh"):
        resolve_corpus("LIBRISPEECH", "  ", "LibriSpeech", mini_root=tmp_path)


def test_wrong_path_names_the_variable(tmp_path):
    with pytest.raises(InputError, match=r"^db.sh: WHAM=/no/such: no such directory$"):
        resolve_corpus("WHAM", "/no/such", "wham")
    with pytest.raises(InputError, match="WHAM=.*expected tr"):
        resolve_corpus("WHAM", str(tmp_path), "wham", expect=("tr",))
    (tmp_path / "tr").mkdir()
    assert resolve_corpus("WHAM", str(tmp_path), "wham", expect=("tr",)) == (tmp_path, False)
