"""Kaldi table files: one `<key> <value>` line per entry (wav.scp, utt2spk, text, ...).

Keys are compared as Python strings, which for UTF-8 text is byte order, i.e. `LC_ALL=C sort`.
Readers keep line numbers so that every complaint can name the exact line.
"""
from __future__ import annotations

import gc
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
        with open(path, encoding="utf-8", newline="") as handle:  # keep a CR to complain about it
            content = handle.read()
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    if content.startswith("\ufeff"):
        raise InputError("starts with a UTF-8 byte-order mark (invisible in most editors; remove it)", path, 1)
    if "\r" in content:
        raise InputError("carriage return (Windows CR LF line ending?); convert with dos2unix", path,
                         content.count("\n", 0, content.index("\r")) + 1)
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # Million-line tables are common (utt2spk, text, wav.scp): the checks run in bulk (C-level
    # builtins), and the per-line loop in _split_lines only runs to name the first bad line.
    # The cyclic GC is paused while a million short-lived lists exist; it would otherwise rescan
    # them repeatedly and double the parse time. They are freed by reference counting.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        keys, values = _split_lines(path, lines, allow_empty_value)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Table(path, keys, values)


def _split_lines(path: str, lines: list[str], allow_empty_value: bool) -> tuple[list[str], list[str]]:
    parts = [line.split(None, 1) for line in lines]
    if min(map(len, parts), default=2) == 2:
        keys = [fields[0] for fields in parts]
        # A line that does not start with its own key starts with white space.
        if all(map(str.startswith, lines, keys)):
            return keys, list(map(str.rstrip, [fields[1] for fields in parts]))
    for number, (line, fields) in enumerate(zip(lines, parts), 1):
        if not fields:
            raise InputError("empty line", path, number)
        if line[0].isspace():
            raise InputError("line starts with white space", path, number)
        if len(fields) == 1:
            if not allow_empty_value:
                raise InputError(f"key '{fields[0]}' has no value", path, number)
            fields.append("")
    keys = [fields[0] for fields in parts]
    return keys, list(map(str.rstrip, [fields[1] for fields in parts]))


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
