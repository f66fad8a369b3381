"""What the command modules share: the dispatcher :mod:`lakehouse_phi.cli` and every module of
:mod:`lakehouse_phi.commands` import this one, never each other, so imports run one way (``cli`` -> a command ->
``_common``).

Logging: library modules log to ``logging.getLogger(__name__)``, under the ``lakehouse_phi`` logger, and never
configure it. Only the command line does, through :func:`configure_logging` (``-v`` / ``-q``). A program that
embeds the package configures ``lakehouse_phi`` itself; until it does, warnings reach stderr through Python's
last-resort handler.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

#: The package's top logger: every module logs to a child of it (``logging.getLogger(__name__)``).
LOGGER_NAME = "lakehouse_phi"


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text for people (default) or JSON on stdout")


class _Stderr(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (looked up per record, so a replaced stderr is honoured)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


class _LevelPrefix(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"lakehouse-phi: {record.levelname.lower()}: {super().format(record)}"


def level_for(verbosity: int) -> int:
    """``-q`` (-1 or less): errors only; default (0): warnings; ``-v`` (1): info; ``-vv`` (2 or more): debug."""
    if verbosity < 0:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)


def configure_logging(verbosity: int = 0) -> None:
    """Route the ``lakehouse_phi`` logger to stderr at the level of ``verbosity`` (see :func:`level_for`).

    Called by the command line only; calling it again replaces its handler rather than adding one.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if isinstance(h, _Stderr)]:
        logger.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(_LevelPrefix("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))


def progress(message: str) -> None:
    """One live progress line on standard error while a long command runs (the engine chosen, a step of the
    ingest, each statement as ``apply`` runs it). What a command has to say about its outcome goes in
    :attr:`~lakehouse_phi.commands.result.CommandResult.stderr` instead, printed once by the dispatcher."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
