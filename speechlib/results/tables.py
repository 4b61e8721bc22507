"""Results tables, ESPnet-style, with the paper's own numbers beside ours.

A stage writes `exp/<tag>/results.json` (the tables as data) and `exp/<tag>/RESULTS.md`
(rendered); `python -m speechlib.results.collect egs/<recipe>` re-renders the recipe's
RESULTS.md from every exp dir, so the committed file is never edited by hand.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from speechlib.io.atomic import atomic_write_text
from speechlib.results.environment import describe_environment

Cell = float | int | str | None


@dataclass
class ResultTable:
    """One table: rows and columns as in the paper's table.

    `paper` holds the paper's numbers for the rows it reports (same columns, None where the paper
    has no number); each is printed right under our row and marked as the paper's. A cell may
    be a string such as "not run (needs a GPU)" where a number could not be produced.
    `headline` names the (row, column) cells the top-level RESULTS.md summarises, ours beside
    the paper's (speechlib.results.summary).
    """

    title: str
    columns: list[str]
    rows: dict[str, list[Cell]]
    paper: dict[str, list[Cell]] = field(default_factory=dict)
    caption: str = ""
    decimals: int = 2
    headline: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.headline = [tuple(cell) for cell in self.headline]  # lists again after a JSON round trip
        for row, column in self.headline:
            if row not in self.rows or column not in self.columns:
                raise ValueError(f"table '{self.title}': headline cell ({row}, {column}) is not in the table")
        for name, cells in list(self.rows.items()) + list(self.paper.items()):
            if len(cells) != len(self.columns):
                raise ValueError(f"table '{self.title}': row '{name}' has {len(cells)} cells "
                                 f"for {len(self.columns)} columns")
        unknown = set(self.paper) - set(self.rows)
        if unknown:
            raise ValueError(f"table '{self.title}': paper rows {sorted(unknown)} have no row of ours")

    def format_cell(self, cell: Cell) -> str:
        if cell is None:
            return "–"
        if isinstance(cell, str):
            return cell
        if isinstance(cell, float) and math.isnan(cell):
            return "nan"
        if isinstance(cell, int) and not isinstance(cell, bool):
            return str(cell)
        return f"{cell:.{self.decimals}f}"

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.caption:
            lines += [self.caption, ""]
        lines.append("| " + " | ".join(["System"] + self.columns) + " |")
        lines.append("|" + "---|" * (len(self.columns) + 1))
        for name, cells in self.rows.items():
            lines.append("| " + " | ".join([name] + [self.format_cell(c) for c in cells]) + " |")
            if name in self.paper:
                paper_cells = [f"*{self.format_cell(c)}*" for c in self.paper[name]]
                lines.append("| " + " | ".join([f"*{name} (paper)*"] + paper_cells) + " |")
        return "\n".join(lines) + "\n"


def render_environment(env: dict[str, str]) -> str:
    lines = ["## Environment", ""]
    lines += [f"- {key}: `{value}`" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def render(title: str, env: dict[str, str], tables: list[ResultTable], notes: str = "",
           figures: list[str] | None = None, examples: list[str] | None = None) -> str:
    corpus = env.get("corpus", "unknown")
    parts = [f"# {title}", "",
             f"Corpus: **{corpus}**" + (" (mini corpus: numbers show the recipe runs, they are not "
                                       "comparable with the paper's)" if corpus == "mini" else ""),
             "", render_environment(env)]
    if notes:
        parts += [notes.strip(), ""]
    parts += [table.to_markdown() for table in tables]
    parts += [f"![{Path(figure).stem}]({figure})\n" for figure in figures or []]
    if examples:
        parts += ["Listening examples: " + ", ".join(f"[{Path(example).stem}]({example})" for example in examples), ""]
    return "\n".join(parts)


def write_results(exp_dir: str | Path, title: str, tables: list[ResultTable], corpus: str,
                  notes: str = "", figures: list[str] | None = None, examples: list[str] | None = None) -> Path:
    """Write exp_dir/results.json and exp_dir/RESULTS.md (atomically); return the .md path.

    `figures` (PNG) and `examples` (short FLACs, see speechlib.results.examples) are paths
    relative to exp_dir; `collect` copies them next to the recipe's committed RESULTS.md.
    """
    exp_dir = Path(exp_dir)
    env = describe_environment(corpus)
    payload = {"title": title, "environment": env, "notes": notes, "figures": figures or [],
               "examples": examples or [], "tables": [asdict(table) for table in tables]}
    atomic_write_text(exp_dir / "results.json", json.dumps(payload, indent=1) + "\n")
    markdown = exp_dir / "RESULTS.md"
    atomic_write_text(markdown, render(title, env, tables, notes, figures, examples))
    return markdown


@dataclass
class Results:
    """What a scoring stage wrote to results.json."""

    title: str
    environment: dict[str, str]
    tables: list[ResultTable]
    notes: str = ""
    figures: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


def load_results(path: str | Path) -> Results:
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    return Results(payload["title"], payload["environment"], [ResultTable(**table) for table in payload["tables"]],
                   payload.get("notes", ""), payload.get("figures", []), payload.get("examples", []))
