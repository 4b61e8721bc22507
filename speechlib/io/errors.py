"""One exception type for bad user input, rendered as a single `file:line: what` line."""
from __future__ import annotations

import atexit
import os
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


def report(program: str, message: object) -> None:
    """The one line a user sees for a refused input."""
    print(f"{program}: error: {message}", file=sys.stderr)


def die(program: str, message: object, code: int = 1) -> NoReturn:
    report(program, message)
    raise SystemExit(code)


def exit_process(code: int) -> NoReturn:
    """Exit with `code`; a rank of a torch.distributed group leaves without the C++ teardown.

    Gloo's teardown (the group's destructor, then static destructors while its threads still run)
    now and then aborts a rank whose work is done ("terminate called without an active
    exception", exit -6), and torchrun reports the finished run as failed; destroying the group
    at exit did not prevent it. Such a rank runs the interpreter's exit handlers, flushes its
    streams and leaves with os._exit: the OS closes its sockets, no C++ state is destroyed, and
    the status is the stage's own. torch is not imported here: a process that never loaded
    torch.distributed exits the usual way.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        raise SystemExit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def exit_on_input_error(program: str, main: Callable[[], int | None]) -> NoReturn:
    """Run `main`; an InputError becomes one line on stderr and exit status 1."""
    try:
        code = main() or 0
    except (InputError, TrainingDiverged) as err:
        report(program, err)
        code = 1
    except KeyboardInterrupt:
        report(program, "interrupted")
        code = 130
    exit_process(code)
