"""One exception type for bad user input, rendered as a single `file:line: what` line."""
from __future__ import annotations

import sys
from typing import Callable, NoReturn


class InputError(Exception):
    """Bad input from the user: a file, a line in it, and what is wrong.

    Command-line entry points catch it (see :func:`exit_on_input_error`) and print one line,
    so the user sees where to look instead of a traceback.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return where + self.message


class TrainingDiverged(Exception):
    """A non-finite loss: training stops at once and names the batch's utterances."""


def die(program: str, message: object, code: int = 1) -> NoReturn:
    print(f"{program}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def exit_on_input_error(program: str, main: Callable[[], int | None]) -> NoReturn:
    """Run `main`; an InputError becomes one line on stderr and exit status 1."""
    try:
        code = main()
    except (InputError, TrainingDiverged) as err:
        die(program, err)
    except KeyboardInterrupt:
        die(program, "interrupted", 130)
    raise SystemExit(code or 0)
