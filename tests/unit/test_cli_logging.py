"""Logging is configured by the command line only: -v / -q set the level of the ``lakehouse_phi`` logger."""

from __future__ import annotations

import logging

import pytest

from lakehouse_phi.commands._common import LOGGER_NAME, configure_logging

LIB = logging.getLogger("lakehouse_phi.some.module")  # what a library module's getLogger(__name__) gives


@pytest.fixture(autouse=True)
def _restore():
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _emit_all() -> None:
    LIB.debug("d-message")
    LIB.info("i-message")
    LIB.warning("w-message")
    LIB.error("e-message")


@pytest.mark.parametrize(("verbosity", "shown", "hidden"), [
    (0, ["w-message", "e-message"], ["i-message", "d-message"]),
    (1, ["i-message", "w-message"], ["d-message"]),
    (2, ["d-message", "i-message"], []),
    (-1, ["e-message"], ["w-message", "i-message"]),
])
def test_verbosity_sets_the_level(capsys, verbosity, shown, hidden):
    configure_logging(verbosity)
    _emit_all()
    err = capsys.readouterr().err
    for text in shown:
        assert text in err
    for text in hidden:
        assert text not in err


def test_messages_carry_the_program_and_level_and_one_handler_only(capsys):
    configure_logging(0)
    configure_logging(0)
    LIB.warning("once")
    assert capsys.readouterr().err == "lakehouse-phi: warning: once\n"


def test_command_modules_do_not_import_the_root_cli():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "lakehouse_phi" / "commands"
    modules = sorted(root.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        tree = ast.parse(path.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "lakehouse_phi.cli" not in imported, path.name
