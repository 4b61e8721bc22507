"""Kaldi table files: one `<key> <value>` line per entry (wav.scp, utt2spk, text, ...).

Keys are compared as Python strings, which for UTF-8 text is byte order, i.e. `LC_ALL=C sort`.
Readers keep line numbers so that every complaint can name the exact line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

from speechlib.io.atomic import atomic_open
from speechlib.io.errors import InputError


@dataclass
class Table:
    """The lines of one table file, in file order: `keys[i]` sits on line `i + 1`."""

    path: str
    keys: list[str]
    values: list[str]

    def as_dict(self) -> dict[str, str]:
        return dict(zip(self.keys, self.values))

    def line_of(self, index: int) -> int:
        return index + 1

    def __len__(self) -> int:
        return len(self.keys)


def read_table(path: str | os.PathLike, allow_empty_value: bool = False) -> Table:
    """Read a table file; a line without a key (or without a value) is an InputError."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            content = handle.read()
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    keys: list[str] = []
    values: list[str] = []
    for number, line in enumerate(lines, 1):
        parts = line.split(maxsplit=1)
        if not parts:
            raise InputError("empty line", path, number)
        if line[0].isspace():
            raise InputError("line starts with white space", path, number)
        if len(parts) == 1:
            if not allow_empty_value:
                raise InputError(f"key '{parts[0]}' has no value", path, number)
            parts.append("")
        keys.append(parts[0])
        values.append(parts[1].rstrip())
    return Table(path, keys, values)


def read_dict(path: str | os.PathLike, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a table into a dict; duplicate keys are an error."""
    table = read_table(path, allow_empty_value)
    result = table.as_dict()
    if len(result) != len(table):
        seen: set[str] = set()
        for index, key in enumerate(table.keys):
            if key in seen:
                raise InputError(f"duplicate key '{key}'", table.path, table.line_of(index))
            seen.add(key)
    return result


def write_table(path: str | os.PathLike, entries: Mapping[str, object] | Iterable[tuple[str, object]],
                sort: bool = True) -> None:
    """Write `<key> <value>` lines atomically, C-locale sorted unless `sort` is False.

    Values that are lists or tuples are joined with spaces (spk2utt).
    """
    items = list(entries.items()) if isinstance(entries, Mapping) else list(entries)
    if sort:
        items.sort(key=lambda item: item[0])
    chunks = []
    for key, value in items:
        if isinstance(value, (list, tuple)):
            value = " ".join(map(str, value))
        chunks.append(f"{key} {value}\n" if value != "" else f"{key}\n")
    with atomic_open(path) as handle:
        handle.write("".join(chunks))
